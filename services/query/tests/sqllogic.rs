//! Golden cases of the privacy rules, in the `sqllogictest` format: every
//! `tests/slt/*.slt` file lists queries and what the guard releases for
//! each (rows, with NULL where a value is withheld), or its refusal rule,
//! run against a small fixed synthetic release. A reviewer reads the files;
//! a changed answer fails the test. Rows are compared in sorted order.
//! `ENCLAVE_BLESS=1 cargo test --workspace --test sqllogic` rewrites the
//! answers after an intended change (then read the diff).
//!
//! Besides SQL, a file may say `statement ok` + `USE PROJECT <id>` to run
//! the following records in another project of the fixture (`main` by
//! default; see `common::fixture`).

mod common;

use std::path::{Path, PathBuf};

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::util::display::array_value_to_string;
use enclave_query::{Outcome, QueryEngine, QueryError};
use sqllogictest::{DBOutput, DefaultColumnType};

/// One connection: the fixture's engine, as user `alice` in a project.
struct GuardDb {
    engine: QueryEngine,
    project: String,
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for GuardDb {
    type Error = QueryError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryError> {
        if let Some(project) = sql.trim().strip_prefix("USE PROJECT ") {
            self.project = project.trim().to_string();
            return Ok(DBOutput::StatementComplete(0));
        }
        let session = self.engine.session("alice", Some(&self.project)).await?;
        match session.execute(sql, None).await? {
            Outcome::Rows(released) => {
                // Rows in a fixed order (released values are what the files
                // pin, not the order groups come out in).
                let mut rows: Vec<Vec<String>> = released
                    .batches
                    .iter()
                    .flat_map(|batch| (0..batch.num_rows()).map(move |row| render_row(batch, row)))
                    .collect();
                rows.sort();
                Ok(DBOutput::Rows {
                    types: vec![DefaultColumnType::Any; released.schema.fields().len()],
                    rows,
                })
            }
            Outcome::Updated(_) => Ok(DBOutput::StatementComplete(0)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "enclave"
    }
}

fn render_row(batch: &arrow::record_batch::RecordBatch, row: usize) -> Vec<String> {
    batch
        .columns()
        .iter()
        .map(|column| {
            if column.is_null(row) {
                "NULL".to_string()
            } else if matches!(column.data_type(), DataType::Float32 | DataType::Float64) {
                let text = array_value_to_string(column, row).unwrap_or_default();
                text.parse::<f64>().map_or(text, render_float)
            } else {
                array_value_to_string(column, row).unwrap_or_default()
            }
        })
        .collect()
}

/// Floats to a precision that does not depend on the order of summation:
/// three decimals, or seven significant digits for large values.
fn render_float(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("{value:.6e}")
    } else {
        format!("{value:.3}")
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_rules_match_the_golden_cases() {
    let fixture = common::fixture().await;
    let bless = std::env::var_os("ENCLAVE_BLESS").is_some();
    let files = slt_files();
    assert!(!files.is_empty(), "no golden files");
    let mut failures = Vec::new();
    for path in files {
        let engine = fixture.engine.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let engine = engine.clone();
            async move {
                Ok(GuardDb {
                    engine,
                    project: "main".into(),
                })
            }
        });
        if bless {
            runner
                .update_test_file(
                    &path,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .expect("golden file rewritten");
        } else if let Err(error) = runner.run_file_async(&path).await {
            failures.push(format!("{}: {}", path.display(), error.display(false)));
        }
    }
    assert!(
        failures.is_empty(),
        "answers differ from the golden cases (ENCLAVE_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}
