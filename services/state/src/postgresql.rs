//! The server state database: PostgreSQL, shared by several `enclave serve`
//! replicas (`--state-db`).
//!
//! Documents live in one table keyed by (collection, key) as `json` (kept
//! byte for byte, readable with PostgreSQL's JSON operators), counters in
//! another. Every write transaction first locks the change counter's row, so
//! writers from all replicas take turns exactly as with the embedded file.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, GenericClient, NoTls};

use crate::StateError;
use crate::backend::{Reader, Table, VERSION_COUNTER, Writer};

/// Tables created on first use (by whichever replica comes first).
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS enclave_documents (
    collection text NOT NULL,
    key text COLLATE "C" NOT NULL,
    document json NOT NULL,
    PRIMARY KEY (collection, key)
);
CREATE TABLE IF NOT EXISTS enclave_counters (
    name text PRIMARY KEY,
    value bigint NOT NULL CHECK (value >= 0)
);
INSERT INTO enclave_counters (name, value) VALUES ('version', 0)
    ON CONFLICT (name) DO NOTHING;
"#;

/// Serializes schema creation between replicas starting together.
const SCHEMA_LOCK: i64 = 0x0065_6e63_6c61_7665;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the state database is: a `postgres://user:password@host:port/db`
/// URL (or PostgreSQL's `key=value` form). Printing it never shows the
/// password.
#[derive(Clone)]
pub struct StateDatabase(Config);

impl FromStr for StateDatabase {
    type Err = StateError;

    fn from_str(url: &str) -> Result<StateDatabase, StateError> {
        let mut config = Config::from_str(url).map_err(|_| {
            StateError::invalid(
                "state database",
                "expected postgres://user:password@host:port/database",
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(StateError::invalid("state database", "name the host"));
        }
        if config.get_ssl_mode() == SslMode::Require {
            return Err(StateError::invalid(
                "state database",
                "sslmode=require is not supported: reach PostgreSQL over a private network \
                 or a local TLS proxy",
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(StateDatabase(config))
    }
}

impl fmt::Display for StateDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.0.get_user().unwrap_or_default();
        let hosts: Vec<String> = self
            .0
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let database = self.0.get_dbname().unwrap_or(user);
        write!(f, "postgres://{user}@{}/{database}", hosts.join(","))
    }
}

impl fmt::Debug for StateDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateDatabase({self})")
    }
}

/// One connection per process, opened lazily and again after it breaks.
pub(crate) struct Postgres {
    database: StateDatabase,
    client: Mutex<Option<Client>>,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects and creates the tables if they do not exist yet.
    pub(crate) fn open(database: &StateDatabase) -> Result<Postgres, StateError> {
        let db = Postgres {
            database: database.clone(),
            client: Mutex::new(None),
        };
        db.run(|client| {
            let mut txn = client.transaction()?;
            txn.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            txn.batch_execute(SCHEMA)?;
            txn.commit()?;
            Ok(())
        })?;
        tracing::info!(database = %database, "state database ready");
        Ok(db)
    }

    /// Runs `operation` on the connection. The blocking client drives a
    /// runtime of its own, which may not run on a thread that already drives
    /// one (the server's), so each operation runs on a short-lived thread.
    fn run<R: Send>(
        &self,
        operation: impl FnOnce(&mut Client) -> Result<R, StateError> + Send,
    ) -> Result<R, StateError> {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let slot: &mut Option<Client> = &mut slot;
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let client = match slot.take() {
                    Some(client) if !client.is_closed() => client,
                    _ => self.database.0.connect(NoTls)?,
                };
                operation(slot.insert(client))
            });
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    pub(crate) fn read<R: Send>(
        &self,
        operation: impl FnOnce(&mut dyn Reader) -> Result<R, StateError> + Send,
    ) -> Result<R, StateError> {
        // The store reads with one statement at a time, each consistent on
        // its own: no transaction around them saves two round trips.
        self.run(|client| operation(&mut Session(client)))
    }

    pub(crate) fn write<R: Send>(
        &self,
        change: impl FnOnce(&mut dyn Writer) -> Result<R, StateError> + Send,
    ) -> Result<R, StateError> {
        self.run(|client| {
            let mut txn = client.transaction()?;
            txn.execute(
                "SELECT value FROM enclave_counters WHERE name = $1 FOR UPDATE",
                &[&VERSION_COUNTER],
            )?;
            let result = change(&mut Session(&mut txn))?;
            txn.commit()?;
            Ok(result)
        })
    }
}

/// Closing the connection also runs on the client's own runtime, so it too
/// happens off the caller's thread.
impl Drop for Postgres {
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(client) = client {
            std::thread::scope(|scope| {
                scope.spawn(move || drop(client));
            });
        }
    }
}

/// Statements on the connection (reads) or in a transaction (writes).
struct Session<'a, C>(&'a mut C);

impl<C: GenericClient> Reader for Session<'_, C> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let row = self.0.query_opt(
            "SELECT document::text FROM enclave_documents WHERE collection = $1 AND key = $2",
            &[&table.name(), &key],
        )?;
        Ok(row.map(|row| row.get::<_, String>(0).into_bytes()))
    }

    fn all(&mut self, table: Table) -> Result<Vec<Vec<u8>>, StateError> {
        let rows = self.0.query(
            "SELECT document::text FROM enclave_documents WHERE collection = $1 ORDER BY key",
            &[&table.name()],
        )?;
        Ok(rows
            .into_iter()
            .map(|row| row.get::<_, String>(0).into_bytes())
            .collect())
    }

    fn counter(&mut self, name: &str) -> Result<u64, StateError> {
        let row = self.0.query_opt(
            "SELECT value FROM enclave_counters WHERE name = $1",
            &[&name],
        )?;
        row.map_or(Ok(0), |row| {
            u64::try_from(row.get::<_, i64>(0)).map_err(|_| counter_out_of_range(name))
        })
    }
}

impl<C: GenericClient> Writer for Session<'_, C> {
    fn put(&mut self, table: Table, key: &str, document: &[u8]) -> Result<(), StateError> {
        let document = std::str::from_utf8(document)
            .map_err(|_| StateError::Storage("a document is not UTF-8 JSON".into()))?;
        self.0.execute(
            "INSERT INTO enclave_documents (collection, key, document) VALUES ($1, $2, $3::text::json) \
             ON CONFLICT (collection, key) DO UPDATE SET document = EXCLUDED.document",
            &[&table.name(), &key, &document],
        )?;
        Ok(())
    }

    fn set_counter(&mut self, name: &str, value: u64) -> Result<(), StateError> {
        let value = i64::try_from(value).map_err(|_| counter_out_of_range(name))?;
        self.0.execute(
            "INSERT INTO enclave_counters (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&name, &value],
        )?;
        Ok(())
    }
}

fn counter_out_of_range(name: &str) -> StateError {
    StateError::Storage(format!("counter `{name}` is out of range"))
}
