//! Where a command finds the state store: the embedded file in the state
//! directory, or a PostgreSQL database shared by server replicas.

use std::path::PathBuf;

use enclave_state::{StateDatabase, StateError, StateStore};

/// The state options every command that reads or changes state takes.
#[derive(Debug, clap::Args)]
pub(crate) struct StateArgs {
    /// State directory: this process's audit log and keys, and the state
    /// store itself unless --state-db is given.
    #[arg(long)]
    pub(crate) state: PathBuf,
    /// PostgreSQL database holding users, projects, opt-outs and the review
    /// workflow instead of the state directory, shared by server replicas:
    /// postgres://user:password@host:port/database.
    #[arg(long, env = "ENCLAVE_STATE_DB", hide_env_values = true)]
    pub(crate) state_db: Option<StateDatabase>,
}

impl StateArgs {
    /// The embedded store in `dir`.
    pub(crate) fn embedded(dir: PathBuf) -> StateArgs {
        StateArgs {
            state: dir,
            state_db: None,
        }
    }

    pub(crate) fn open(&self) -> Result<StateStore, StateError> {
        match &self.state_db {
            Some(database) => StateStore::connect(database),
            None => StateStore::open(&self.state),
        }
    }
}
