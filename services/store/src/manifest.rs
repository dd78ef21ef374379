//! The release manifest: what a release holds, written last.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use enclave_core::date::CivilDate;
use serde::{Deserialize, Serialize};

/// The manifest format this build writes and reads.
const FORMAT_VERSION: u32 = 1;

/// One object of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the release root.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Rows, for table files.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows: Option<u64>,
}

/// One published table of a release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub rows: u64,
    /// First and last `service_month` (`YYYY-MM`) with rows.
    pub first_month: Option<String>,
    pub last_month: Option<String>,
    /// Paths of the table's Parquet files, relative to the release root.
    pub files: Vec<String>,
}

/// What the writer of a release says about it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReleaseContent {
    /// Identifies the pseudonymization key without revealing it.
    pub key_fingerprint: String,
    /// Tables by qualified name (`ndb.receipts`).
    pub tables: BTreeMap<String, TableEntry>,
    /// The ingest summary (records per source, persons, rejected records).
    pub summary: serde_json::Value,
    /// The linkage report.
    pub linkage: serde_json::Value,
}

/// A published release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub release_id: String,
    /// UTC, RFC 3339.
    pub created_at: String,
    #[serde(flatten)]
    pub content: ReleaseContent,
    /// Every object of the release except the manifest itself.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    pub(crate) fn new(
        release_id: String,
        content: ReleaseContent,
        files: Vec<FileEntry>,
    ) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            release_id,
            created_at: now_rfc3339(),
            content,
            files,
        }
    }

    /// The manifest entry of one object.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|entry| entry.path == path)
    }
}

fn now_rfc3339() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let date = CivilDate::from_days_since_epoch((seconds / 86_400) as i32);
    let in_day = seconds % 86_400;
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}
