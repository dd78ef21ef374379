//! What each subcommand does.

use enclave_audit::Action;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use enclave_catalog::{Catalog, Lang, PublishedCatalog};
use enclave_ingest::{CATALOG_PATH, IngestOptions, IngestSummary, table_stats};
use enclave_linkage::LinkageKeys;
use std::sync::Arc;

use enclave_query::Execution;
use enclave_review::{Decision, Member, Proposal, Terms, VoteChoice, Workflow};
use enclave_state::{Clock, Grant, Role, Rounding, StateStore};
use enclave_store::{DataLocation, DataStore};
use enclave_synth::{SynthConfig, SynthSummary};

use crate::Command;
use crate::admin;
use crate::key::{self, KeyError};
use crate::state::StateArgs;

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
    Serve(#[from] enclave_api::ServeError),
    #[error(transparent)]
    Cluster(#[from] enclave_cluster::ClusterError),
    #[error("web portal: {0}")]
    Portal(#[from] enclave_portal::PortalError),
    #[error(transparent)]
    Workflow(#[from] enclave_review::WorkflowError),
    #[error(transparent)]
    Audit(#[from] enclave_audit::AuditError),
    #[error("{0}")]
    Client(String),
    #[error("{0}")]
    Usage(String),
    #[error("{}: {}", rpc_code_name(.0.code()), .0.message())]
    Rpc(#[from] tonic::Status),
    #[error(
        "the audit log of state directory {state} is in {dir}: continue it with \
         `enclave serve … --state {state} --audit-dir {dir} --audit-key {key}` \
         (moved it? give its new place)"
    )]
    AuditElsewhere {
        state: String,
        dir: String,
        key: String,
    },
    #[error(
        "the audit log in {dir} exists but its signing key {key} does not; give the key it was \
         signed with (--audit-key), or a new directory for a new log"
    )]
    AuditKeyMissing { dir: String, key: String },
    #[error("cannot prepare {path}: {source}")]
    WorkDir {
        path: String,
        source: std::io::Error,
    },
}

/// How a refused call reads in the terminal.
fn rpc_code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::PermissionDenied => "refused",
        tonic::Code::Unauthenticated => "not logged in",
        tonic::Code::InvalidArgument => "invalid request",
        tonic::Code::FailedPrecondition => "not now",
        tonic::Code::NotFound => "not found",
        tonic::Code::Unavailable => "unavailable",
        _ => "server error",
    }
}

pub(crate) async fn run(command: Command) -> Result<(), CommandError> {
    match command {
        Command::Synth {
            persons,
            seed,
            out,
            months,
        } => {
            let mut config = SynthConfig::new(persons, seed, &out);
            if let Some((first, last)) = months {
                config = config.with_months(first, last);
            }
            outln!("{}", enclave_synth::generate(&config)?);
        }
        Command::Ingest {
            extracts,
            data,
            key_file,
            key_env,
            catalog,
            append,
            resources,
            audit,
        } => {
            let secret = key::load_secret(key_file.as_deref(), &key_env)?;
            let loaded = catalog
                .map(Catalog::load_dir)
                .transpose()
                .map_err(|e| CommandError::Catalog(e.to_string()))?;
            let catalog = loaded.as_ref().unwrap_or_else(|| Catalog::embedded());
            let detail = serde_json::json!({
                "extracts": extracts.display().to_string(),
                "data": data.to_string(),
                "append": append,
            });
            let key_source = match &key_file {
                // Absolute, so that workers started elsewhere find it.
                Some(path) => vec![
                    "--key-file".to_owned(),
                    std::path::absolute(path)
                        .unwrap_or_else(|_| path.clone())
                        .display()
                        .to_string(),
                ],
                None => vec!["--key-env".to_owned(), key_env.clone()],
            };
            let options = IngestOptions {
                append,
                ..resources.options(key_source)?
            };
            let change = ingest(&extracts, &data, &secret, catalog, &options);
            let summary = audit
                .recorded(None, Action::ReleaseIngest, detail, change)
                .await?;
            outln!("{summary}");
        }
        Command::IngestWorker { key_file, key_env } => {
            let secret = key::load_secret(key_file.as_deref(), &key_env)?;
            let keys = LinkageKeys::derive(&secret)?;
            tokio::task::block_in_place(|| enclave_ingest::serve_shard_task(&keys))?;
        }
        Command::LinkageEval { truth, data } => {
            let report =
                enclave_ingest::evaluate::evaluate_latest(&existing_store(&data)?, &truth).await?;
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        }
        Command::Catalog { data, json, lang } => {
            let catalog = published_catalog(&data).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&catalog).unwrap_or_default()
                );
            } else {
                out!("{}", catalog.render_text(lang));
            }
        }
        Command::Demo {
            persons,
            seed,
            workdir,
            listen,
            portal,
        } => {
            let demo_run = DemoRun {
                persons,
                seed,
                listen,
                portal,
            };
            demo(demo_run, &workdir).await?
        }
        Command::Serve {
            data,
            state,
            options,
        } => admin::serve(&data, &state, options).await?,
        Command::Apply { command } => crate::apply::run(command).await?,
        Command::Review { command } => crate::review::run(command).await?,
        Command::Audit { command } => crate::audit::run(command)?,
        Command::User { command } => admin::user(command).await?,
        Command::Project { command } => admin::project(command).await?,
        Command::Optout { command } => admin::opt_out(command).await?,
        Command::Ballista { command } => crate::ballista::run(command).await?,
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
    data: &DataLocation,
    secret: &[u8],
    catalog: &Catalog,
    options: &IngestOptions,
) -> Result<IngestSummary, CommandError> {
    let keys = LinkageKeys::derive(secret)?;
    if !extracts.is_dir() {
        return Err(CommandError::NoExtracts(extracts.display().to_string()));
    }
    let store = DataStore::open(data)?;
    Ok(enclave_ingest::ingest(&store, extracts, &keys, catalog, options).await?)
}

/// A data store that must already exist (readers never create a local
/// directory; a bucket without releases is reported by the reader).
pub(crate) fn existing_store(data: &DataLocation) -> Result<DataStore, CommandError> {
    if let DataLocation::Local(dir) = data
        && !dir.is_dir()
    {
        return Err(CommandError::NoRelease(data.to_string()));
    }
    Ok(DataStore::open(data)?)
}

/// The catalog of the newest release, as it was when that release was made.
pub(crate) async fn published_catalog(
    data: &DataLocation,
) -> Result<PublishedCatalog, CommandError> {
    let store = existing_store(data)?;
    let manifest = store
        .latest()
        .await?
        .ok_or_else(|| CommandError::NoRelease(data.to_string()))?;
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
    data: DataLocation,
    state: PathBuf,
}

/// The demo's accounts: (name, role, password, what they show).
pub(crate) const DEMO_USERS: [(&str, Role, &str, &str); 8] = [
    (
        "researcher",
        Role::Researcher,
        "researcher-demo",
        "member of the approved project `demo` (application 1, all tables)",
    ),
    (
        "outsider",
        Role::Researcher,
        "outsider-demo",
        "no project yet: application 2 waits for review; every query is refused",
    ),
    (
        "reviewer",
        Role::Reviewer,
        "reviewer-demo",
        "committee member assigned to application 2",
    ),
    (
        "reviewer2",
        Role::Reviewer,
        "reviewer2-demo",
        "committee member",
    ),
    (
        "chair",
        Role::Chair,
        "chair-demo",
        "committee chair: assigns and decides",
    ),
    ("steward", Role::Steward, "steward-demo", "data steward"),
    ("operator", Role::Operator, "operator-demo", "operator"),
    (
        "admin",
        Role::Admin,
        "admin-demo",
        "administrator: accounts",
    ),
];

/// What `enclave demo` was asked for.
pub(crate) struct DemoRun {
    pub(crate) persons: u64,
    pub(crate) seed: u64,
    pub(crate) listen: SocketAddr,
    pub(crate) portal: admin::PortalOptions,
}

async fn demo(run: DemoRun, workdir: &Path) -> Result<(), CommandError> {
    let DemoRun {
        persons,
        seed,
        listen,
        portal,
    } = run;
    let paths = DemoPaths {
        extracts: workdir.join("extracts"),
        key: workdir.join("steward").join("pseudonym.key"),
        data: DataLocation::Local(workdir.join("data")),
        state: workdir.join("state"),
    };
    outln!("enclave demo in {}\n", workdir.display());
    // A rerun starts fresh: new accounts, audit log and workspaces (the
    // earlier releases stay in the data directory; the newest is served).
    for fresh in [
        &paths.extracts,
        &paths.state,
        &workdir.join("data").join("workspaces"),
    ] {
        remove_dir(fresh)?;
    }
    outln!(
        "1. synthetic population → identified extracts in {}",
        paths.extracts.display()
    );
    outln!("{}\n", synth(persons, seed, &paths.extracts)?);

    key::ensure_key_file(&paths.key)?;
    outln!(
        "2. the steward's key is {} (kept apart from the data)\n",
        paths.key.display()
    );

    outln!("3. ingest → {}", paths.data);
    let secret = key::load_secret(Some(&paths.key), key::DEFAULT_KEY_ENV)?;
    outln!(
        "{}\n",
        ingest(
            &paths.extracts,
            &paths.data,
            &secret,
            Catalog::embedded(),
            &IngestOptions::default()
        )
        .await?
    );

    outln!("4. the published catalog\n");
    out!(
        "{}",
        published_catalog(&paths.data).await?.render_text(Lang::Ja)
    );

    outln!(
        "\n5. demo users; application 1 (project `demo`) approved through the review workflow,\n   application 2 waiting for its reviewers; state in {}",
        paths.state.display()
    );
    seed_demo_state(&paths).await?;
    for (name, role, password, about) in DEMO_USERS {
        outln!("   {name:<11} password {password:<16} {role:<10} {about}");
    }
    outln!("\n6. Flight SQL: connect with ADBC, e.g. examples/adbc_quickstart.py");
    outln!(
        "   to serve this demo again later on the same accounts and audit log:\n   enclave serve --data {} --state {}\n",
        paths.data,
        paths.state.display()
    );
    let options = admin::ServeOptions {
        listen,
        tls_cert: None,
        tls_key: None,
        max_concurrent_per_user: 4,
        query_memory_mb: 2048,
        query_timeout_secs: 300,
        total_memory_mb: 8192,
        engine: Execution::InProcess,
        // The defaults `serve` uses too (STATE/audit, STATE/audit-signing.key),
        // so the restart printed above continues this log, and admin
        // commands given `--state` reach it.
        audit_dir: None,
        audit_key: None,
        audit_log: admin::AuditLogOptions::default(),
        portal,
    };
    admin::serve(
        &paths.data,
        &StateArgs::embedded(paths.state.clone()),
        options,
    )
    .await
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

/// What the demo's applicants say of their site's security.
const DEMO_SECURITY_MEASURES: &str =
    "Analysis only on the university's enclave terminal, in a locked room, by the named members.";

/// The demo's users, application 1 approved through the workflow (project
/// `demo` over every table and the release's months) and application 2
/// submitted and waiting for the demo reviewer.
async fn seed_demo_state(paths: &DemoPaths) -> Result<(), CommandError> {
    let state = Arc::new(StateStore::open(&paths.state)?);
    for (name, role, password, _) in DEMO_USERS {
        state.add_user(name, role, password)?;
    }
    let store = existing_store(&paths.data)?;
    let manifest = store
        .latest()
        .await?
        .ok_or_else(|| CommandError::NoRelease(paths.data.to_string()))?;
    let months = manifest.content.tables.values();
    let first = months.clone().filter_map(|t| t.first_month.clone()).min();
    let last = months.filter_map(|t| t.last_month.clone()).max();
    let (Some(first), Some(last)) = (first, last) else {
        return Err(CommandError::NoRelease(paths.data.to_string()));
    };
    let clock = Clock::system();
    let until = enclave_core::date::CivilDate::from_days_since_epoch(
        clock.today().days_since_epoch() + 365,
    );
    let terms = |member: &str, grants: Vec<Grant>| -> Result<Terms, CommandError> {
        let mut linkage: Vec<String> = grants.iter().map(|g| g.schema().to_string()).collect();
        linkage.sort();
        linkage.dedup();
        Ok(Terms {
            members: vec![Member {
                user: member.into(),
                affiliation: "Demo University".into(),
            }],
            linkage,
            grants,
            period: format!("{first}..{last}").parse()?,
            valid_until: until.to_string(),
            k: enclave_state::DEFAULT_K,
            rounding: Rounding::To10,
            fresh_value_budget: enclave_state::DEFAULT_FRESH_VALUE_BUDGET,
        })
    };
    let workflow = Workflow::new(state, Arc::new(Catalog::embedded().clone()), clock);
    let all_tables = Catalog::embedded()
        .table_names()
        .map(Grant::whole_table)
        .collect();
    let demo = workflow.create(
        "researcher",
        Proposal {
            project_id: "demo".into(),
            title: "Demo: care needs after hospital admission".into(),
            purpose: "Describe long-term care certification after acute admissions.".into(),
            public_interest: "Plans for post-acute care capacity.".into(),
            planned_outputs: "Aggregate tables by prefecture, age band and month.".into(),
            terms: terms("researcher", all_tables)?,
            planned_bring_ins: "An ICD-10 code list of the admissions studied.".into(),
            security_measures: DEMO_SECURITY_MEASURES.into(),
            no_matching_pledge: true,
        },
    )?;
    approve_demo_application(&workflow, &demo.id)?;
    let waiting = workflow.create(
        "outsider",
        Proposal {
            project_id: "dental-visits".into(),
            title: "Dental visits by age band".into(),
            purpose: "Count dental claims by age band and prefecture.".into(),
            public_interest: "Oral health policy for older people.".into(),
            planned_outputs: "One table of counts per prefecture.".into(),
            terms: terms(
                "outsider",
                vec![
                    "ndb.receipts:person_id,receipt_type,age_band,prefecture_code,service_month"
                        .parse()?,
                ],
            )?,
            planned_bring_ins: String::new(),
            security_measures: DEMO_SECURITY_MEASURES.into(),
            no_matching_pledge: true,
        },
    )?;
    workflow.change(&waiting.id, "outsider", |a, act| {
        a.submit(act).map(|()| None)
    })?;
    workflow.assign(
        &waiting.id,
        "chair",
        &["reviewer".into(), "reviewer2".into()],
    )?;
    Ok(())
}

/// Submit, two reviewers' votes and the chair's approval.
fn approve_demo_application(workflow: &Workflow, id: &str) -> Result<(), CommandError> {
    workflow.change(id, "researcher", |a, act| a.submit(act).map(|()| None))?;
    workflow.assign(id, "chair", &["reviewer".into(), "reviewer2".into()])?;
    for reviewer in ["reviewer", "reviewer2"] {
        workflow.change(id, reviewer, |a, act| {
            a.vote(VoteChoice::Approve, "Proportionate to the purpose.", act)
                .map(|()| None)
        })?;
    }
    workflow.change(id, "chair", |a, act| {
        a.decide(Decision::Approve, "approved by the committee", act)
    })?;
    Ok(())
}
