//! The query engine: opens the newest release, resolves a user's project,
//! and runs statements through guard → DataFusion → disclosure control.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
    SchemaProvider,
};
use datafusion::common::ParamValues;
use datafusion::datasource::TableProvider;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use enclave_catalog::Catalog;
use enclave_core::date::CivilDate;
use enclave_state::{
    Clock, Destroyed, Period, Project, ProjectStatus, Protection, Snapshot, StateStore,
};
use enclave_store::{DataStore, Manifest};
use url::Url;

use crate::comparisons::check_text_compared_with_numbers;
use crate::execution::Execution;
use crate::grants::outside_grant;
use crate::ids::{ProjectIdKeys, new_query_id};
use crate::ledger::{Asking, OverBudget, ProjectLedger, ReleaseLedger};
use crate::limits::{
    ClusterLimits, ConcurrencyCaps, Limits, QueryPool, YieldAfterJoins, shared_pool,
};
use crate::optout::OptOutIndex;
use crate::references::{self, REFERENCE_SCHEMA};
use crate::scan::{ScanStats, collect_measured};
use crate::show;
use crate::stage::{run_stage, stage_schema};
use crate::tables::{STORE_URL, guarded_table};
use crate::workspace::{NewTable, ReleaseStamp, Workspace};
use enclave_guard::check_reserved_names;
use enclave_guard::disclosure::{self, Assessment, DisclosureRules, Released};
use enclave_guard::error::{QueryError, Rule};
use enclave_guard::expressions::make_total;
use enclave_guard::ledger::{LedgerRules, NOISE_SD};
use enclave_guard::policy::PublicationPolicy;
use enclave_guard::release::{ReleaseOptions, ReleasePlan, ReleasedValue, release};
use enclave_guard::rewrite::Scope;
use enclave_guard::sketch::CAPACITY;
use enclave_guard::statement::{Request, WORKSPACE_SCHEMA, classify};
use enclave_guard::table::GuardedTable;
use enclave_guard::table::RowSource;
use enclave_guard::tags::{ColumnMarks, Tags};
use enclave_screen::PersonKeys;

/// The catalog name every session uses.
pub const CATALOG: &str = "enclave";

/// The release being served.
#[derive(Debug)]
struct ServedRelease {
    /// The release id with its key's fingerprint (workspace tables built
    /// from it record them).
    stamp: ReleaseStamp,
    catalog: Catalog,
    /// Object paths of each table's files, by `schema.table`.
    files: BTreeMap<String, Vec<String>>,
    opt_outs: OptOutIndex,
    /// The first and last service months with rows in any table.
    coverage: Option<Period>,
    /// The release's largest `person_id` (ids are 1 … this), from its
    /// ingest summary.
    max_person_id: Option<i64>,
}

#[derive(Debug)]
struct EngineInner {
    store: DataStore,
    state: Arc<StateStore>,
    release: ServedRelease,
    limits: Limits,
    execution: Execution,
    memory: Arc<dyn MemoryPool>,
    object_stores: Arc<dyn ObjectStoreRegistry>,
    running: ConcurrencyCaps,
    ledger: ReleaseLedger,
    /// The keys of the projects' person ids.
    project_ids: ProjectIdKeys,
    /// Whose today decides whether a project is still open.
    clock: Clock,
}

/// Shared by every connection; cheap to clone.
#[derive(Debug, Clone)]
pub struct QueryEngine {
    inner: Arc<EngineInner>,
}

impl QueryEngine {
    /// Serves the newest published release of `store`, running plans in
    /// this process.
    pub async fn open(
        store: DataStore,
        state: Arc<StateStore>,
        limits: Limits,
    ) -> Result<QueryEngine, QueryError> {
        QueryEngine::open_on(store, state, limits, Execution::InProcess, Clock::system()).await
    }

    /// Serves the newest published release of `store`, running project
    /// queries where `execution` says. A cluster must read the same store:
    /// that is checked here by counting one table's rows on it. `clock`
    /// tells whether a project's grant still runs.
    pub async fn open_on(
        store: DataStore,
        state: Arc<StateStore>,
        limits: Limits,
        execution: Execution,
        clock: Clock,
    ) -> Result<QueryEngine, QueryError> {
        let manifest = store
            .latest()
            .await
            .map_err(QueryError::internal)?
            .ok_or_else(|| {
                QueryError::Invalid("the data store holds no published release".into())
            })?;
        let catalog_entry = manifest
            .file(enclave_ingest::CATALOG_PATH)
            .ok_or_else(|| QueryError::internal("release has no catalog"))?;
        let catalog_bytes = store
            .read_verified(&manifest.release_id, catalog_entry)
            .await
            .map_err(QueryError::internal)?;
        let catalog: Catalog =
            serde_json::from_slice(&catalog_bytes).map_err(QueryError::internal)?;
        let files = manifest
            .content
            .tables
            .iter()
            .map(|(name, entry)| {
                let paths = entry
                    .files
                    .iter()
                    .map(|file| format!("releases/{}/{file}", manifest.release_id))
                    .collect();
                (name.clone(), paths)
            })
            .collect();
        let opt_outs = OptOutIndex::load(&store, &manifest).await?;
        let project_ids = ProjectIdKeys::load(&state)?;
        let registry = DefaultObjectStoreRegistry::new();
        registry.register_store(&store_url(), store.object_store());
        tracing::info!(release = manifest.release_id, %execution, "serving release");
        let engine = QueryEngine {
            inner: Arc::new(EngineInner {
                memory: shared_pool(&limits),
                store,
                state,
                release: ServedRelease {
                    stamp: ReleaseStamp {
                        release_id: manifest.release_id.clone(),
                        key_fingerprint: manifest.content.key_fingerprint.clone(),
                    },
                    catalog,
                    files,
                    opt_outs,
                    coverage: coverage(&manifest)?,
                    max_person_id: max_person_id(&manifest),
                },
                limits,
                execution,
                object_stores: Arc::new(registry),
                running: ConcurrencyCaps::default(),
                ledger: ReleaseLedger::default(),
                project_ids,
                clock,
            }),
        };
        engine.check_cluster_reads(&manifest).await?;
        Ok(engine)
    }

    /// On a cluster, counts the rows of the release's smallest non-empty
    /// table there and compares them with the manifest: a cluster given
    /// another data store would otherwise answer every query from nothing.
    async fn check_cluster_reads(&self, manifest: &Manifest) -> Result<(), QueryError> {
        if !self.inner.execution.is_cluster() {
            return Ok(());
        }
        let Some((name, entry)) = manifest
            .content
            .tables
            .iter()
            .filter(|(_, entry)| entry.rows > 0)
            .min_by_key(|(_, entry)| entry.rows)
        else {
            return Ok(());
        };
        let release = &self.inner.release;
        let (_, table) = release
            .catalog
            .table(name)
            .ok_or_else(|| QueryError::internal("release table missing from its catalog"))?;
        let table = crate::tables::listing_table(&table.arrow_schema(), &release.files[name])?;
        let context = self.cluster_context(MemoryCatalogProvider::new(), WORKSPACE_SCHEMA)?;
        let counted = context
            .read_table(Arc::new(table))?
            .count()
            .await
            .map_err(|error| self.cluster_unreachable(&error))?;
        if counted as u64 != entry.rows {
            return Err(QueryError::Invalid(format!(
                "the cluster at {} reads another data store than this server \
                 ({name}: {counted} rows there, {} in release {}); give both the same --data",
                self.inner.execution, entry.rows, manifest.release_id
            )));
        }
        tracing::info!(engine = %self.inner.execution, "cluster reads the served release");
        Ok(())
    }

    /// Why the start-up count failed, for the operator starting the server
    /// (a count carries no data values).
    fn cluster_unreachable(&self, error: &datafusion::error::DataFusionError) -> QueryError {
        let detail = error.to_string();
        let detail = detail.lines().next().unwrap_or_default();
        QueryError::Invalid(format!(
            "cannot run a query on the cluster at {}: {detail}",
            self.inner.execution
        ))
    }

    pub fn release_id(&self) -> &str {
        &self.inner.release.stamp.release_id
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.release.catalog
    }

    pub fn state(&self) -> &Arc<StateStore> {
        &self.inner.state
    }

    /// What the members of `project` see of the release ledger: releases
    /// its results made and the values of released groups in them. The
    /// caller has checked that the asker may see the project.
    pub async fn project_ledger(&self, project: &str) -> Result<ProjectLedger, QueryError> {
        self.inner.ledger.project(&self.inner.state, project).await
    }

    /// The service months the served release covers, from the first month
    /// of its earliest table to the last of its latest; `None` when no table
    /// has rows.
    pub fn coverage(&self) -> Option<Period> {
        self.inner.release.coverage
    }

    /// The project `user` works in: the one named by `requested`, or the
    /// user's only active project.
    pub async fn session(
        &self,
        user: &str,
        requested: Option<&str>,
    ) -> Result<ProjectSession, QueryError> {
        let today = self.inner.clock.today();
        let projects = self.snapshot().await?.projects_of(user);
        let project = match requested {
            Some(id) => projects.into_iter().find(|p| p.id == id).ok_or_else(|| {
                QueryError::refused(
                    Rule::NoProject,
                    format!("you are not a member of project `{id}`"),
                )
            })?,
            None => default_project(projects, today)?,
        };
        check_project_open(&project, today)?;
        Ok(ProjectSession::new(self.clone(), user, project))
    }

    /// Accounts, projects and opt-outs as of the state store's latest
    /// change.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, QueryError> {
        self.inner
            .state
            .snapshot()
            .await
            .map_err(QueryError::internal)
    }

    /// A DataFusion context over `catalog` alone, run in this process.
    pub(crate) fn context(
        &self,
        catalog: MemoryCatalogProvider,
        default_schema: &str,
    ) -> Result<SessionContext, QueryError> {
        Ok(SessionContext::new_with_state(
            self.session_state(catalog, default_schema)?,
        ))
    }

    /// A DataFusion context over `catalog` alone whose plans run on the
    /// engine's execution (in this process or on the cluster).
    pub(crate) fn cluster_context(
        &self,
        catalog: MemoryCatalogProvider,
        default_schema: &str,
    ) -> Result<SessionContext, QueryError> {
        let state = self.session_state(catalog, default_schema)?;
        Ok(SessionContext::new_with_state(
            self.inner.execution.prepare(state)?,
        ))
    }

    /// A session over `catalog` alone, within the query limits: no other
    /// catalog, no file-reading table functions, no spilling.
    fn session_state(
        &self,
        catalog: MemoryCatalogProvider,
        default_schema: &str,
    ) -> Result<SessionState, QueryError> {
        let catalogs = MemoryCatalogProviderList::new();
        datafusion::catalog::CatalogProviderList::register_catalog(
            &catalogs,
            CATALOG.into(),
            Arc::new(catalog),
        );
        let limits = &self.inner.limits;
        let config = SessionConfig::new()
            .with_option_extension(ClusterLimits {
                query_memory_bytes: limits.query_memory_bytes,
            })
            .with_information_schema(false)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG, default_schema)
            .with_target_partitions(limits.target_partitions);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(QueryPool::new(
                limits.query_memory_bytes,
                Arc::clone(&self.inner.memory),
            )))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .with_object_store_registry(Arc::clone(&self.inner.object_stores))
            .build_arc()?;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_catalog_list(Arc::new(catalogs))
            .with_table_factories(Default::default())
            .with_table_functions(Default::default())
            .with_physical_optimizer_rule(Arc::new(YieldAfterJoins))
            .build();
        Ok(state)
    }

    /// Runs `work` for `user` within the per-user concurrency cap and the
    /// time limit.
    pub(crate) async fn limited<T>(
        &self,
        user: &str,
        work: impl Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        let limits = &self.inner.limits;
        let _permit = self
            .inner
            .running
            .acquire(user, limits.concurrent_queries_per_user)?;
        let timeout = limits.query_timeout;
        let outcome = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| QueryError::Timeout(timeout.as_secs()))?;
        outcome.map_err(|error| self.cluster_limit_reached(error))
    }

    /// A query that failed on the cluster comes back as an internal error
    /// whose text may say it reached a limit; such a one becomes that
    /// limit's own error.
    fn cluster_limit_reached(&self, error: QueryError) -> QueryError {
        match &error {
            QueryError::Internal(detail) if self.inner.execution.is_cluster() => {
                crate::limits::cluster_limit_reached(detail, &self.inner.limits).unwrap_or(error)
            }
            _ => error,
        }
    }

    /// The person ids of every project, which a brought-in table must not
    /// hold (照合禁止).
    pub async fn person_keys(&self) -> Result<PersonKeys, QueryError> {
        let max_person_id = self.inner.release.max_person_id.ok_or_else(|| {
            QueryError::internal("the served release does not say how many persons it holds")
        })?;
        let snapshot = self.snapshot().await?;
        let projects = snapshot
            .projects()
            .iter()
            .map(|project| self.inner.project_ids.project(&project.id))
            .collect();
        Ok(PersonKeys {
            projects,
            max_person_id,
        })
    }

    /// The served data store (where brought-in tables are kept).
    pub fn store(&self) -> &DataStore {
        &self.inner.store
    }

    /// Destroys the workspace of a closed project in the served store.
    pub async fn destroy_project_workspace(
        &self,
        project: &str,
    ) -> Result<Vec<Destroyed>, QueryError> {
        QueryEngine::destroy_workspace(&self.inner.store, project).await
    }

    /// Destroys the workspace of a closed project: what it held.
    pub async fn destroy_workspace(
        store: &DataStore,
        project: &str,
    ) -> Result<Vec<Destroyed>, QueryError> {
        Workspace::new(store.clone(), project).destroy_all().await
    }
}

fn store_url() -> Url {
    Url::parse(STORE_URL).expect("static URL")
}

/// The largest `person_id` of a release: its summary's `max_person_id`, or,
/// in a release from before ids were kept across releases (dense ids), its
/// number of persons.
fn max_person_id(manifest: &Manifest) -> Option<i64> {
    let summary = &manifest.content.summary;
    summary["max_person_id"]
        .as_i64()
        .or_else(|| summary["persons"].as_i64())
}

fn coverage(manifest: &Manifest) -> Result<Option<Period>, QueryError> {
    let tables = manifest.content.tables.values();
    let first = tables
        .clone()
        .filter_map(|t| t.first_month.as_deref())
        .min();
    let last = tables.filter_map(|t| t.last_month.as_deref()).max();
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    format!("{first}..{last}")
        .parse()
        .map(Some)
        .map_err(QueryError::internal)
}

fn default_project(projects: Vec<Project>, today: CivilDate) -> Result<Project, QueryError> {
    let open: Vec<&Project> = projects.iter().filter(|p| p.is_open_on(today)).collect();
    match (open.as_slice(), projects.as_slice()) {
        ([only], _) => Ok((*only).clone()),
        ([], [only]) => Ok(only.clone()),
        ([], _) => Err(QueryError::refused(
            Rule::NoProject,
            "you have no active project; queries need an approved project",
        )),
        _ => Err(QueryError::refused(
            Rule::NoProject,
            "you are a member of several projects; choose one with the call header x-enclave-project",
        )),
    }
}

fn check_project_open(project: &Project, today: CivilDate) -> Result<(), QueryError> {
    if project.status == ProjectStatus::Closed {
        return Err(QueryError::refused(
            Rule::ProjectClosed,
            format!("project `{}` is closed", project.id),
        ));
    }
    if !project.is_current(today) {
        return Err(QueryError::refused(
            Rule::ProjectExpired,
            format!("project `{}` ended on {}", project.id, project.valid_until),
        ));
    }
    Ok(())
}

/// What preparing a statement tells the client: the schema of its result
/// (empty for a statement that returns none) and of its parameters (`$1`,
/// `$2`, … in order; type Null where the statement does not fix one).
#[derive(Debug)]
pub struct Prepared {
    pub schema: SchemaRef,
    pub parameters: SchemaRef,
}

impl Prepared {
    pub(crate) fn without_parameters(schema: SchemaRef) -> Prepared {
        Prepared {
            schema,
            parameters: empty_schema(),
        }
    }

    fn no_result(parameters: SchemaRef) -> Prepared {
        Prepared {
            schema: empty_schema(),
            parameters,
        }
    }
}

fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

/// The parameters of `plan`, in placeholder order.
pub(crate) fn parameter_schema(plan: &LogicalPlan) -> Result<SchemaRef, QueryError> {
    let mut parameters: Vec<(usize, String, DataType)> = plan
        .get_parameter_types()?
        .into_iter()
        .map(|(id, data_type)| {
            let position = id.trim_start_matches('$').parse().unwrap_or(usize::MAX);
            (position, id, data_type.unwrap_or(DataType::Null))
        })
        .collect();
    parameters.sort();
    Ok(Arc::new(Schema::new(
        parameters
            .into_iter()
            .map(|(_, id, data_type)| Field::new(id, data_type, true))
            .collect::<Vec<_>>(),
    )))
}

/// One statement, parsed and classified within the input bounds, not yet
/// run.
#[derive(Debug)]
pub struct Statement(Request);

impl Statement {
    pub fn parse(sql: &str) -> Result<Statement, QueryError> {
        Ok(Statement(classify(sql)?))
    }

    /// Whether running it writes to the project's workspace (`CREATE TABLE
    /// work.…`, `DROP TABLE work.…`): what records it must be durable first.
    pub fn changes_workspace(&self) -> bool {
        match self.0 {
            Request::CreateWorkspaceTable { .. } | Request::DropWorkspaceTable { .. } => true,
            Request::Query(_) | Request::ShowTables | Request::ShowColumns { .. } => false,
        }
    }
}

/// The result of one statement.
#[derive(Debug)]
pub enum Outcome {
    /// A disclosure-checked result.
    Rows(Released),
    /// A workspace change; the number of rows written (0 for a drop).
    Updated(u64),
}

/// A table as a session's metadata calls list it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub schema: String,
    pub table: String,
    pub columns: SchemaRef,
}

/// One user working in one project.
#[derive(Debug, Clone)]
pub struct ProjectSession {
    engine: QueryEngine,
    user: String,
    project: Project,
}

impl ProjectSession {
    /// `user` working in `project`; callers decide whether they may.
    pub(crate) fn new(engine: QueryEngine, user: &str, project: Project) -> ProjectSession {
        ProjectSession {
            engine,
            user: user.to_string(),
            project,
        }
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    fn inner(&self) -> &EngineInner {
        &self.engine.inner
    }

    fn workspace(&self) -> Workspace {
        Workspace::new(self.inner().store.clone(), &self.project.id)
    }

    /// The project's workspace tables as the served release reads them.
    async fn workspace_tables(&self) -> Result<Vec<(String, GuardedTable)>, QueryError> {
        self.workspace().tables(&self.inner().release.stamp).await
    }

    /// The tables the project brought in and the committee approved.
    async fn reference_tables(&self) -> Result<Vec<(String, GuardedTable)>, QueryError> {
        let snapshot = self.engine.snapshot().await?;
        let mut tables = Vec::new();
        for reference in snapshot.references_of(&self.project.id) {
            let table = references::table(&self.inner().store, reference).await?;
            tables.push((reference.name.clone(), table));
        }
        Ok(tables)
    }

    /// The publication rules' thresholds for this project's k.
    fn rules(&self) -> Result<DisclosureRules, QueryError> {
        let policy = PublicationPolicy::embedded().map_err(QueryError::internal)?;
        Ok(policy.rules(self.project.k.max(enclave_state::DEFAULT_K)))
    }

    async fn scope(&self) -> Result<Scope, QueryError> {
        let snapshot = self.engine.snapshot().await?;
        let persons = self.inner().release.opt_outs.persons(snapshot.opt_outs())?;
        Ok(Scope {
            period: (
                self.project.period.first.month().to_string(),
                self.project.period.last.month().to_string(),
            ),
            opted_out: Arc::new(persons),
            project_ids: Some(self.inner().project_ids.project(&self.project.id)),
            care_output: true,
        })
    }

    /// Every table the session can see, with its visible columns.
    pub async fn tables(&self) -> Result<Vec<TableInfo>, QueryError> {
        let mut tables: Vec<TableInfo> = self
            .granted_tables()?
            .into_iter()
            .map(|(schema, table, guarded)| TableInfo {
                schema,
                table,
                columns: guarded.schema(),
            })
            .collect();
        for (name, table) in self.workspace_tables().await? {
            tables.push(TableInfo {
                schema: WORKSPACE_SCHEMA.to_string(),
                table: name,
                columns: table.schema(),
            });
        }
        for (name, table) in self.reference_tables().await? {
            tables.push(TableInfo {
                schema: REFERENCE_SCHEMA.to_string(),
                table: name,
                columns: table.schema(),
            });
        }
        Ok(tables)
    }

    fn granted_tables(&self) -> Result<Vec<(String, String, GuardedTable)>, QueryError> {
        let release = &self.inner().release;
        let policy = PublicationPolicy::embedded().map_err(QueryError::internal)?;
        let mut tables = Vec::new();
        for grant in &self.project.grants {
            let Some((schema, table)) = release.catalog.table(&grant.table) else {
                continue;
            };
            let visible: Vec<(Field, Tags)> = table
                .columns
                .iter()
                .filter(|column| grant.allows_column(&column.name))
                .map(|column| {
                    let marks = ColumnMarks {
                        facility: column.identifies_facility,
                        volume: policy.volume_minimum(&grant.table, &column.name).is_some(),
                        municipality: policy.is_municipality(&grant.table, &column.name),
                        care: policy.is_care(&schema.name),
                        fine_age: policy.is_finer_than_care_ages(column.generalization.as_ref()),
                    };
                    (column.arrow_field(), Tags::of_class(column.class, marks))
                })
                .collect();
            let files = release.files.get(&grant.table).cloned().unwrap_or_default();
            let guarded = guarded_table(visible, &table.arrow_schema(), &files, RowSource::Release)
                .map_err(QueryError::internal)?;
            tables.push((schema.name.clone(), table.name.clone(), guarded));
        }
        Ok(tables)
    }

    /// A DataFusion context holding only this project's tables.
    async fn context(&self) -> Result<SessionContext, QueryError> {
        let catalog = MemoryCatalogProvider::new();
        for (schema, table, guarded) in self.granted_tables()? {
            let provider = match catalog.schema(&schema) {
                Some(provider) => provider,
                None => {
                    let provider: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
                    catalog.register_schema(&schema, Arc::clone(&provider))?;
                    provider
                }
            };
            provider.register_table(table, Arc::new(guarded))?;
        }
        let work = MemorySchemaProvider::new();
        for (name, table) in self.workspace_tables().await? {
            work.register_table(name, Arc::new(table))?;
        }
        catalog.register_schema(WORKSPACE_SCHEMA, Arc::new(work))?;
        let references = MemorySchemaProvider::new();
        for (name, table) in self.reference_tables().await? {
            references.register_table(name, Arc::new(table))?;
        }
        catalog.register_schema(REFERENCE_SCHEMA, Arc::new(references))?;
        self.engine.cluster_context(catalog, WORKSPACE_SCHEMA)
    }

    /// The schema a statement's result will have, without running it.
    pub async fn prepare(&self, sql: &str) -> Result<Prepared, QueryError> {
        match classify(sql)? {
            Request::Query(statement) => {
                let context = self.context().await?;
                let plan = self.user_plan(&context, statement, None).await?;
                let parameters = parameter_schema(&plan)?;
                let release = self.guard(plan).await?;
                let schema = if release.checked {
                    stage_schema(&release.result_stage, release.plan.schema())?
                } else {
                    disclosure::visible_schema(release.plan.schema().as_arrow())
                };
                Ok(Prepared { schema, parameters })
            }
            Request::CreateWorkspaceTable { query, .. } => {
                let context = self.context().await?;
                let plan = self.user_plan(&context, query, None).await?;
                Ok(Prepared::no_result(parameter_schema(&plan)?))
            }
            Request::DropWorkspaceTable { .. } => Ok(Prepared::no_result(empty_schema())),
            Request::ShowTables => Ok(Prepared::without_parameters(show::tables_schema())),
            Request::ShowColumns { .. } => Ok(Prepared::without_parameters(show::columns_schema())),
        }
    }

    /// Runs one statement with optional parameter values.
    pub async fn execute(
        &self,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<Outcome, QueryError> {
        self.execute_statement(Statement::parse(sql)?, params).await
    }

    /// Runs a parsed statement with optional parameter values.
    pub async fn execute_statement(
        &self,
        statement: Statement,
        params: Option<ParamValues>,
    ) -> Result<Outcome, QueryError> {
        // Executing binds every placeholder: a missing value is the
        // client's error, reported as such, not an internal one.
        let params = params.unwrap_or(ParamValues::List(Vec::new()));
        self.engine
            .limited(&self.user, self.run(statement.0, params))
            .await
    }

    async fn run(&self, request: Request, params: ParamValues) -> Result<Outcome, QueryError> {
        let context = self.context().await?;
        match request {
            Request::Query(statement) => {
                let release = self.guarded_plan(&context, statement, Some(params)).await?;
                let query_id = new_query_id()?;
                let mut released = self.release(&context, release, &query_id).await?;
                tracing::info!(
                    query_id,
                    project = self.project.id,
                    user = self.user,
                    released = released.released_groups,
                    suppressed = released.suppressed_groups,
                    suppressed_values = released.suppressed_values,
                    rows_scanned = released.scan.rows_scanned,
                    "query released"
                );
                released.query_id = Some(query_id);
                Ok(Outcome::Rows(released))
            }
            Request::CreateWorkspaceTable { name, query } => {
                let plan = self.user_plan(&context, query, Some(params)).await?;
                let rows = self
                    .workspace()
                    .create(
                        &context,
                        &NewTable {
                            name: &name,
                            served: &self.inner().release.stamp,
                            quota_bytes: self.project.workspace_quota_bytes,
                        },
                        &plan,
                        &self.scope().await?,
                        &self.inner().execution,
                    )
                    .await?;
                Ok(Outcome::Updated(rows))
            }
            Request::DropWorkspaceTable { name, if_exists } => {
                self.workspace().drop_table(&name, if_exists).await?;
                Ok(Outcome::Updated(0))
            }
            Request::ShowTables => Ok(Outcome::Rows(show::tables(&self.tables().await?)?)),
            Request::ShowColumns { table } => {
                Ok(Outcome::Rows(show::columns(&self.tables().await?, &table)?))
            }
        }
    }

    /// Runs a guarded plan: computes the released aggregate, applies
    /// disclosure control, then the result stage over the released values.
    async fn release(
        &self,
        context: &SessionContext,
        release: ReleasePlan,
        query_id: &str,
    ) -> Result<Released, QueryError> {
        let computed = Arc::clone(release.plan.schema());
        let schema = Arc::new(computed.as_arrow().clone());
        let (batches, scan) =
            collect_measured(context, &self.inner().execution, release.plan).await?;
        let mut released = if release.checked {
            let assessment = disclosure::assess(&self.rules()?, schema, &batches, &release.values)?;
            let released = match self.project.protection {
                Protection::SingleQuery => assessment.release()?,
                Protection::Ledger => self
                    .answer_from_ledger(assessment, &release.values, query_id)
                    .await?
                    .release()?,
            };
            run_stage(&release.result_stage, &computed, released).await?
        } else {
            Released {
                released_groups: batches.iter().map(|b| b.num_rows()).sum(),
                schema,
                batches,
                suppressed_groups: 0,
                suppressed_values: 0,
                scan: ScanStats::default(),
                ledger: None,
                query_id: None,
            }
        };
        released.scan = scan;
        Ok(released)
    }

    /// The release ledger's answers to the result's cells (docs/query-rules.md,
    /// "Across queries"), durable before they leave.
    async fn answer_from_ledger(
        &self,
        mut assessment: Assessment,
        values: &[ReleasedValue],
        query_id: &str,
    ) -> Result<Assessment, QueryError> {
        let cells = assessment.cells(values)?;
        let rules = LedgerRules {
            k: (self.rules()?.k as usize).min(CAPACITY),
            noise_sd: NOISE_SD,
        };
        let asking = Asking {
            project: self.project.id.clone(),
            query_id: query_id.to_string(),
            fresh_value_budget: self.project.fresh_value_budget,
        };
        let decided = self
            .inner()
            .ledger
            .decide(&self.inner().state, asking, cells, rules)
            .await?
            .map_err(over_budget)?;
        assessment.answer(
            values,
            &decided.decisions,
            decided.note,
            self.project.rounding.base(),
        )?;
        Ok(assessment)
    }

    /// The user's statement as a logical plan, checked by DataFusion's own
    /// statement options too (defence in depth) and for reserved names, with
    /// its implicit casts made explicit (so the guard sees, and makes total,
    /// every cast).
    async fn user_plan(
        &self,
        context: &SessionContext,
        statement: DfStatement,
        params: Option<ParamValues>,
    ) -> Result<LogicalPlan, QueryError> {
        let plan = context
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|error| {
                outside_grant(&error, &self.inner().release.catalog, &self.project)
                    .unwrap_or_else(|| error.into())
            })?;
        check_read_only(&plan)?;
        check_reserved_names(&plan)?;
        check_text_compared_with_numbers(&plan)?;
        let plan = match params {
            Some(params) => plan.with_param_values(params)?,
            None => plan,
        };
        let state = context.state();
        Ok(state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})?)
    }

    async fn guarded_plan(
        &self,
        context: &SessionContext,
        statement: DfStatement,
        params: Option<ParamValues>,
    ) -> Result<ReleasePlan, QueryError> {
        let plan = self.user_plan(context, statement, params).await?;
        self.guard(plan).await
    }

    /// The guard's release plan of a user's plan.
    async fn guard(&self, plan: LogicalPlan) -> Result<ReleasePlan, QueryError> {
        let options = ReleaseOptions {
            rounding: self.project.rounding.base(),
            person_sets: self.project.protection == Protection::Ledger,
        };
        let release = release(&plan, &self.scope().await?, options)?;
        Ok(ReleasePlan {
            plan: make_total(release.plan)?,
            ..release
        })
    }
}

/// The refusal of a result whose fresh values would pass its project's
/// budget. It names the project's own totals, which its members see on the
/// project's page anyway, never this result's.
fn over_budget(over: OverBudget) -> QueryError {
    QueryError::refused(
        Rule::FreshValueBudget,
        format!(
            "the project has had {} of its {} values answered fresh, and this result would pass \
             that budget; answers that repeat earlier ones stay free, and the review committee \
             can raise the budget",
            over.spent, over.budget
        ),
    )
}

/// A statement's logical plan, refused by DataFusion's own statement options
/// unless it only reads (defence in depth behind [`classify`]).
pub(crate) async fn read_only_plan(
    context: &SessionContext,
    statement: DfStatement,
) -> Result<LogicalPlan, QueryError> {
    let plan = context.state().statement_to_plan(statement).await?;
    check_read_only(&plan)?;
    Ok(plan)
}

/// Refuses `plan` by DataFusion's own statement options unless it only
/// reads (defence in depth behind [`classify`]).
fn check_read_only(plan: &LogicalPlan) -> Result<(), QueryError> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use enclave_store::{Manifest, ReleaseContent};

    use super::max_person_id;

    fn manifest(summary: serde_json::Value) -> Manifest {
        Manifest {
            format_version: 1,
            release_id: "r000002".into(),
            created_at: String::new(),
            content: ReleaseContent {
                summary,
                ..ReleaseContent::default()
            },
            files: Vec::new(),
        }
    }

    #[test]
    fn the_bring_in_screen_covers_ids_past_the_person_count() {
        // After a merge retired an id, the largest id exceeds the count of
        // persons: an upload holding it must still be a person key.
        let merged = manifest(serde_json::json!({"persons": 10, "max_person_id": 12}));
        assert_eq!(max_person_id(&merged), Some(12));
        // A release from before ids were kept across releases: dense 1..=persons.
        let dense = manifest(serde_json::json!({"persons": 10}));
        assert_eq!(max_person_id(&dense), Some(10));
        assert_eq!(max_person_id(&manifest(serde_json::json!({}))), None);
    }
}
