//! The fixture the golden cases and property tests share: a 3,000-person
//! synthetic release (seed 5) ingested into a temporary store, user `alice`
//! and her projects:
//!
//! - `main`: every table, all months, k = 10, no rounding, exact answers
//!   (protection `single-query`, as every project here but `ledger`);
//! - `ledger`: the same under the release ledger (a fixed noise key, so
//!   its answers are reproducible);
//! - `budget`: the same under the ledger with a fresh-value budget of 3;
//! - `rounded`: the same with counts and sums rounded to 10;
//! - `spring`: the same for 2024-01 to 2024-03 only;
//! - `narrow`: `ndb.receipts` with only `person_id`, `sex`, `age_band`;
//! - `ended`: a project whose validity ended in 2020.
//!
//! Person 2 has opted out.

use std::sync::Arc;

use enclave_query::{Limits, QueryEngine};
use enclave_state::{Grant, Project, ProjectStatus, Protection, Role, Rounding, StateStore};
use enclave_store::DataStore;

pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) engine: QueryEngine,
}

pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    enclave_synth::generate(&enclave_synth::SynthConfig::new(3_000, 5, &extracts)).unwrap();
    let keys = enclave_linkage::LinkageKeys::derive(&[7u8; 32]).unwrap();
    let store = DataStore::open_local(&dir.path().join("data")).unwrap();
    enclave_ingest::ingest(
        &store,
        &extracts,
        &keys,
        enclave_catalog::Catalog::embedded(),
        &Default::default(),
    )
    .await
    .unwrap();
    let state = StateStore::open(&dir.path().join("state")).unwrap();
    state
        .add_user("alice", Role::Researcher, "alice-password")
        .unwrap();
    let all_tables: Vec<Grant> = enclave_catalog::Catalog::embedded()
        .table_names()
        .map(Grant::whole_table)
        .collect();
    let project = |id: &str, grants: Vec<Grant>, until: &str| Project {
        id: id.into(),
        title: id.into(),
        members: vec!["alice".into()],
        grants,
        period: "2000-01..2099-12".parse().unwrap(),
        valid_until: until.into(),
        k: 10,
        rounding: Rounding::None,
        protection: Protection::SingleQuery,
        fresh_value_budget: enclave_state::DEFAULT_FRESH_VALUE_BUDGET,
        workspace_quota_bytes: 64 << 20,
        status: ProjectStatus::Active,
    };
    state
        .add_project(&project("main", all_tables.clone(), "2099-12-31"))
        .unwrap();
    state
        .add_project(&Project {
            rounding: Rounding::To10,
            ..project("rounded", all_tables.clone(), "2099-12-31")
        })
        .unwrap();
    state
        .add_project(&Project {
            protection: Protection::Ledger,
            ..project("ledger", all_tables.clone(), "2099-12-31")
        })
        .unwrap();
    state
        .add_project(&Project {
            protection: Protection::Ledger,
            fresh_value_budget: 3,
            ..project("budget", all_tables.clone(), "2099-12-31")
        })
        .unwrap();
    state
        .secret(enclave_state::Secret::LedgerNoise, LEDGER_KEY)
        .unwrap();
    state
        .add_project(&Project {
            period: "2024-01..2024-03".parse().unwrap(),
            ..project("spring", all_tables, "2099-12-31")
        })
        .unwrap();
    state
        .add_project(&project(
            "narrow",
            vec!["ndb.receipts:person_id,sex,age_band".parse().unwrap()],
            "2099-12-31",
        ))
        .unwrap();
    state
        .add_project(&project(
            "ended",
            vec!["ndb.receipts".parse().unwrap()],
            "2020-01-01",
        ))
        .unwrap();
    opt_out(&state, &dir.path().join("data"), OPTED_OUT);
    let engine = QueryEngine::open(store, Arc::new(state), Limits::default())
        .await
        .unwrap();
    Fixture { _dir: dir, engine }
}

/// The release ledger's noise key in the fixture.
const LEDGER_KEY: &str = "golden-cases-fixed-ledger-key";

/// The person who opted out (recorded before the engine opens).
pub(crate) const OPTED_OUT: i64 = 2;

/// Records the opt-out of the release's `person`, by the keyed lookup value
/// the release's opt-out index holds for them (as `enclave optout add`
/// would from their identity).
fn opt_out(state: &StateStore, data: &std::path::Path, person: i64) {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    let releases = data.join("releases");
    let release = std::fs::read_dir(&releases)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.join("linkage/optout_index.parquet").is_file())
        .expect("a release with an opt-out index");
    let file = std::fs::File::open(release.join("linkage/optout_index.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    for batch in reader {
        let batch = batch.unwrap();
        let lookups = batch.column_by_name("lookup").unwrap().as_string::<i32>();
        let persons = batch
            .column_by_name("person_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        if let Some(row) = (0..batch.num_rows()).find(|&row| persons.value(row) == person) {
            state
                .add_opt_outs(&[enclave_state::OptOutEntry {
                    lookup: lookups.value(row).to_string(),
                    recorded_on: "2025-01-01".into(),
                }])
                .unwrap();
            return;
        }
    }
    panic!("person {person} is not in the opt-out index");
}

impl Fixture {
    /// A plain DataFusion session over the release's Parquet files, without
    /// the guard: the truth the property tests check released values
    /// against. Tables are registered by their bare name (`receipts`).
    #[allow(
        dead_code,
        reason = "used by properties.rs; sqllogic.rs shares this module"
    )]
    pub(crate) async fn unguarded(&self) -> datafusion::prelude::SessionContext {
        let context = datafusion::prelude::SessionContext::new();
        let releases = self._dir.path().join("data/releases");
        let release = std::fs::read_dir(&releases)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.join("tables").is_dir())
            .expect("a release with tables");
        for entry in std::fs::read_dir(release.join("tables")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let bare = name.rsplit('.').next().unwrap().to_string();
            context
                .register_parquet(
                    bare,
                    format!("{}/", path.display()),
                    datafusion::prelude::ParquetReadOptions::default(),
                )
                .await
                .unwrap();
        }
        context
    }
}
