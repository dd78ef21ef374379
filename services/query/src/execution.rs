//! Where guarded plans run: in this process, or on a Ballista cluster.
//!
//! Either way the front end parses, guards and releases every statement;
//! under Ballista the optimized guarded plan is sent to the scheduler, which
//! plans it physically and runs its stages on the executors, and the results
//! come back to the front end for disclosure control. The plans are
//! standard operators over Parquet scans (opt-outs are literals), so
//! Ballista's default codecs carry them; the one function of ours they may
//! call, the dominance aggregate, is registered by name on every side.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::extension::SessionStateExt;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelJobParams, GetJobMetricsParams, OperatorMetricsSet};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::session_state::SessionState;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion_proto::protobuf::LogicalPlanNode;

use enclave_guard::pseudonym::person_map_udfs;
use enclave_guard::sketch::person_set_udaf;
use enclave_guard::top2::top2_sum_udaf;

/// The prefix of a cluster engine's address.
const BALLISTA_SCHEME: &str = "ballista://";

/// Where a session's plans run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Execution {
    /// In the front end's own process.
    #[default]
    InProcess,
    /// On the Ballista cluster whose scheduler is at `host:port`.
    Ballista { scheduler: String },
}

impl Execution {
    /// `state`, made to run its plans where this engine says.
    pub fn prepare(&self, state: SessionState) -> datafusion::error::Result<SessionState> {
        match self {
            Execution::InProcess => Ok(state),
            Execution::Ballista { scheduler } => {
                let mut state = state.upgrade_for_ballista(format!("df://{scheduler}"))?;
                state.register_udaf(top2_sum_udaf())?;
                state.register_udaf(person_set_udaf())?;
                for function in person_map_udfs() {
                    state.register_udf(function)?;
                }
                Ok(state)
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Execution::Ballista { .. })
    }

    /// A guard that cancels `plan`'s cluster job if it is dropped before
    /// [`JobGuard::finished`]: when the time limit fires or the client goes
    /// away. Ballista's client stops reading but leaves the job running.
    pub(crate) fn guard(&self, plan: &Arc<dyn ExecutionPlan>) -> JobGuard {
        let scheduler = match self {
            Execution::Ballista { scheduler } => Some(scheduler.clone()),
            Execution::InProcess => None,
        };
        JobGuard {
            scheduler,
            plan: Arc::clone(plan),
        }
    }

    /// Rows the scans of `plan` produced, when it ran on the cluster, as
    /// its scheduler reports them; `None` for a plan run in this process.
    /// A scheduler that cannot say counts as 0 rows (the audit record then
    /// under-reports; the query's result is unaffected).
    pub(crate) async fn cluster_source_rows(&self, plan: &dyn ExecutionPlan) -> Option<u64> {
        let Execution::Ballista { scheduler } = self else {
            return None;
        };
        let job_id = cluster_job_id(plan)?;
        match job_scan_rows(scheduler, job_id).await {
            Ok(rows) => Some(rows),
            Err(error) => {
                tracing::warn!(%error, "cluster job metrics unavailable; rows scanned reported as 0");
                Some(0)
            }
        }
    }
}

/// The operator the cluster's scans run as.
const SCAN_OPERATOR: &str = "DataSourceExec";

/// See [`Execution::guard`].
#[derive(Debug)]
pub(crate) struct JobGuard {
    /// `None` once finished, or for a plan run in this process.
    scheduler: Option<String>,
    plan: Arc<dyn ExecutionPlan>,
}

impl JobGuard {
    pub(crate) fn finished(mut self) {
        self.scheduler = None;
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let Some(scheduler) = self.scheduler.take() else {
            return;
        };
        let Some(job_id) = cluster_job_id(self.plan.as_ref()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let cancelled = async {
                scheduler_client(&scheduler)
                    .await?
                    .cancel_job(CancelJobParams {
                        job_id: job_id.clone(),
                    })
                    .await?;
                Ok::<_, ClientError>(())
            };
            match cancelled.await {
                Ok(()) => tracing::info!(job_id, "stopped query's cluster job cancelled"),
                Err(error) => {
                    tracing::warn!(job_id, %error, "cannot cancel a stopped query's cluster job")
                }
            }
        });
    }
}

type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// The scheduler's job id of a plan that was submitted to the cluster.
fn cluster_job_id(plan: &dyn ExecutionPlan) -> Option<String> {
    let job_id = plan
        .downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()?
        .job_id()?;
    Some(job_id.to_string())
}

async fn scheduler_client(
    scheduler: &str,
) -> Result<SchedulerGrpcClient<tonic::transport::Channel>, ClientError> {
    Ok(SchedulerGrpcClient::connect(format!("http://{scheduler}")).await?)
}

async fn job_scan_rows(scheduler: &str, job_id: String) -> Result<u64, ClientError> {
    let job = scheduler_client(scheduler)
        .await?
        .get_job_metrics(GetJobMetricsParams { job_id })
        .await?
        .into_inner();
    let mut rows = 0;
    for stage in job.stages {
        for operator in stage.operators {
            if operator.operator_type == SCAN_OPERATOR {
                let metrics: MetricsSet = OperatorMetricsSet {
                    metrics: operator.metrics,
                }
                .try_into()?;
                rows += metrics.output_rows().unwrap_or(0) as u64;
            }
        }
    }
    Ok(rows)
}

/// Why an engine address was refused.
#[derive(Debug, thiserror::Error)]
#[error("engine `{0}`: give `embedded` or ballista://host:port")]
pub struct BadEngine(String);

impl FromStr for Execution {
    type Err = BadEngine;

    fn from_str(text: &str) -> Result<Execution, BadEngine> {
        if text == "embedded" {
            return Ok(Execution::InProcess);
        }
        let scheduler = text
            .strip_prefix(BALLISTA_SCHEME)
            .filter(|address| host_port(address).is_some())
            .ok_or_else(|| BadEngine(text.to_string()))?;
        Ok(Execution::Ballista {
            scheduler: scheduler.to_string(),
        })
    }
}

impl fmt::Display for Execution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Execution::InProcess => f.write_str("embedded"),
            Execution::Ballista { scheduler } => write!(f, "{BALLISTA_SCHEME}{scheduler}"),
        }
    }
}

/// `host:port` with a non-empty host (no path) and a non-zero port.
pub fn host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|port| *port > 0)?;
    (!host.is_empty() && !host.contains('/')).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_and_print_back() {
        for text in [
            "embedded",
            "ballista://127.0.0.1:50050",
            "ballista://scheduler:50050",
        ] {
            let engine: Execution = text.parse().unwrap();
            assert_eq!(engine.to_string(), text);
        }
        assert!(!Execution::InProcess.is_cluster());
        assert!("ballista://h:1".parse::<Execution>().unwrap().is_cluster());
    }

    #[test]
    fn malformed_engines_are_refused() {
        for text in [
            "",
            "ballista",
            "ballista://",
            "ballista://host",
            "ballista://:50050",
            "ballista://host:0",
            "ballista://host:port",
            "ballista://host:50050/path",
            "df://host:50050",
        ] {
            let error = text.parse::<Execution>().unwrap_err();
            assert!(error.to_string().contains("ballista://host:port"), "{text}");
        }
    }
}
