//! What an ingest did, for the terminal and the manifest.

use std::collections::BTreeMap;
use std::fmt;

use enclave_core::masters::Masters;
use serde::Serialize;

use crate::append::AppendBase;
use crate::extract::{ExtractPlan, Extracts};
use crate::linkage_artifact::SOURCES;
use crate::linking::Linked;
use crate::pipeline::WrittenTables;

/// Seconds spent in each phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseTimes {
    pub parse_seconds: f64,
    pub link_seconds: f64,
    pub tables_seconds: f64,
    pub total_seconds: f64,
}

/// Persons that kept, gained or changed their `person_id` since the
/// previous release (the changed ids are listed in `linkage/id_changes.parquet`).
#[derive(Debug, Clone, Serialize)]
pub struct PersonIdChanges {
    pub previous_release: String,
    pub kept: u64,
    pub new: u64,
    /// Previous persons merged into another by new evidence (their id retired).
    pub merged: u64,
    /// Persons split from a previous person by new evidence (given a new id).
    pub split: u64,
    /// The release appends months to the previous one (`--append`).
    pub appended: bool,
}

/// The end-of-ingest summary (also stored in the manifest).
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    pub release_id: String,
    /// Extract files and bytes this ingest read.
    pub files: u64,
    pub bytes: u64,
    /// Identity-bearing records per source (receipts, admissions, claims,
    /// certifications) in the release, an append's earlier months included.
    pub records: BTreeMap<String, u64>,
    /// Identity-bearing records this ingest read from extracts (fewer than
    /// `records` in an append).
    pub records_read: u64,
    /// Rows per published table.
    pub table_rows: BTreeMap<String, u64>,
    pub persons: u64,
    /// The largest `person_id` ever given, in this release or one before
    /// it (ids run from 1; a merge retires an id, so it may exceed
    /// `persons`). The next release gives new persons ids after it.
    pub max_person_id: i64,
    /// Persons with at least one record in each source.
    pub persons_per_source: BTreeMap<String, u64>,
    /// Persons whose records span more than one source.
    pub persons_in_several_sources: u64,
    /// Unions made through each kind of linkage key.
    pub links: BTreeMap<String, u64>,
    /// Keys not used for linking because two people share them.
    pub ambiguous_keys: BTreeMap<String, u64>,
    /// How the `person_id`s relate to the previous release's (absent for a
    /// first release or one under another secret).
    pub person_ids: Option<PersonIdChanges>,
    /// Records refused. A malformed record stops the whole release, so a
    /// published release always reports 0.
    pub rejected_records: u64,
    /// Diagnoses whose disease code is not in the master (published with a NULL icd10).
    pub unmapped_disease_codes: u64,
    /// The most memory the ingest process held (peak resident set), in bytes.
    pub peak_memory_bytes: u64,
    /// The most memory one worker process held (`--workers`), in bytes.
    pub worker_peak_memory_bytes: Option<u64>,
    /// Bytes spilled to local disk (key partitions, baseline clusters).
    pub spill_bytes: u64,
    pub phases: PhaseTimes,
}

impl IngestSummary {
    /// The summary of a release, with the release it appends to (`base`).
    pub(crate) fn new(
        plan: &ExtractPlan,
        linked: &Linked,
        base: Option<&AppendBase>,
        written: &WrittenTables,
        phases: PhaseTimes,
    ) -> IngestSummary {
        let sources = &written.person_sources;
        let report = &linked.linkage.report;
        let base_records = base.map_or([0; 4], |base| base.records);
        IngestSummary {
            release_id: String::new(),
            files: plan.files as u64,
            records_read: linked.new_records() as u64,
            bytes: plan.bytes,
            records: SOURCES
                .iter()
                .zip(linked.records)
                .zip(base_records)
                .map(|((name, count), base)| (name.to_string(), base + count))
                .collect(),
            table_rows: written
                .entries
                .iter()
                .map(|(name, entry)| (name.clone(), entry.rows))
                .collect(),
            persons: sources.persons(),
            max_person_id: match &linked.id_changes {
                Some((_, changes)) => changes.highest_id,
                None => linked.person_of_cluster.iter().copied().max().unwrap_or(0),
            },
            persons_per_source: sources
                .per_source()
                .into_iter()
                .map(|(name, count)| (name.to_owned(), count))
                .collect(),
            persons_in_several_sources: sources.in_several(),
            links: report.unions_by_kind.clone(),
            ambiguous_keys: report.ambiguous_keys_by_kind.clone(),
            person_ids: linked
                .id_changes
                .as_ref()
                .map(|(release, changes)| PersonIdChanges {
                    previous_release: release.clone(),
                    kept: changes.kept,
                    new: changes.new,
                    merged: changes.merged.len() as u64,
                    split: changes.split.len() as u64,
                    appended: base.is_some(),
                }),
            rejected_records: 0,
            unmapped_disease_codes: written.unmapped_disease_codes,
            peak_memory_bytes: peak_resident_bytes(),
            worker_peak_memory_bytes: linked
                .worker_peak_memory_bytes
                .max(written.worker_peak_memory_bytes),
            spill_bytes: linked.spill_bytes,
            phases,
        }
    }

    /// Source records read per second of the whole preparation (parse → Parquet).
    pub fn records_per_second(&self) -> f64 {
        let seconds =
            self.phases.parse_seconds + self.phases.link_seconds + self.phases.tables_seconds;
        self.records_read as f64 / seconds.max(f64::EPSILON)
    }
}

/// The peak resident set of this process (`VmHWM`), 0 where unknown.
pub(crate) fn peak_resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// Diagnoses in `extracts` whose disease code is not in the master.
pub(crate) fn unmapped_disease_codes(extracts: &Extracts) -> u64 {
    let masters = Masters::get();
    extracts
        .ndb
        .iter()
        .flat_map(|file| &file.receipts)
        .flat_map(|receipt| &receipt.diagnoses)
        .filter(|diagnosis| masters.disease(&diagnosis.disease_code).is_none())
        .count() as u64
}

impl fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "release {} published", self.release_id)?;
        writeln!(
            f,
            "  read      {} files, {:.1} MB",
            self.files,
            self.bytes as f64 / 1e6
        )?;
        for (source, count) in &self.records {
            writeln!(f, "  records   {source:<20} {count:>10}")?;
        }
        for (table, rows) in &self.table_rows {
            writeln!(f, "  table     {table:<20} {rows:>10} rows")?;
        }
        writeln!(
            f,
            "  persons   {} ({} in more than one source)",
            self.persons, self.persons_in_several_sources
        )?;
        for (source, count) in &self.persons_per_source {
            writeln!(f, "            with {source:<15} {count:>10}")?;
        }
        let links: Vec<String> = self
            .links
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(f, "  links     {}", links.join(", "))?;
        let ambiguous: Vec<String> = self
            .ambiguous_keys
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(
            f,
            "  guarded   {} (shared keys not used for linking)",
            ambiguous.join(", ")
        )?;
        if let Some(ids) = &self.person_ids {
            let appended = if ids.appended { " (appended)" } else { "" };
            writeln!(
                f,
                "  ids       kept {} from {}{appended}, new {}, merged {}, split {}",
                ids.kept, ids.previous_release, ids.new, ids.merged, ids.split
            )?;
        }
        writeln!(f, "  rejected  {} records", self.rejected_records)?;
        if self.unmapped_disease_codes > 0 {
            writeln!(
                f,
                "  unmapped  {} disease codes not in the master (icd10 NULL)",
                self.unmapped_disease_codes
            )?;
        }
        let workers = match self.worker_peak_memory_bytes {
            Some(bytes) => format!(" (each worker at most {:.0} MB)", bytes as f64 / 1e6),
            None => String::new(),
        };
        writeln!(
            f,
            "  memory    peak {:.0} MB{workers}, spilled {:.1} MB to local disk",
            self.peak_memory_bytes as f64 / 1e6,
            self.spill_bytes as f64 / 1e6
        )?;
        write!(
            f,
            "  time      parse {:.2}s, link {:.2}s, tables {:.2}s, total {:.2}s ({:.0} records/s)",
            self.phases.parse_seconds,
            self.phases.link_seconds,
            self.phases.tables_seconds,
            self.phases.total_seconds,
            self.records_per_second()
        )
    }
}
