//! Opt-out: the index a release carries so that opt-out requests recorded
//! later can be applied to its persons, and the parsing of those requests.
//!
//! The index maps a keyed lookup value — the hex of the name-based linkage
//! key (normalized kana name, birth date, sex), computed under the steward's
//! secret — to the release's `person_id`. Without the secret nobody can
//! compute a lookup from an identity; the file is not a catalog table and no
//! query reads it. A request's lookup is computed the same way
//! ([`request_lookups`]) and stored in the state store, never the identity.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use enclave_core::date::CivilDate;
use enclave_core::kana::normalize_name;
use enclave_core::person::Sex;
use enclave_linkage::{KeyHash, LinkageKeys};
use parquet::errors::ParquetError;

use crate::tables::parquet::encode;

/// Path of the index inside a release.
pub const OPT_OUT_INDEX_PATH: &str = "linkage/optout_index.parquet";

/// Hex of a name key: the lookup value of the index and of requests.
pub fn lookup_of(key: &KeyHash) -> String {
    key.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// The index as zstd Parquet from distinct (name key, person_id) pairs
/// sorted by key (so by lookup).
pub(crate) fn index_parquet(name_keys: &[(KeyHash, i64)]) -> Result<Vec<u8>, ParquetError> {
    let schema = Schema::new(vec![
        Field::new("lookup", DataType::Utf8, false),
        Field::new("person_id", DataType::Int64, false),
    ]);
    let lookups = StringArray::from_iter_values(name_keys.iter().map(|(key, _)| lookup_of(key)));
    let persons = Int64Array::from_iter_values(name_keys.iter().map(|(_, person)| *person));
    encode(&RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(lookups) as ArrayRef, Arc::new(persons)],
    )?)
}

/// Why an opt-out request file was refused. Messages name the line and the
/// field, never the value.
#[derive(Debug, thiserror::Error)]
pub enum OptOutError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the header must be `kana_name,birth_date,sex`")]
    Header { path: String },
    #[error("{path} line {line}: {field} {problem}")]
    Field {
        path: String,
        line: usize,
        field: &'static str,
        problem: &'static str,
    },
}

/// Reads a request file (UTF-8 CSV: `kana_name,birth_date,sex` with dates
/// `YYYY-MM-DD` and sex `1`/`2`) and returns one lookup per request. The
/// whole file is checked before anything is returned.
pub fn request_lookups(path: &Path, keys: &LinkageKeys) -> Result<Vec<String>, OptOutError> {
    let text = std::fs::read_to_string(path).map_err(|source| OptOutError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let shown = path.display().to_string();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches('\u{feff}');
    if header.trim() != "kana_name,birth_date,sex" {
        return Err(OptOutError::Header { path: shown });
    }
    let mut lookups = Vec::new();
    for (index, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |field, problem| OptOutError::Field {
            path: shown.clone(),
            line: index + 2,
            field,
            problem,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [kana, birth, sex] = fields.as_slice() else {
            return Err(bad("line", "must have three fields"));
        };
        let name = normalize_name(kana);
        if name.is_empty() {
            return Err(bad("kana_name", "is empty"));
        }
        let birth = CivilDate::parse_yyyymmdd(&birth.replace('-', ""))
            .map_err(|_| bad("birth_date", "is not a date YYYY-MM-DD"))?;
        let sex = Sex::from_code(sex).ok_or_else(|| bad("sex", "must be 1 or 2"))?;
        let key = keys.name_key(&name, &birth.to_yyyymmdd(), sex.code());
        lookups.push(lookup_of(&key));
    }
    Ok(lookups)
}
