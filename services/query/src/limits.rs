//! Resource limits: a memory pool per query inside a shared total pool, a
//! time limit (kept enforceable by yield points after joins), and a cap on
//! each user's concurrent queries.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec, SymmetricHashJoinExec,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use enclave_guard::error::{QueryError, Rule};

/// Limits of the query service.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory one query may hold.
    pub query_memory_bytes: usize,
    /// Memory all running queries may hold together.
    pub total_memory_bytes: usize,
    pub query_timeout: Duration,
    pub concurrent_queries_per_user: usize,
    /// Threads one query may use.
    pub target_partitions: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            query_memory_bytes: 2 << 30,
            total_memory_bytes: 8 << 30,
            query_timeout: Duration::from_secs(300),
            concurrent_queries_per_user: 4,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A pool for one query: refuses growth past its own limit, and takes what it
/// grants from the shared pool (which refuses past the total).
#[derive(Debug)]
pub struct QueryPool {
    limit: usize,
    used: AtomicUsize,
    shared: Arc<dyn MemoryPool>,
}

impl QueryPool {
    pub fn new(limit: usize, shared: Arc<dyn MemoryPool>) -> QueryPool {
        QueryPool {
            limit,
            used: AtomicUsize::new(0),
            shared,
        }
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query pool ({} of {} bytes)",
            self.reserved(),
            self.limit
        )
    }
}

/// Limits a query carries in its session configuration to the cluster's
/// executors, which apply them to their part of it: `enclave.*` settings,
/// which the scheduler passes on when it knows this extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterLimits {
    /// Memory the query may hold on each executor, in bytes.
    pub query_memory_bytes: usize,
}

impl Default for ClusterLimits {
    fn default() -> ClusterLimits {
        ClusterLimits {
            query_memory_bytes: Limits::default().query_memory_bytes,
        }
    }
}

const QUERY_MEMORY_KEY: &str = "query_memory_bytes";

impl ConfigExtension for ClusterLimits {
    const PREFIX: &'static str = "enclave";
}

impl ExtensionOptions for ClusterLimits {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
        match key {
            QUERY_MEMORY_KEY => {
                self.query_memory_bytes = value.parse().map_err(|_| {
                    DataFusionError::Configuration(format!("{key}: not a byte count"))
                })?;
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "no setting enclave.{key}"
            ))),
        }
    }

    /// Named with the prefix: Ballista sends settings by these names.
    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: format!("{}.{QUERY_MEMORY_KEY}", Self::PREFIX),
            value: Some(self.query_memory_bytes.to_string()),
            description: "memory one query may hold on each executor, in bytes",
        }]
    }
}

/// Why a query was stopped at its own memory limit.
fn over_query_limit(limit: usize) -> String {
    format!(
        "the query needs more than its memory limit of {} MiB; filter earlier, group by fewer columns or narrow the period",
        limit >> 20
    )
}

/// Why a query was stopped at the limit of all queries together.
const SHARED_MEMORY_IN_USE: &str =
    "the server's memory for queries is in use by other queries; try again shortly";

/// How every limit error of ours reads (`QueryError::ResourcesExhausted`).
const ANY_LIMIT: &str = "query exceeded a resource limit";

/// The limit a query that failed on the cluster reached, recognised by the
/// executors' words (those of [`QueryPool`], carried back as text), or
/// `None` for any other failure.
pub(crate) fn cluster_limit_reached(detail: &str, limits: &Limits) -> Option<QueryError> {
    let over_own = over_query_limit(limits.query_memory_bytes);
    let message = if detail.contains(&over_own) {
        over_own
    } else if detail.contains(SHARED_MEMORY_IN_USE) {
        "the cluster's memory for queries is in use by other queries; try again shortly".into()
    } else if detail.contains("Resources exhausted") || detail.contains(ANY_LIMIT) {
        "the query needs more memory than the cluster allows; filter earlier, group by fewer columns or narrow the period".into()
    } else {
        return None;
    };
    Some(QueryError::ResourcesExhausted(message))
}

/// The shared pool of all queries.
pub fn shared_pool(limits: &Limits) -> Arc<dyn MemoryPool> {
    Arc::new(FairSpillPool::new(limits.total_memory_bytes))
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "enclave_query_pool"
    }

    fn register(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let before = self.used.fetch_add(additional, Ordering::Relaxed);
        if before + additional > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(exhausted(over_query_limit(self.limit)));
        }
        self.shared.try_grow(reservation, additional).map_err(|_| {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            exhausted(SHARED_MEMORY_IN_USE.into())
        })
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// A limit reached, carried through the engine with its words intact.
fn exhausted(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::ResourcesExhausted(message)))
}

/// Per-user caps on running queries.
#[derive(Debug, Default)]
pub struct ConcurrencyCaps {
    per_user: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl ConcurrencyCaps {
    /// A permit to run one query, or a refusal when `user` already runs
    /// `cap` queries. The permit is released when dropped.
    pub fn acquire(&self, user: &str, cap: usize) -> Result<OwnedSemaphorePermit, QueryError> {
        let semaphore = {
            let mut per_user = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                per_user
                    .entry(user.to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(cap))),
            )
        };
        semaphore.try_acquire_owned().map_err(|_| {
            QueryError::refused(
                Rule::TooManyQueries,
                format!("at most {cap} queries may run at once per user; wait for one to finish"),
            )
        })
    }
}

/// Makes every join yield to the scheduler as it emits batches.
///
/// A join can emit far more rows than it reads, all from memory; DataFusion's
/// own yield points sit at the scans, so such a join would keep its worker
/// thread until it ends. The time limit could then not fire, and a stopped
/// query would not stop. Wrapping each join's output in a cooperative stream
/// lets the runtime interrupt it between batches.
#[derive(Debug, Default)]
pub struct YieldAfterJoins;

impl YieldAfterJoins {
    fn is_join(plan: &dyn ExecutionPlan) -> bool {
        plan.is::<HashJoinExec>()
            || plan.is::<NestedLoopJoinExec>()
            || plan.is::<CrossJoinExec>()
            || plan.is::<SortMergeJoinExec>()
            || plan.is::<SymmetricHashJoinExec>()
    }
}

impl PhysicalOptimizerRule for YieldAfterJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if Self::is_join(node.as_ref()) {
                let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(node));
                Ok(Transformed::yes(wrapped))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "enclave_yield_after_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(query_mib: usize) -> Limits {
        Limits {
            query_memory_bytes: query_mib << 20,
            ..Limits::default()
        }
    }

    /// The words an executor's pool refuses with, as a failed cluster job
    /// carries them back inside Ballista's own text.
    fn job_failure(pool_error: DataFusionError) -> String {
        format!(
            "Execution error: Job abc failed: Task failed due to runtime execution error: {pool_error}"
        )
    }

    #[test]
    fn cluster_limits_travel_as_named_settings() {
        let sent = ClusterLimits {
            query_memory_bytes: 5 << 20,
        };
        let mut received = ConfigOptions::new();
        received.extensions.insert(ClusterLimits::default());
        for entry in sent.entries() {
            received.set(&entry.key, &entry.value.unwrap()).unwrap();
        }
        assert_eq!(received.extensions.get::<ClusterLimits>(), Some(&sent));
        assert!(received.set("enclave.query_memory_bytes", "lots").is_err());
        assert!(received.set("enclave.other", "1").is_err());
    }

    #[test]
    fn a_cluster_query_over_its_own_limit_gets_the_limit_error() {
        let pool = QueryPool::new(1 << 20, shared_pool(&limits(1)));
        let consumer = datafusion::execution::memory_pool::MemoryConsumer::new("join");
        let shared: Arc<dyn MemoryPool> = Arc::new(pool);
        let reservation = consumer.register(&shared);
        let refused = reservation.try_grow(2 << 20).unwrap_err();
        let error = cluster_limit_reached(&job_failure(refused), &limits(1)).unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "query exceeded a resource limit: {}",
                over_query_limit(1 << 20)
            )
        );
    }

    #[test]
    fn other_cluster_failures_are_not_limits_and_other_limits_are_generic() {
        let detail = job_failure(DataFusionError::Execution("division by zero".into()));
        assert!(cluster_limit_reached(&detail, &limits(1)).is_none());
        // A limit other than this front end's is reported without its size.
        let other = job_failure(exhausted(over_query_limit(7 << 20)));
        let message = cluster_limit_reached(&other, &limits(1))
            .unwrap()
            .to_string();
        assert!(!message.contains("7 MiB") && message.contains("more memory than the cluster"));
    }

    #[test]
    fn the_shared_limit_and_the_engines_own_are_recognised() {
        let busy = job_failure(exhausted(SHARED_MEMORY_IN_USE.into()));
        assert!(
            cluster_limit_reached(&busy, &limits(1))
                .unwrap()
                .to_string()
                .contains("in use by other queries")
        );
        let engine = job_failure(DataFusionError::ResourcesExhausted(
            "HashJoin: 123 bytes".into(),
        ));
        let message = cluster_limit_reached(&engine, &limits(1))
            .unwrap()
            .to_string();
        assert!(!message.contains("bytes") && message.contains("more memory than the cluster"));
    }
}
