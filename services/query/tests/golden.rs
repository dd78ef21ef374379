//! Golden files of the privacy rules: every `tests/golden/*.golden` file
//! lists queries and the verdict the guard gives each, run against a small
//! synthetic release. A reviewer reads the files; a changed verdict fails the
//! test. `ENCLAVE_BLESS=1 cargo test -p enclave-query --test golden` rewrites
//! the verdicts after an intended change.
//!
//! File format: blocks separated by blank lines; `#` lines are comments; a
//! block is `project: <id>` (optional, default `main`), then the SQL, then a
//! line `----` and the verdict: `refused (<rule>)`, `error: <text>`, or
//! `released <n> groups, <m> suppressed`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use enclave_query::{Limits, Outcome, QueryEngine, QueryError};
use enclave_state::{Grant, Project, ProjectStatus, Role, Rounding, StateStore};
use enclave_store::DataStore;

struct Fixture {
    _dir: tempfile::TempDir,
    engine: QueryEngine,
}

async fn fixture() -> Fixture {
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
        workspace_quota_bytes: 64 << 20,
        status: ProjectStatus::Active,
    };
    state
        .add_project(&project("main", all_tables, "2099-12-31"))
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
    let engine = QueryEngine::open(store, Arc::new(state), Limits::default())
        .await
        .unwrap();
    Fixture { _dir: dir, engine }
}

struct Case {
    project: String,
    sql: String,
}

fn parse(text: &str) -> Vec<Case> {
    text.split("\n\n")
        .filter_map(|block| {
            let lines: Vec<&str> = block
                .lines()
                .filter(|line| !line.starts_with('#'))
                .take_while(|line| *line != "----")
                .collect();
            let (project, sql_lines) = match lines.first()?.strip_prefix("project: ") {
                Some(project) => (project.trim().to_string(), &lines[1..]),
                None => ("main".to_string(), &lines[..]),
            };
            let sql = sql_lines.join("\n").trim().to_string();
            (!sql.is_empty()).then_some(Case { project, sql })
        })
        .collect()
}

async fn verdict(engine: &QueryEngine, case: &Case) -> String {
    let result = match engine.session("alice", Some(&case.project)) {
        Ok(session) => session.execute(&case.sql, None).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(Outcome::Rows(released)) => format!(
            "released {} groups, {} suppressed",
            released.released_groups, released.suppressed_groups
        ),
        Ok(Outcome::Updated(rows)) => format!("updated {rows} rows"),
        Err(QueryError::Refused { rule, .. }) => format!("refused ({rule})"),
        Err(other) => format!("error: {}", other.user_message()),
    }
}

fn render(cases: &[(String, &Case)], header: &str) -> String {
    let mut out = header.to_string();
    for (verdict, case) in cases {
        if case.project != "main" {
            out.push_str(&format!("project: {}\n", case.project));
        }
        out.push_str(&format!("{}\n----\n{verdict}\n\n", case.sql));
    }
    out.trim_end().to_string() + "\n"
}

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "golden"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_rules_match_golden_files() {
    let fixture = fixture().await;
    let bless = std::env::var_os("ENCLAVE_BLESS").is_some();
    let mut failures = Vec::new();
    for path in golden_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let header: String = text
            .lines()
            .take_while(|line| line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
            + "\n";
        let cases = parse(&text);
        assert!(!cases.is_empty(), "{} has no cases", path.display());
        let mut results = Vec::new();
        for case in &cases {
            results.push((verdict(&fixture.engine, case).await, case));
        }
        let rendered = render(&results, &header);
        if bless {
            std::fs::write(&path, rendered).unwrap();
        } else if rendered != text {
            failures.push(format!("{}:\n{rendered}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "verdicts differ from the golden files (ENCLAVE_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}
