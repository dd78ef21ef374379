//! What each subcommand does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use enclave_catalog::{Catalog, Lang, PublishedCatalog};
use enclave_ingest::{CATALOG_PATH, IngestSummary, table_stats};
use enclave_linkage::LinkageKeys;
use enclave_state::{Grant, Project, ProjectStatus, Role, Rounding, StateStore};
use enclave_store::DataStore;
use enclave_synth::{SynthConfig, SynthSummary};

use crate::Command;
use crate::admin;
use crate::key::{self, KeyError};

/// Why a command failed; every message is fit for the terminal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Secret(#[from] enclave_linkage::KeyError),
    #[error(transparent)]
    Synth(#[from] enclave_synth::SynthError),
    #[error(transparent)]
    Ingest(#[from] enclave_ingest::IngestError),
    #[error(transparent)]
    Store(#[from] enclave_store::StoreError),
    #[error(transparent)]
    Evaluate(#[from] enclave_ingest::evaluate::EvaluateError),
    #[error("the data directory {0} has no published release; run `enclave ingest` first")]
    NoRelease(String),
    #[error("extract directory {0} not found")]
    NoExtracts(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error(transparent)]
    OptOut(#[from] enclave_ingest::optout::OptOutError),
    #[error(transparent)]
    State(#[from] enclave_state::StateError),
    #[error(transparent)]
    Query(#[from] enclave_query::QueryError),
    #[error(transparent)]
    Serve(#[from] enclave_flight::ServeError),
    #[error("cannot prepare {path}: {source}")]
    WorkDir {
        path: String,
        source: std::io::Error,
    },
}

pub(crate) async fn run(command: Command) -> Result<(), CommandError> {
    match command {
        Command::Synth { persons, seed, out } => {
            println!("{}", synth(persons, seed, &out)?);
        }
        Command::Ingest {
            extracts,
            data,
            key_file,
            key_env,
            catalog,
        } => {
            let secret = key::load_secret(key_file.as_deref(), &key_env)?;
            let loaded = catalog
                .map(Catalog::load_dir)
                .transpose()
                .map_err(|e| CommandError::Catalog(e.to_string()))?;
            let catalog = loaded.as_ref().unwrap_or_else(|| Catalog::embedded());
            println!("{}", ingest(&extracts, &data, &secret, catalog).await?);
        }
        Command::LinkageEval { truth, data } => {
            let report =
                enclave_ingest::evaluate::evaluate_latest(&existing_store(&data)?, &truth).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        }
        Command::Catalog { data, json, lang } => {
            let catalog = published_catalog(&data).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&catalog).unwrap_or_default()
                );
            } else {
                print!("{}", catalog.render_text(lang));
            }
        }
        Command::Demo {
            persons,
            seed,
            workdir,
            listen,
        } => demo(persons, seed, &workdir, listen).await?,
        Command::Serve {
            data,
            state,
            options,
        } => admin::serve(&data, &state, options).await?,
        Command::User { command } => admin::user(command)?,
        Command::Project { command } => admin::project(command).await?,
        Command::Optout { command } => admin::opt_out(command)?,
    }
    Ok(())
}

fn synth(persons: u64, seed: u64, out: &Path) -> Result<SynthSummary, CommandError> {
    Ok(enclave_synth::generate(&SynthConfig::new(
        persons, seed, out,
    ))?)
}

async fn ingest(
    extracts: &Path,
    data: &Path,
    secret: &[u8],
    catalog: &Catalog,
) -> Result<IngestSummary, CommandError> {
    let keys = LinkageKeys::derive(secret)?;
    if !extracts.is_dir() {
        return Err(CommandError::NoExtracts(extracts.display().to_string()));
    }
    let store = DataStore::open_local(data)?;
    Ok(enclave_ingest::ingest(&store, extracts, &keys, catalog).await?)
}

/// A data directory that must already exist (readers never create one).
fn existing_store(data: &Path) -> Result<DataStore, CommandError> {
    if !data.is_dir() {
        return Err(CommandError::NoRelease(data.display().to_string()));
    }
    Ok(DataStore::open_local(data)?)
}

/// The catalog of the newest release, as it was when that release was made.
async fn published_catalog(data: &Path) -> Result<PublishedCatalog, CommandError> {
    let store = existing_store(data)?;
    let manifest = store
        .latest()
        .await?
        .ok_or_else(|| CommandError::NoRelease(data.display().to_string()))?;
    let entry = manifest.file(CATALOG_PATH).ok_or_else(|| {
        CommandError::Catalog(format!(
            "release {} has no {CATALOG_PATH}",
            manifest.release_id
        ))
    })?;
    let bytes = store.read_verified(&manifest.release_id, entry).await?;
    let catalog: Catalog =
        serde_json::from_slice(&bytes).map_err(|e| CommandError::Catalog(e.to_string()))?;
    catalog
        .validate()
        .map_err(|e| CommandError::Catalog(e.to_string()))?;
    Ok(PublishedCatalog::build(
        &catalog,
        &table_stats(&manifest.content.tables),
        &manifest.release_id,
    ))
}

/// Paths of the demo's work directory.
struct DemoPaths {
    extracts: PathBuf,
    key: PathBuf,
    data: PathBuf,
    state: PathBuf,
}

/// The demo's accounts: (name, role, password, what they show).
pub(crate) const DEMO_USERS: [(&str, Role, &str, &str); 4] = [
    (
        "researcher",
        Role::Researcher,
        "researcher-demo",
        "member of the approved project `demo` (all tables)",
    ),
    (
        "outsider",
        Role::Researcher,
        "outsider-demo",
        "a researcher with no project: every query is refused",
    ),
    (
        "reviewer",
        Role::Reviewer,
        "reviewer-demo",
        "review committee member",
    ),
    ("operator", Role::Operator, "operator-demo", "operator"),
];

async fn demo(
    persons: u64,
    seed: u64,
    workdir: &Path,
    listen: SocketAddr,
) -> Result<(), CommandError> {
    let paths = DemoPaths {
        extracts: workdir.join("extracts"),
        key: workdir.join("steward").join("pseudonym.key"),
        data: workdir.join("data"),
        state: workdir.join("state"),
    };
    println!("enclave demo in {}\n", workdir.display());
    for fresh in [&paths.extracts, &paths.state] {
        remove_dir(fresh)?;
    }
    println!(
        "1. synthetic population → identified extracts in {}",
        paths.extracts.display()
    );
    println!("{}\n", synth(persons, seed, &paths.extracts)?);

    key::ensure_key_file(&paths.key)?;
    println!(
        "2. the steward's key is {} (kept apart from the data)\n",
        paths.key.display()
    );

    println!("3. ingest → {}", paths.data.display());
    let secret = key::load_secret(Some(&paths.key), key::DEFAULT_KEY_ENV)?;
    println!(
        "{}\n",
        ingest(&paths.extracts, &paths.data, &secret, Catalog::embedded()).await?
    );

    println!("4. the published catalog\n");
    print!(
        "{}",
        published_catalog(&paths.data).await?.render_text(Lang::Ja)
    );

    println!(
        "\n5. demo users and the approved project `demo` in {}",
        paths.state.display()
    );
    seed_demo_state(&paths).await?;
    for (name, role, password, about) in DEMO_USERS {
        println!("   {name:<11} password {password:<16} {role:<10} {about}");
    }
    println!("\n6. Flight SQL: connect with ADBC, e.g. examples/adbc_quickstart.py\n");
    let options = admin::ServeOptions {
        listen,
        tls_cert: None,
        tls_key: None,
        max_concurrent_per_user: 4,
        query_memory_mb: 2048,
        query_timeout_secs: 300,
        total_memory_mb: 8192,
    };
    admin::serve(&paths.data, &paths.state, options).await
}

fn remove_dir(path: &Path) -> Result<(), CommandError> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|source| CommandError::WorkDir {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Users and one approved project over every table and the release's months.
async fn seed_demo_state(paths: &DemoPaths) -> Result<(), CommandError> {
    let state = StateStore::open(&paths.state)?;
    for (name, role, password, _) in DEMO_USERS {
        state.add_user(name, role, password)?;
    }
    let store = existing_store(&paths.data)?;
    let manifest = store
        .latest()
        .await?
        .ok_or_else(|| CommandError::NoRelease(paths.data.display().to_string()))?;
    let months = manifest.content.tables.values();
    let first = months.clone().filter_map(|t| t.first_month.clone()).min();
    let last = months.filter_map(|t| t.last_month.clone()).max();
    let (Some(first), Some(last)) = (first, last) else {
        return Err(CommandError::NoRelease(paths.data.display().to_string()));
    };
    let until = enclave_core::date::CivilDate::from_days_since_epoch(
        enclave_state::today().days_since_epoch() + 365,
    );
    state.add_project(&Project {
        id: "demo".into(),
        title: "Demo: care needs after hospital admission".into(),
        members: vec!["researcher".into()],
        grants: Catalog::embedded()
            .table_names()
            .map(|table| Grant {
                table,
                columns: None,
            })
            .collect(),
        period: format!("{first}..{last}").parse()?,
        valid_until: until.to_string(),
        k: enclave_state::DEFAULT_K,
        rounding: Rounding::To10,
        workspace_quota_bytes: 1 << 30,
        status: ProjectStatus::Active,
    })?;
    Ok(())
}
