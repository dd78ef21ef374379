//! `enclave audit …`: verify the log against its public key, show the
//! latest events, search them.

use std::path::PathBuf;

use clap::Subcommand;
use enclave_audit::{Event, load_public_key, read_events, verify};

use crate::commands::CommandError;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Re-read every event and checkpoint; exit non-zero at the first problem.
    Verify {
        /// The audit log directory.
        #[arg(long)]
        dir: PathBuf,
        /// The checkpoint public key (hex), from a trusted copy.
        #[arg(long)]
        public_key: PathBuf,
    },
    /// The latest events.
    Tail {
        #[arg(long)]
        dir: PathBuf,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
    /// Suspicious patterns: repeated refusals, failed logins, many queries
    /// differing only in their literals (10-minute windows).
    Alerts {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Events matching every filter given.
    Search {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        actor: Option<String>,
        /// The action, e.g. `query`, `login`, `application.decide`.
        #[arg(long)]
        action: Option<String>,
        /// `ok`, `refused`, `failed` or `requested`.
        #[arg(long)]
        outcome: Option<String>,
        /// Text anywhere in the event's details.
        #[arg(long)]
        text: Option<String>,
    },
}

pub(crate) fn run(command: AuditCommand) -> Result<(), CommandError> {
    match command {
        AuditCommand::Verify { dir, public_key } => {
            let report = verify(&dir, &load_public_key(&public_key)?)?;
            let latest = report
                .latest_checkpoint
                .as_ref()
                .map_or("none".to_string(), |c| {
                    format!("size {} root {}", c.size, c.root)
                });
            outln!(
                "{} events, {} checkpoints verified; latest checkpoint: {latest}",
                report.events,
                report.checkpoints
            );
            if let Some(problem) = report.problem {
                return Err(CommandError::Client(format!(
                    "audit log does not verify: {problem}"
                )));
            }
            outln!("the audit log verifies");
        }
        AuditCommand::Alerts { dir } => {
            for alert in enclave_audit::alerts::alerts(&read_events(&dir)?) {
                outln!(
                    "{}\t{}\tevents {}..{}\t{}",
                    alert.kind,
                    alert.actor,
                    alert.first_seq,
                    alert.last_seq,
                    alert.summary
                );
            }
        }
        AuditCommand::Tail { dir, lines } => {
            let events = read_events(&dir)?;
            events[events.len().saturating_sub(lines)..]
                .iter()
                .for_each(print_event);
        }
        AuditCommand::Search {
            dir,
            actor,
            action,
            outcome,
            text,
        } => {
            let matches = |event: &Event| {
                actor.as_ref().is_none_or(|a| &event.actor == a)
                    && action.as_ref().is_none_or(|a| &event.action == a)
                    && outcome.as_ref().is_none_or(|o| &event.outcome == o)
                    && text
                        .as_ref()
                        .is_none_or(|t| event.detail.to_string().contains(t.as_str()))
            };
            read_events(&dir)?
                .iter()
                .filter(|event| matches(event))
                .for_each(print_event);
        }
    }
    Ok(())
}

fn print_event(event: &Event) {
    outln!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        event.seq,
        event.at_ms,
        event.actor,
        event.action,
        event.outcome,
        event.detail
    );
}
