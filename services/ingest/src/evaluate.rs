//! Linkage quality of a published release against the generator's truth.
//!
//! Ingest writes `linkage/records.parquet` into every release: one row per
//! identity-bearing source record (`source`, `record_seq` in canonical order)
//! with the `person_id` it received and the clusters the ID1-only and
//! ID2-only baselines would have made. It holds no identifier and is not part
//! of the catalog, so no query can reach it. This module joins it with
//! `truth/*.csv` and scores all three clusterings pairwise.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use bytes::Bytes;
use enclave_linkage::eval::{PairwiseScores, pairwise_scores};
use enclave_store::DataStore;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::linkage_artifact::{LINKAGE_RECORDS_PATH, SOURCES};

/// Why a release could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("the data directory has no published release")]
    NoRelease,
    #[error("release {0} has no linkage records")]
    NoLinkageRecords(String),
    #[error(transparent)]
    Store(#[from] enclave_store::StoreError),
    #[error("linkage records are unreadable: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("cannot read truth file {path}: {source}")]
    TruthRead {
        path: String,
        source: std::io::Error,
    },
    #[error("truth file {path} line {line}: {problem}")]
    TruthFormat {
        path: String,
        line: usize,
        problem: &'static str,
    },
    #[error("source {source_name}: the release has {release} records, the truth {truth}")]
    CountMismatch {
        source_name: String,
        release: usize,
        truth: usize,
    },
}

/// Pairwise scores of our linkage and the two single-key baselines.
#[derive(Debug, Serialize)]
pub struct EvaluationReport {
    pub release_id: String,
    pub records: usize,
    pub records_per_source: BTreeMap<String, usize>,
    /// Guarded union of all linkage keys: the release's `person_id`.
    pub union: PairwiseScores,
    /// Insurance-card keys only (NDB ID1-style).
    pub id1_only: PairwiseScores,
    /// Kana-name keys only (NDB ID2/ID4-style).
    pub id2_only: PairwiseScores,
}

/// Evaluates the newest release of `store` against the truth in `truth_dir`.
pub async fn evaluate_latest(
    store: &DataStore,
    truth_dir: &Path,
) -> Result<EvaluationReport, EvaluateError> {
    let manifest = store.latest().await?.ok_or(EvaluateError::NoRelease)?;
    let entry = manifest
        .file(LINKAGE_RECORDS_PATH)
        .ok_or_else(|| EvaluateError::NoLinkageRecords(manifest.release_id.clone()))?;
    let bytes = store.read_verified(&manifest.release_id, entry).await?;
    let batches = read_batches(bytes)?;
    let mut truth_by_source = BTreeMap::new();
    for source in SOURCES {
        truth_by_source.insert(
            source,
            read_truth(&truth_dir.join(format!("{source}.csv")))?,
        );
    }
    let aligned = align(&batches, &truth_by_source)?;
    Ok(EvaluationReport {
        release_id: manifest.release_id.clone(),
        records: aligned.truth.len(),
        records_per_source: aligned.per_source,
        union: pairwise_scores(&aligned.person, &aligned.truth),
        id1_only: pairwise_scores(&aligned.id1, &aligned.truth),
        id2_only: pairwise_scores(&aligned.id2, &aligned.truth),
    })
}

fn read_batches(bytes: Bytes) -> Result<Vec<RecordBatch>, EvaluateError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(parquet::errors::ParquetError::from)?)
}

/// `record_seq,person` rows; returns persons indexed by record_seq.
fn read_truth(path: &Path) -> Result<Vec<u64>, EvaluateError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EvaluateError::TruthRead {
        path: label.clone(),
        source,
    })?;
    let mut persons = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        let problem = |problem| EvaluateError::TruthFormat {
            path: label.clone(),
            line: index + 1,
            problem,
        };
        let (seq, person) = line
            .split_once(',')
            .ok_or_else(|| problem("expected record_seq,person"))?;
        let seq: usize = seq
            .parse()
            .map_err(|_| problem("record_seq is not a number"))?;
        if seq != persons.len() {
            return Err(problem("record_seq out of order"));
        }
        persons.push(
            person
                .trim()
                .parse()
                .map_err(|_| problem("person is not a number"))?,
        );
    }
    Ok(persons)
}

#[derive(Debug, Default)]
struct Aligned {
    truth: Vec<u64>,
    person: Vec<u64>,
    id1: Vec<u64>,
    id2: Vec<u64>,
    per_source: BTreeMap<String, usize>,
}

/// Lines release rows up with truth rows by (source, record_seq).
fn align(
    batches: &[RecordBatch],
    truth: &BTreeMap<&str, Vec<u64>>,
) -> Result<Aligned, EvaluateError> {
    let mut aligned = Aligned::default();
    for batch in batches {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .map(|c| c.as_primitive::<Int64Type>().clone())
        };
        let (Some(seq), Some(person), Some(id1), Some(id2), Some(source)) = (
            column("record_seq"),
            column("person_id"),
            column("id1_cluster"),
            column("id2_cluster"),
            batch
                .column_by_name("source")
                .map(|c| c.as_string::<i32>().clone()),
        ) else {
            return Err(parquet::errors::ParquetError::General(
                "linkage records lack a column".into(),
            )
            .into());
        };
        for row in 0..batch.num_rows() {
            let source_name = source.value(row);
            let persons = truth
                .get(source_name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let seq = seq.value(row) as usize;
            let mismatch = || EvaluateError::CountMismatch {
                source_name: source_name.to_owned(),
                release: seq + 1,
                truth: persons.len(),
            };
            aligned.truth.push(*persons.get(seq).ok_or_else(mismatch)?);
            aligned.person.push(person.value(row) as u64);
            aligned.id1.push(id1.value(row) as u64);
            aligned.id2.push(id2.value(row) as u64);
            *aligned
                .per_source
                .entry(source_name.to_owned())
                .or_default() += 1;
        }
    }
    for (source, persons) in truth {
        let release = aligned.per_source.get(*source).copied().unwrap_or(0);
        if release != persons.len() {
            return Err(EvaluateError::CountMismatch {
                source_name: source.to_string(),
                release,
                truth: persons.len(),
            });
        }
    }
    Ok(aligned)
}
