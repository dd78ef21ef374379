//! `enclave apply …`: a researcher's side of the workflow, over the gRPC API.

use std::path::PathBuf;

use clap::Subcommand;
use enclave_api::proto;

use crate::client::{Client, Connection, print_application, print_bring_in, print_output};
use crate::commands::CommandError;

/// The terms of an application (also what an amendment restates).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TermsArgs {
    /// A member, `user:affiliation` (repeat; include yourself).
    #[arg(long = "member", required = true)]
    members: Vec<String>,
    /// A table, `schema.table` or `schema.table:col,col` (repeat).
    #[arg(long = "table", required = true)]
    tables: Vec<String>,
    /// Datasets to link, e.g. `ndb,dpc,care` (needed when tables of several are asked for).
    #[arg(long, value_delimiter = ',')]
    linkage: Vec<String>,
    /// Service months, `YYYY-MM..YYYY-MM`.
    #[arg(long)]
    period: String,
    /// Last day of access, `YYYY-MM-DD`.
    #[arg(long)]
    until: String,
    /// Minimum persons per released group (at least 10).
    #[arg(long, default_value_t = 10)]
    k: u32,
    /// Rounding of released counts: none, 5 or 10.
    #[arg(long, default_value = "10")]
    rounding: String,
    /// Values the release ledger may answer fresh for the project over its
    /// life (the service's default when absent).
    #[arg(long = "fresh-values")]
    fresh_values: Option<u64>,
}

/// What an application says.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProposalArgs {
    /// Id of the project an approval creates (a-z, 0-9, '-', '_').
    #[arg(long)]
    project_id: String,
    #[arg(long)]
    title: String,
    #[arg(long)]
    purpose: String,
    /// Why the research serves the public interest.
    #[arg(long)]
    public_interest: String,
    /// Planned publications and outputs.
    #[arg(long)]
    planned_outputs: String,
    /// Tables the study will bring in (code lists, reference tables).
    #[arg(long, default_value = "")]
    planned_bring_ins: String,
    /// The data security measures at your site (needed to submit).
    #[arg(long, default_value = "")]
    security_measures: String,
    /// Accept the pledge not to match the data against any other data
    /// (照合禁止); needed to submit.
    #[arg(long)]
    pledge_no_matching: bool,
    #[command(flatten)]
    terms: TermsArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApplyCommand {
    /// Start a draft application.
    Create {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        proposal: ProposalArgs,
    },
    /// Replace a draft's (or returned application's) contents.
    Edit {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        proposal: ProposalArgs,
    },
    /// Submit a draft for review.
    Submit(Target),
    /// Withdraw an application (or a pending amendment).
    Withdraw(Target),
    /// Ask for new terms on an approved application.
    Amend {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Show one application in full.
    Show(Target),
    /// List your applications.
    List {
        #[command(flatten)]
        connection: Connection,
        /// Only this status (draft, submitted, under_review, approved, …).
        #[arg(long, default_value = "")]
        status: String,
    },
    /// Write to the committee.
    Message {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        #[arg(long)]
        text: String,
    },
    /// Close an approved project: access ends and what it held is destroyed.
    Close(Target),
    /// Ask for a query result to be released for publication.
    RequestOutput {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        project: String,
        #[arg(long)]
        title: String,
        /// The aggregate statement whose result should be released.
        #[arg(long)]
        sql: String,
    },
    /// Register an analysis definition (a named SQL statement) for review;
    /// once two committee members approve it, `RUN ANALYSIS <name>` runs it
    /// and every run records its SHA-256.
    RegisterAnalysis {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        project: String,
        /// Lowercase letters, digits and `_`.
        #[arg(long)]
        name: String,
        /// File holding the statement.
        #[arg(long)]
        file: PathBuf,
        /// What the analysis is for.
        #[arg(long, default_value = "")]
        purpose: String,
    },
    /// Save an approved output as a CSV file.
    DownloadOutput {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        id: String,
        /// File to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// One application.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    #[command(flatten)]
    connection: Connection,
    #[arg(long)]
    id: String,
}

impl TermsArgs {
    fn message(self) -> Result<proto::Terms, CommandError> {
        let members = self
            .members
            .iter()
            .map(|member| {
                let (user, affiliation) = member.split_once(':').ok_or_else(|| {
                    CommandError::Client(format!("member `{member}`: write user:affiliation"))
                })?;
                Ok(proto::Member {
                    user: user.trim().to_string(),
                    affiliation: affiliation.trim().to_string(),
                })
            })
            .collect::<Result<_, CommandError>>()?;
        let (first, last) = self
            .period
            .split_once("..")
            .ok_or_else(|| CommandError::Client("period: write YYYY-MM..YYYY-MM".into()))?;
        Ok(proto::Terms {
            members,
            tables: self.tables.iter().map(|t| table_request(t)).collect(),
            linkage: self.linkage,
            period_first: first.to_string(),
            period_last: last.to_string(),
            valid_until: self.until,
            k: self.k,
            rounding: self.rounding,
            fresh_values: self.fresh_values,
        })
    }
}

fn table_request(text: &str) -> proto::TableRequest {
    let (table, columns) = text.split_once(':').unwrap_or((text, ""));
    proto::TableRequest {
        table: table.trim().to_string(),
        columns: columns
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect(),
    }
}

impl ProposalArgs {
    fn message(self) -> Result<proto::Proposal, CommandError> {
        Ok(proto::Proposal {
            project_id: self.project_id,
            title: self.title,
            purpose: self.purpose,
            public_interest: self.public_interest,
            planned_outputs: self.planned_outputs,
            terms: Some(self.terms.message()?),
            planned_bring_ins: self.planned_bring_ins,
            security_measures: self.security_measures,
            no_matching_pledge: self.pledge_no_matching,
        })
    }
}

pub(crate) async fn run(command: ApplyCommand) -> Result<(), CommandError> {
    let application = match command {
        ApplyCommand::Create {
            connection,
            proposal,
        } => {
            let request = proto::CreateApplicationRequest {
                proposal: Some(proposal.message()?),
            };
            connection
                .login()
                .await?
                .applications()
                .create(request)
                .await?
        }
        ApplyCommand::Edit {
            connection,
            id,
            proposal,
        } => {
            let request = proto::EditApplicationRequest {
                id,
                proposal: Some(proposal.message()?),
            };
            connection
                .login()
                .await?
                .applications()
                .edit(request)
                .await?
        }
        ApplyCommand::Submit(Target { connection, id }) => {
            let client = connection.login().await?;
            client
                .applications()
                .submit(proto::ApplicationRef { id })
                .await?
        }
        ApplyCommand::Withdraw(Target { connection, id }) => {
            let client = connection.login().await?;
            client
                .applications()
                .withdraw(proto::ApplicationRef { id })
                .await?
        }
        ApplyCommand::Amend {
            connection,
            id,
            terms,
        } => {
            let request = proto::AmendApplicationRequest {
                id,
                terms: Some(terms.message()?),
            };
            connection
                .login()
                .await?
                .applications()
                .amend(request)
                .await?
        }
        ApplyCommand::Show(Target { connection, id }) => {
            let client = connection.login().await?;
            let application = client
                .applications()
                .get(proto::ApplicationRef { id })
                .await?;
            print_application(application.get_ref(), true);
            return Ok(());
        }
        ApplyCommand::List { connection, status } => {
            return list(&connection.login().await?, &[status]).await;
        }
        ApplyCommand::Message {
            connection,
            id,
            text,
        } => connection.send_message(id, text).await?,
        ApplyCommand::Close(Target { connection, id }) => {
            let request = proto::CloseApplicationRequest {
                id,
                note: String::new(),
            };
            connection
                .login()
                .await?
                .applications()
                .close(request)
                .await?
        }
        ApplyCommand::RequestOutput {
            connection,
            project,
            title,
            sql,
        } => {
            let request = proto::RequestOutputRequest {
                project_id: project,
                title,
                sql,
            };
            let release = connection.login().await?.outputs().request(request).await?;
            print_output(release.get_ref());
            return Ok(());
        }
        ApplyCommand::RegisterAnalysis {
            connection,
            project,
            name,
            file,
            purpose,
        } => {
            let sql = std::fs::read_to_string(&file).map_err(|error| {
                CommandError::Usage(format!("cannot read {}: {error}", file.display()))
            })?;
            let request = proto::RegisterAnalysisRequest {
                project_id: project,
                name,
                sql,
                purpose,
            };
            let analysis = connection
                .login()
                .await?
                .bring_ins()
                .register_analysis(request)
                .await?;
            print_bring_in(analysis.get_ref());
            return Ok(());
        }
        ApplyCommand::DownloadOutput {
            connection,
            id,
            out,
        } => return download(&connection, id, out).await,
    };
    print_application(application.get_ref(), false);
    Ok(())
}

/// Lists the applications the caller may see in each of `statuses`
/// (`""` = any), one line each.
pub(crate) async fn list(client: &Client, statuses: &[String]) -> Result<(), CommandError> {
    for status in statuses {
        let request = proto::ListApplicationsRequest {
            status: status.clone(),
        };
        let listed = client.applications().list(request).await?;
        for application in &listed.get_ref().applications {
            print_application(application, false);
        }
    }
    Ok(())
}

async fn download(connection: &Connection, id: String, out: PathBuf) -> Result<(), CommandError> {
    let client = connection.login().await?;
    let file = client
        .outputs()
        .download(proto::OutputRef { id })
        .await?
        .into_inner();
    std::fs::write(&out, &file.content).map_err(|source| CommandError::WorkDir {
        path: out.display().to_string(),
        source,
    })?;
    outln!(
        "{} ({} bytes) written to {}",
        file.file_name,
        file.content.len(),
        out.display()
    );
    Ok(())
}
