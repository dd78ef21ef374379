//! Scale-out execution: the Ballista scheduler and executors of an enclave
//! deployment, each reading the same data store as the front ends.
//!
//! Front ends (`enclave serve --engine ballista://host:port`) still parse,
//! guard and release every statement; only the guarded plan — standard
//! operators over Parquet scans of `enclave://data/…`, with the opt-out list
//! as literals — travels to the cluster. This crate makes Ballista able to
//! run those plans and nothing more:
//!
//! - the scheduler plans physically, so its sessions know the data store
//!   (under [`STORE_URL`]) and the dominance aggregate ([`top2_sum_udaf`]);
//! - executors run the stages, so their runtimes know the same store and
//!   their function registry the same aggregates and the person-id maps
//!   ([`person_map_udfs`], keyed by a literal in the plan).
//!
//! Neither holds keys or state: the cluster sees pseudonymized release files
//! and the plans it runs (a project's id key among the literals of a
//! workspace read or write) only, and
//! must sit on the private network with the store (its ports take
//! no authentication; see `infra/README.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::RuntimeProducer;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_config_producer;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use ballista_scheduler::scheduler_server::SessionBuilder;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use enclave_query::limits::{ClusterLimits, QueryPool};
use enclave_query::tables::STORE_URL;
use enclave_query::{person_map_udfs, person_set_udaf, top2_sum_udaf};
use enclave_store::DataStore;
use url::Url;

/// What went wrong starting or running a cluster process.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("ballista: {0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    #[error("query engine: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("cannot prepare the executor's work directory {path}: {source}")]
    WorkDir {
        path: String,
        source: std::io::Error,
    },
}

/// Runs a scheduler on `listen` until the process is stopped.
pub async fn run_scheduler(listen: SocketAddr, data: &DataStore) -> Result<(), ClusterError> {
    // Its external host only names it (one scheduler): Ballista's default.
    let mut config = SchedulerConfig::default().with_port(listen.port());
    config.bind_host = listen.ip().to_string();
    config.override_session_builder = Some(scheduler_sessions(data));
    config.override_config_producer = Some(Arc::new(cluster_config));
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config).await?;
    tracing::info!(%listen, "ballista scheduler");
    Ok(start_server(cluster, listen, config).await?)
}

/// The scheduler's per-query sessions: Ballista's defaults plus the data
/// store and the guard's aggregates (dominance, person-set sketches).
fn scheduler_sessions(data: &DataStore) -> SessionBuilder {
    let store = data.object_store();
    Arc::new(move |config: SessionConfig| {
        let runtime = store_runtime(RuntimeEnvBuilder::new(), &store)?;
        let mut state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
            .build();
        state.register_udaf(top2_sum_udaf())?;
        state.register_udaf(person_set_udaf())?;
        for function in person_map_udfs() {
            state.register_udf(function)?;
        }
        Ok(state)
    })
}

/// Where an executor listens and whom it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host and port.
    pub scheduler: (String, u16),
    /// Address of the executor's Flight service (results and shuffles); its
    /// gRPC service takes the next port.
    pub listen: SocketAddr,
    /// Host name the scheduler and front ends reach this executor by.
    pub external_host: String,
    /// Directory for shuffle files.
    pub work_dir: PathBuf,
    /// Tasks run at once (default: the machine's cores).
    pub task_slots: Option<usize>,
    /// Memory all tasks may hold together, in bytes.
    pub memory_bytes: usize,
}

/// Runs an executor until the process is stopped.
///
/// Its memory is bounded as the front end's is: each query holds at most
/// the limit it carries ([`ClusterLimits`], set by the front end that sent
/// it) within the executor's total, and nothing spills to disk.
pub async fn run_executor(options: ExecutorOptions, data: &DataStore) -> Result<(), ClusterError> {
    std::fs::create_dir_all(&options.work_dir).map_err(|source| ClusterError::WorkDir {
        path: options.work_dir.display().to_string(),
        source,
    })?;
    let mut config = ExecutorProcessConfig {
        bind_host: options.listen.ip().to_string(),
        external_host: Some(options.external_host),
        port: options.listen.port(),
        grpc_port: options.listen.port().saturating_add(1),
        scheduler_host: options.scheduler.0,
        scheduler_port: options.scheduler.1,
        // Keep trying while the scheduler starts (compose, Kubernetes and
        // infra/local-cluster.sh start them together).
        scheduler_connect_timeout_seconds: 60,
        work_dir: Some(options.work_dir.display().to_string()),
        // 0: Ballista installs no pool of its own; ours comes with each
        // session's runtime.
        memory_pool_size: Some(0),
        override_runtime_producer: Some(executor_runtimes(data, options.memory_bytes)),
        override_function_registry: Some(Arc::new(executor_functions())),
        override_config_producer: Some(Arc::new(cluster_config)),
        ..ExecutorProcessConfig::default()
    };
    if let Some(slots) = options.task_slots {
        config.vcores = slots;
    }
    tracing::info!(listen = %options.listen, "ballista executor");
    Ok(start_executor_process(Arc::new(config)).await?)
}

/// Ballista's session configuration, able to hold the limits a query
/// carries: the scheduler passes on only the settings it knows.
fn cluster_config() -> SessionConfig {
    default_config_producer().with_option_extension(ClusterLimits::default())
}

/// Each query's runtime (Ballista keeps one per session, and a front end
/// makes a session per query): the query's own memory limit within the
/// executor's total, no spilling, the data store under [`STORE_URL`].
fn executor_runtimes(data: &DataStore, total_memory: usize) -> RuntimeProducer {
    let store = data.object_store();
    let total: Arc<dyn MemoryPool> = Arc::new(FairSpillPool::new(total_memory));
    Arc::new(move |config: &SessionConfig| {
        let limit = config
            .options()
            .extensions
            .get::<ClusterLimits>()
            .map_or_else(
                || ClusterLimits::default().query_memory_bytes,
                |limits| limits.query_memory_bytes,
            );
        tracing::debug!(limit, "query runtime");
        let pool = QueryPool::new(limit, Arc::clone(&total));
        let builder = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            );
        store_runtime(builder, &store)
    })
}

fn executor_functions() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for function in [top2_sum_udaf(), person_set_udaf()] {
        registry
            .aggregate_functions
            .insert(function.name().to_string(), function);
    }
    for function in person_map_udfs() {
        registry
            .scalar_functions
            .insert(function.name().to_string(), function);
    }
    registry
}

fn store_runtime(
    builder: RuntimeEnvBuilder,
    store: &Arc<dyn object_store::ObjectStore>,
) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    let runtime = builder.build_arc()?;
    let url = Url::parse(STORE_URL).expect("static URL");
    runtime.register_object_store(&url, Arc::clone(store));
    Ok(runtime)
}
