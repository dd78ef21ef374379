//! `enclave review …`: the committee's side of the workflow, over the gRPC API.

use clap::{Subcommand, ValueEnum};
use enclave_api::proto;

use crate::apply::list;
use crate::client::{Connection, print_application, print_bring_in, print_output};
use crate::commands::CommandError;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum VoteArg {
    Approve,
    Reject,
    Return,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DecisionArg {
    Approve,
    /// Approve with the conditions given by --condition.
    Conditional,
    Reject,
    Return,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// Applications waiting for the committee.
    Queue {
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one application in full.
    Show {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
    },
    /// Assign reviewers (chair).
    Assign {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        /// A reviewer's user name (repeat).
        #[arg(long = "reviewer", required = true)]
        reviewers: Vec<String>,
    },
    /// Declare a conflict of interest: you will not vote on it.
    Conflict {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Record your opinion and vote.
    Vote {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        #[arg(long, value_enum)]
        choice: VoteArg,
        #[arg(long)]
        opinion: String,
    },
    /// Decide (chair), once enough eligible votes are in.
    Decide {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        #[arg(long, value_enum)]
        decision: DecisionArg,
        /// A condition of approval (repeat; with --decision conditional).
        #[arg(long = "condition")]
        conditions: Vec<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Write to the applicant.
    Message {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        #[arg(long)]
        text: String,
    },
    /// Output releases and their automatic checks.
    Outputs {
        #[command(flatten)]
        connection: Connection,
    },
    /// Approve or reject an output for publication (second person).
    Output {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        /// Approve; without it the output is rejected.
        #[arg(long)]
        approve: bool,
        #[arg(long)]
        note: String,
    },
    /// Tables brought in to projects: screening findings and approvals.
    BringIns {
        #[command(flatten)]
        connection: Connection,
    },
    /// Approve or reject a quarantined table (two approvals from members
    /// outside the project make it `ref.<name>`; a rejection destroys it).
    BringIn {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        /// Approve; without it the table is rejected.
        #[arg(long)]
        approve: bool,
        #[arg(long)]
        note: String,
    },
}

fn vote_choice(choice: VoteArg) -> proto::VoteChoice {
    match choice {
        VoteArg::Approve => proto::VoteChoice::Approve,
        VoteArg::Reject => proto::VoteChoice::Reject,
        VoteArg::Return => proto::VoteChoice::Return,
    }
}

fn decision_kind(decision: DecisionArg) -> proto::DecisionKind {
    match decision {
        DecisionArg::Approve => proto::DecisionKind::Approve,
        DecisionArg::Conditional => proto::DecisionKind::ApproveWithConditions,
        DecisionArg::Reject => proto::DecisionKind::Reject,
        DecisionArg::Return => proto::DecisionKind::Return,
    }
}

pub(crate) async fn run(command: ReviewCommand) -> Result<(), CommandError> {
    let application = match command {
        ReviewCommand::Queue { connection } => {
            let waiting = ["submitted".to_string(), "under_review".to_string()];
            return list(&connection.login().await?, &waiting).await;
        }
        ReviewCommand::Show { connection, id } => {
            let client = connection.login().await?;
            let application = client
                .applications()
                .get(proto::ApplicationRef { id })
                .await?;
            print_application(application.get_ref(), true);
            return Ok(());
        }
        ReviewCommand::Assign {
            connection,
            id,
            reviewers,
        } => {
            let request = proto::AssignReviewersRequest { id, reviewers };
            connection
                .login()
                .await?
                .applications()
                .assign_reviewers(request)
                .await?
        }
        ReviewCommand::Conflict {
            connection,
            id,
            reason,
        } => {
            let request = proto::DeclareConflictRequest { id, reason };
            connection
                .login()
                .await?
                .applications()
                .declare_conflict(request)
                .await?
        }
        ReviewCommand::Vote {
            connection,
            id,
            choice,
            opinion,
        } => {
            let request = proto::VoteRequest {
                id,
                choice: vote_choice(choice) as i32,
                opinion,
            };
            connection
                .login()
                .await?
                .applications()
                .vote(request)
                .await?
        }
        ReviewCommand::Decide {
            connection,
            id,
            decision,
            conditions,
            note,
        } => {
            let request = proto::DecideRequest {
                id,
                decision: decision_kind(decision) as i32,
                conditions,
                note,
            };
            connection
                .login()
                .await?
                .applications()
                .decide(request)
                .await?
        }
        ReviewCommand::Message {
            connection,
            id,
            text,
        } => connection.send_message(id, text).await?,
        ReviewCommand::Outputs { connection } => {
            let client = connection.login().await?;
            let listed = client.outputs().list(proto::ListOutputsRequest {}).await?;
            listed.get_ref().releases.iter().for_each(print_output);
            return Ok(());
        }
        ReviewCommand::BringIns { connection } => {
            let client = connection.login().await?;
            let listed = client
                .bring_ins()
                .list(proto::ListBringInsRequest {})
                .await?;
            listed.get_ref().bring_ins.iter().for_each(print_bring_in);
            return Ok(());
        }
        ReviewCommand::BringIn {
            connection,
            id,
            approve,
            note,
        } => {
            let request = proto::ReviewBringInRequest { id, approve, note };
            let reviewed = connection
                .login()
                .await?
                .bring_ins()
                .review(request)
                .await?;
            print_bring_in(reviewed.get_ref());
            return Ok(());
        }
        ReviewCommand::Output {
            connection,
            id,
            approve,
            note,
        } => {
            let request = proto::ReviewOutputRequest { id, approve, note };
            let release = connection.login().await?.outputs().review(request).await?;
            print_output(release.get_ref());
            return Ok(());
        }
    };
    print_application(application.get_ref(), false);
    Ok(())
}
