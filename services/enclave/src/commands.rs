//! What each subcommand does.

use std::path::{Path, PathBuf};

use enclave_catalog::{Catalog, Lang, PublishedCatalog};
use enclave_ingest::{CATALOG_PATH, IngestSummary, table_stats};
use enclave_linkage::LinkageKeys;
use enclave_store::DataStore;
use enclave_synth::{SynthConfig, SynthSummary};

use crate::Command;
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
        } => demo(persons, seed, &workdir).await?,
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
}

async fn demo(persons: u64, seed: u64, workdir: &Path) -> Result<(), CommandError> {
    let paths = DemoPaths {
        extracts: workdir.join("extracts"),
        key: workdir.join("steward").join("pseudonym.key"),
        data: workdir.join("data"),
    };
    println!("enclave demo in {}\n", workdir.display());
    if paths.extracts.exists() {
        std::fs::remove_dir_all(&paths.extracts).map_err(|source| CommandError::WorkDir {
            path: paths.extracts.display().to_string(),
            source,
        })?;
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
        "\nNext: enclave linkage-eval --truth {} --data {}",
        paths.extracts.join("truth").display(),
        paths.data.display()
    );
    Ok(())
}
