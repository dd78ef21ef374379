//! The server state database: PostgreSQL, shared by several `enclave serve`
//! replicas (`--state-db`).
//!
//! Documents live in one table keyed by (collection, key) as `json` (kept
//! byte for byte, readable with PostgreSQL's JSON operators), counters in
//! another. Every write transaction first locks the change counter's row, so
//! writers from all replicas take turns exactly as with the embedded file.
//!
//! Connections are async tokio-postgres clients in a pool (deadpool), so
//! concurrent statements and pages use several connections. A small runtime
//! of the backend's own drives them: the change counter every statement's
//! snapshot checks is awaited without leaving the caller's task, and the
//! store's synchronous operations (which async callers run on the blocking
//! pool, and admin commands run directly) wait for their statements on the
//! calling thread, whichever runtime it belongs to.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Config, GenericClient, NoTls};

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

/// Connections a process keeps open at most.
const POOL_SIZE: usize = 8;
/// How long an operation waits for a free connection.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The pool and the runtime that drives its connections.
pub(crate) struct Postgres {
    database: StateDatabase,
    pool: Pool,
    connections: Handle,
    _runtime: ConnectionRuntime,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Shut down without waiting when the store is dropped, which may happen
/// inside async code (where a runtime may not block to stop).
struct ConnectionRuntime(Option<Runtime>);

impl Drop for ConnectionRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Postgres {
    /// Connects and creates the tables if they do not exist yet.
    pub(crate) fn open(database: &StateDatabase) -> Result<Postgres, StateError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("enclave-state-db")
            .enable_all()
            .build()
            .map_err(|error| StateError::Storage(format!("state database runtime: {error}")))?;
        let manager = Manager::from_config(
            database.0.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| StateError::Storage(format!("state database pool: {error}")))?;
        let db = Postgres {
            database: database.clone(),
            pool,
            connections: runtime.handle().clone(),
            _runtime: ConnectionRuntime(Some(runtime)),
        };
        let mut client = db.client()?;
        let txn = wait(client.transaction())?;
        wait(txn.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]))?;
        wait(txn.batch_execute(SCHEMA))?;
        wait(txn.commit())?;
        tracing::info!(database = %database, "state database ready");
        Ok(db)
    }

    /// A pooled connection, waited for on this thread (a new connection is
    /// made on the backend's runtime, which then drives it).
    fn client(&self) -> Result<Object, StateError> {
        let pool = self.pool.clone();
        Ok(wait(
            self.connections.spawn(async move { pool.get().await }),
        )??)
    }

    /// The change counter, read on a pooled connection without blocking
    /// the caller's thread.
    pub(crate) async fn change_counter(&self) -> Result<u64, StateError> {
        let pool = self.pool.clone();
        self.connections
            .spawn(async move {
                let client = pool.get().await?;
                read_counter(&**client, VERSION_COUNTER).await
            })
            .await?
    }

    pub(crate) fn read<R>(
        &self,
        operation: impl FnOnce(&mut dyn Reader) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        // The store reads with one statement at a time, each consistent on
        // its own: no transaction around them saves two round trips.
        let client = self.client()?;
        operation(&mut Session(&**client))
    }

    pub(crate) fn write<R>(
        &self,
        change: impl FnOnce(&mut dyn Writer) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let mut client = self.client()?;
        let txn = wait(client.transaction())?;
        wait(txn.execute(
            "SELECT value FROM enclave_counters WHERE name = $1 FOR UPDATE",
            &[&VERSION_COUNTER],
        ))?;
        let result = change(&mut Session(&*txn))?;
        wait(txn.commit())?;
        Ok(result)
    }
}

/// Waits on this thread for a statement's answer (or a task's on the
/// backend's runtime). A statement's future only exchanges messages with its
/// connection's task on that runtime, so any thread may wait for it.
#[expect(
    clippy::disallowed_methods,
    reason = "the store's operations are synchronous; async callers run them on the blocking pool"
)]
fn wait<T, E: Into<StateError>>(
    statement: impl Future<Output = Result<T, E>>,
) -> Result<T, StateError> {
    futures::executor::block_on(statement).map_err(Into::into)
}

/// Statements on a connection (reads) or in a transaction (writes).
struct Session<'a, C>(&'a C);

impl<C: GenericClient + Sync> Reader for Session<'_, C> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let row = wait(self.0.query_opt(
            "SELECT document::text FROM enclave_documents WHERE collection = $1 AND key = $2",
            &[&table.name(), &key],
        ))?;
        Ok(row.map(|row| row.get::<_, String>(0).into_bytes()))
    }

    fn all(&mut self, table: Table) -> Result<Vec<Vec<u8>>, StateError> {
        let rows = wait(self.0.query(
            "SELECT document::text FROM enclave_documents WHERE collection = $1 ORDER BY key",
            &[&table.name()],
        ))?;
        Ok(rows
            .into_iter()
            .map(|row| row.get::<_, String>(0).into_bytes())
            .collect())
    }

    fn counter(&mut self, name: &str) -> Result<u64, StateError> {
        wait(read_counter(self.0, name))
    }
}

impl<C: GenericClient + Sync> Writer for Session<'_, C> {
    fn put(&mut self, table: Table, key: &str, document: &[u8]) -> Result<(), StateError> {
        let document = std::str::from_utf8(document)
            .map_err(|_| StateError::Storage("a document is not UTF-8 JSON".into()))?;
        wait(self.0.execute(
            "INSERT INTO enclave_documents (collection, key, document) VALUES ($1, $2, $3::text::json) \
             ON CONFLICT (collection, key) DO UPDATE SET document = EXCLUDED.document",
            &[&table.name(), &key, &document],
        ))?;
        Ok(())
    }

    fn set_counter(&mut self, name: &str, value: u64) -> Result<(), StateError> {
        let value = i64::try_from(value).map_err(|_| counter_out_of_range(name))?;
        wait(self.0.execute(
            "INSERT INTO enclave_counters (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&name, &value],
        ))?;
        Ok(())
    }
}

/// A counter's value; 0 when it was never set.
async fn read_counter(client: &(impl GenericClient + Sync), name: &str) -> Result<u64, StateError> {
    let row = client
        .query_opt(
            "SELECT value FROM enclave_counters WHERE name = $1",
            &[&name],
        )
        .await?;
    row.map_or(Ok(0), |row| {
        u64::try_from(row.get::<_, i64>(0)).map_err(|_| counter_out_of_range(name))
    })
}

fn counter_out_of_range(name: &str) -> StateError {
    StateError::Storage(format!("counter `{name}` is out of range"))
}
