//! Project workspaces: row-level results saved inside the enclave as Parquet
//! under `workspaces/<project>/<name>.parquet`, with the hidden person column
//! and each column's tags, so later queries are guarded exactly like catalog
//! tables. Nothing in a workspace leaves except through disclosure control.
//!
//! A table's person and record ids are the project's ids of the release it
//! was built from (see `enclave_guard::pseudonym`; mapped as rows are saved
//! and mapped back as they are read), so each file records that release;
//! once the service serves another, the table is refused by name until it is
//! dropped and built again, never joined to the new release's ids.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use enclave_state::Destroyed;
use enclave_store::DataStore;

use crate::execution::Execution;
use crate::tables::guarded_table;
use enclave_guard::error::{QueryError, Rule};
use enclave_guard::expressions::make_total;
use enclave_guard::pseudonym::ProjectIds;
use enclave_guard::rewrite::{Scope, rewrite};
use enclave_guard::table::{GuardedTable, PERSON, RowSource};
use enclave_guard::tags::Tags;

const TAGS_KEY: &str = "enclave.tags";
/// File metadata: the release a table was built from, and its key.
const RELEASE_KEY: &str = "enclave.release";
const KEY_FINGERPRINT_KEY: &str = "enclave.key_fingerprint";
/// File metadata: whose person ids the table holds (the project's; files
/// from before projects had their own ids hold the release's).
const PERSON_IDS_KEY: &str = "enclave.person_ids";
const PROJECT_IDS: &str = "project";
const ROOT: &str = "workspaces";

/// A release as workspace tables record it: its person ids are meaningless
/// in any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStamp {
    pub release_id: String,
    pub key_fingerprint: String,
}

impl ReleaseStamp {
    fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            (RELEASE_KEY.to_string(), self.release_id.clone()),
            (
                KEY_FINGERPRINT_KEY.to_string(),
                self.key_fingerprint.clone(),
            ),
            (PERSON_IDS_KEY.to_string(), PROJECT_IDS.to_string()),
        ])
    }

    /// The stamp a file's schema records (none in files from before tables
    /// recorded their release).
    fn of(schema: &Schema) -> Option<ReleaseStamp> {
        let metadata = schema.metadata();
        Some(ReleaseStamp {
            release_id: metadata.get(RELEASE_KEY)?.clone(),
            key_fingerprint: metadata.get(KEY_FINGERPRINT_KEY)?.clone(),
        })
    }
}

/// A table about to be saved: its name, the release it is built from and
/// the project's quota.
#[derive(Debug, Clone, Copy)]
pub struct NewTable<'a> {
    pub name: &'a str,
    pub served: &'a ReleaseStamp,
    pub quota_bytes: u64,
}

#[derive(Debug)]
pub struct Workspace {
    store: DataStore,
    project: String,
}

impl Workspace {
    pub fn new(store: DataStore, project: &str) -> Workspace {
        Workspace {
            store,
            project: project.to_string(),
        }
    }

    fn objects(&self) -> Arc<dyn ObjectStore> {
        self.store.object_store()
    }

    fn prefix(&self) -> ObjectPath {
        ObjectPath::from(ROOT).join(self.project.as_str())
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.prefix().join(format!("{name}.parquet"))
    }

    /// Table name → object.
    async fn list(&self) -> Result<HashMap<String, ObjectMeta>, QueryError> {
        let objects: Vec<ObjectMeta> = self
            .objects()
            .list(Some(&self.prefix()))
            .try_collect()
            .await
            .map_err(QueryError::internal)?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta
                    .location
                    .filename()?
                    .strip_suffix(".parquet")?
                    .to_string();
                Some((name, meta))
            })
            .collect())
    }

    /// The Arrow schema stored in a workspace file, with field metadata.
    /// Text reads as `Utf8`, as in catalog tables (not DataFusion's
    /// default `Utf8View` for Parquet), so a client sees one string type.
    async fn file_schema(&self, meta: ObjectMeta) -> Result<SchemaRef, QueryError> {
        let format = ParquetFormat::default()
            .with_skip_metadata(false)
            .with_force_view_types(false);
        let state = SessionContext::new().state();
        Ok(format
            .infer_schema(&state, &self.objects(), &[meta])
            .await?)
    }

    /// The workspace's tables, read as usual when built from the `served`
    /// release and refused by name ([`RowSource::Unreadable`]) otherwise.
    pub async fn tables(
        &self,
        served: &ReleaseStamp,
    ) -> Result<Vec<(String, GuardedTable)>, QueryError> {
        let mut tables = Vec::new();
        let mut listed: Vec<(String, ObjectMeta)> = self.list().await?.into_iter().collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in listed {
            let path = meta.location.clone();
            let file_schema = self.file_schema(meta).await?;
            let visible: Vec<(Field, Tags)> = file_schema
                .fields()
                .iter()
                .filter(|field| field.name() != PERSON)
                .map(|field| {
                    let tags = field
                        .metadata()
                        .get(TAGS_KEY)
                        .map_or(Tags::UNKNOWN, |t| Tags::from_metadata(t));
                    (
                        Field::new(field.name(), field.data_type().clone(), field.is_nullable()),
                        tags,
                    )
                })
                .collect();
            let source = source(&name, &file_schema, served);
            let table = guarded_table(visible, &file_schema, &[path.to_string()], source)
                .map_err(QueryError::internal)?;
            tables.push((name, table));
        }
        Ok(tables)
    }

    /// Saves the rows of `plan` (guarded like any query) as `work.<name>`,
    /// recording that it was built from the `served` release.
    pub async fn create(
        &self,
        context: &SessionContext,
        target: &NewTable<'_>,
        plan: &LogicalPlan,
        scope: &Scope,
        execution: &Execution,
    ) -> Result<u64, QueryError> {
        let NewTable {
            name,
            served,
            quota_bytes,
        } = *target;
        let existing = self.list().await?;
        if existing.contains_key(name) {
            return Err(QueryError::refused(
                Rule::Workspace,
                format!("work.{name} already exists; DROP TABLE work.{name} first"),
            ));
        }
        let used: u64 = existing.values().map(|meta| meta.size).sum();
        let remaining = quota_bytes.saturating_sub(used);
        let guarded = rewrite(plan, &scope.reading(plan)?)?;
        let Some(person) = guarded.person.clone() else {
            return Err(QueryError::refused(
                Rule::Workspace,
                "workspace tables hold person-level rows; select from catalog or workspace tables",
            ));
        };
        let project_ids = scope
            .project_ids
            .as_ref()
            .ok_or_else(|| QueryError::internal("a workspace table needs the project's ids"))?;
        let (output, schema) = output_plan(
            make_total(guarded.plan)?,
            (&person, &guarded.tags),
            project_ids,
        )?;
        let schema = Arc::new(schema.as_ref().clone().with_metadata(served.metadata()));
        let physical = context
            .execute_logical_plan(output)
            .await?
            .create_physical_plan()
            .await?;
        // A cluster job left behind (time limit, quota) is cancelled.
        let job = execution.guard(&physical);
        let mut stream = execute_stream(physical, context.task_ctx())?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).map_err(QueryError::internal)?,
            ))
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(properties))
            .map_err(QueryError::internal)?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = RecordBatch::try_new(Arc::clone(&schema), batch?.columns().to_vec())
                .map_err(QueryError::internal)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(QueryError::internal)?;
            if (writer.bytes_written() + writer.in_progress_size()) as u64 > remaining {
                return Err(quota_refusal(quota_bytes));
            }
        }
        job.finished();
        let bytes = writer.into_inner().map_err(QueryError::internal)?;
        if bytes.len() as u64 > remaining {
            return Err(quota_refusal(quota_bytes));
        }
        enclave_store::put_object(self.objects().as_ref(), &self.path(name), bytes.into())
            .await
            .map_err(QueryError::internal)?;
        tracing::info!(
            project = self.project,
            table = name,
            rows,
            "workspace table saved"
        );
        Ok(rows)
    }

    pub async fn drop_table(&self, name: &str, if_exists: bool) -> Result<(), QueryError> {
        if !self.list().await?.contains_key(name) {
            return if if_exists {
                Ok(())
            } else {
                Err(QueryError::Invalid(format!(
                    "table work.{name} does not exist"
                )))
            };
        }
        self.objects()
            .delete(&self.path(name))
            .await
            .map_err(QueryError::internal)?;
        tracing::info!(
            project = self.project,
            table = name,
            "workspace table dropped"
        );
        Ok(())
    }

    /// Destroys every table (when the project closes); returns what each
    /// was (name, size, SHA-256), read just before it is deleted.
    pub async fn destroy_all(&self) -> Result<Vec<Destroyed>, QueryError> {
        let mut listed: Vec<(String, ObjectMeta)> = self.list().await?.into_iter().collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut destroyed = Vec::with_capacity(listed.len());
        for (name, meta) in listed {
            let content = self
                .objects()
                .get(&meta.location)
                .await
                .map_err(QueryError::internal)?
                .bytes()
                .await
                .map_err(QueryError::internal)?;
            self.drop_table(&name, true).await?;
            destroyed.push(Destroyed::of(
                "workspace_table",
                &format!("work.{name}"),
                &content,
            ));
        }
        Ok(destroyed)
    }
}

/// How a session reads a stored table: as usual when built from the
/// `served` release with the project's ids, else refused by name.
fn source(name: &str, file_schema: &Schema, served: &ReleaseStamp) -> RowSource {
    let built_from = ReleaseStamp::of(file_schema);
    if built_from.as_ref() != Some(served) {
        let built_from = built_from.as_ref().map(|stamp| stamp.release_id.as_str());
        return RowSource::Unreadable {
            reason: stale_reason(name, built_from, &served.release_id),
        };
    }
    let ids = file_schema.metadata().get(PERSON_IDS_KEY);
    if ids.map(String::as_str) != Some(PROJECT_IDS) {
        return RowSource::Unreadable {
            reason: format!(
                "work.{name} holds person ids of the release, from before each project had its own; \
                 DROP TABLE work.{name} and create it again"
            ),
        };
    }
    RowSource::Workspace
}

/// Why a table built from `built_from` (`None`: before tables recorded
/// their release) may not be read while `served` is served.
fn stale_reason(name: &str, built_from: Option<&str>, served: &str) -> String {
    let built_from = match built_from {
        Some(release) => format!("release {release}"),
        None => "an earlier release".to_string(),
    };
    format!(
        "work.{name} was built from {built_from} and the service now serves release {served}, \
         whose person ids differ; DROP TABLE work.{name} and create it again from the current release"
    )
}

fn quota_refusal(quota_bytes: u64) -> QueryError {
    QueryError::refused(
        Rule::WorkspaceQuota,
        format!(
            "the project's workspace quota of {} MiB would be exceeded; drop tables or select fewer rows or columns",
            quota_bytes >> 20
        ),
    )
}

/// Unqualified, unique column names, the person last; tags in metadata;
/// person and record keys as the project's ids (`project_ids`), the only
/// form an id takes outside a running statement.
fn output_plan(
    plan: LogicalPlan,
    (person, tags): (
        &datafusion::common::Column,
        &enclave_guard::tags::ColumnTags,
    ),
    project_ids: &ProjectIds,
) -> Result<(LogicalPlan, SchemaRef), QueryError> {
    let mut exprs = Vec::new();
    let mut fields = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, (qualifier, field)) in plan.schema().iter().enumerate() {
        let column = datafusion::common::Column::new(qualifier.cloned(), field.name());
        if &column == person {
            continue;
        }
        if !seen.insert(field.name().clone()) {
            return Err(QueryError::refused(
                Rule::Workspace,
                format!(
                    "two columns are named `{}`; name them apart with AS",
                    field.name()
                ),
            ));
        }
        let value = if !tags.get(index).identifying {
            Expr::Column(column)
        } else if field.data_type() == &DataType::Int64 {
            project_ids.project_expr(Expr::Column(column))
        } else {
            return Err(QueryError::internal("a key column is not BIGINT"));
        };
        exprs.push(value.alias(field.name()));
        let metadata = HashMap::from([(TAGS_KEY.to_string(), tags.get(index).to_metadata())]);
        fields.push(field.as_ref().clone().with_metadata(metadata));
    }
    let person_index = plan.schema().index_of_column(person)?;
    exprs.push(
        project_ids
            .project_expr(Expr::Column(person.clone()))
            .alias(PERSON),
    );
    let person_field = plan
        .schema()
        .field(person_index)
        .as_ref()
        .clone()
        .with_name(PERSON);
    fields.push(person_field.with_metadata(HashMap::from([(
        TAGS_KEY.to_string(),
        enclave_guard::rewrite::person_tags().to_metadata(),
    )])));
    let output = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?);
    Ok((output, Arc::new(Schema::new(fields))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(release: &str) -> ReleaseStamp {
        ReleaseStamp {
            release_id: release.into(),
            key_fingerprint: "f1".into(),
        }
    }

    #[test]
    fn a_file_records_the_release_it_was_built_from() {
        let schema = Schema::empty().with_metadata(stamp("r000002").metadata());
        assert_eq!(ReleaseStamp::of(&schema), Some(stamp("r000002")));
        assert_eq!(ReleaseStamp::of(&Schema::empty()), None);
    }

    #[test]
    fn a_table_with_the_release_ids_is_refused_until_rebuilt() {
        let served = stamp("r000002");
        let current = Schema::empty().with_metadata(served.metadata());
        assert!(matches!(
            source("cohort", &current, &served),
            RowSource::Workspace
        ));
        let mut metadata = served.metadata();
        metadata.remove(PERSON_IDS_KEY);
        let before = Schema::empty().with_metadata(metadata);
        let RowSource::Unreadable { reason } = source("cohort", &before, &served) else {
            panic!("a table with the release's ids was readable");
        };
        assert!(reason.contains("DROP TABLE work.cohort"), "{reason}");
    }

    #[test]
    fn a_stale_table_is_refused_by_name_with_how_to_rebuild_it() {
        let text = stale_reason("cohort", Some("r000002"), "r000003");
        assert!(
            text.starts_with("work.cohort was built from release r000002"),
            "{text}"
        );
        assert!(text.contains("serves release r000003"), "{text}");
        assert!(text.contains("DROP TABLE work.cohort"), "{text}");
        let text = stale_reason("cohort", None, "r000003");
        assert!(text.contains("built from an earlier release"), "{text}");
    }
}
