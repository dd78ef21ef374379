//! Users, projects decided outside the workflow and opt-outs in the state
//! store, and the server (Flight SQL and the gRPC API on one port) with its
//! audit log and, optionally, the log's S3 archive.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use enclave_access::Access;
use enclave_api::Api;
use enclave_audit::{
    Action, Archive, ArchiveLocation, ArchiveTask, AuditLog, CheckpointSigner, LogPolicy, NewEvent,
    Outcome, load_public_key, public_key_path,
};
use enclave_catalog::Catalog;
use enclave_core::date::CivilDate;
use enclave_portal::{Portal, PortalConfig};
use enclave_query::{Execution, Limits, QueryEngine, references};
use enclave_review::{ApplicationRoles, Workflow};
use enclave_state::{Clock, Grant, Period, Project, ProjectStatus, Protection, Role, Rounding};
use enclave_store::{DataLocation, DataStore};

use crate::audit_home::AuditHome;
use crate::commands::CommandError;
use crate::recorded::{AuditTarget, operating_system_user};
use crate::state::StateArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        name: String,
        /// researcher, reviewer, chair, steward, operator or admin.
        #[arg(long)]
        role: Role,
        /// Read the password from standard input (required: passwords are
        /// never taken from the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        audit: AuditTarget,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Add a project decided outside the review workflow (steward).
    Add {
        #[command(flatten)]
        state: StateArgs,
        /// Project id (a-z, 0-9, '-', '_').
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        /// A member's user name (repeat for each member).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// A granted table, `schema.table` or `schema.table:col,col` (repeat).
        #[arg(long = "grant", required = true)]
        grants: Vec<Grant>,
        /// Service months the project may see, `YYYY-MM..YYYY-MM`.
        #[arg(long)]
        period: Period,
        /// Last day queries are allowed, `YYYY-MM-DD`; today or later
        /// unless `--ended`.
        #[arg(long)]
        until: String,
        /// Record a project whose grant has already ended (a past
        /// `--until`): its queries are refused from the start.
        #[arg(long)]
        ended: bool,
        /// Minimum persons per released group (at least 10).
        #[arg(long, default_value_t = enclave_state::DEFAULT_K)]
        k: u32,
        /// Rounding of released counts: none, 5 or 10.
        #[arg(long, default_value = "10")]
        rounding: Rounding,
        /// Protection across queries: `ledger` (a cell within k-1 persons of
        /// an earlier release repeats its answer; fresh answers carry sticky
        /// noise) or `single-query` (exact answers, for projects whose every
        /// output is checked by hand; see docs/query-rules.md).
        #[arg(long, default_value = "ledger")]
        protection: Protection,
        /// Values the release ledger may answer fresh for the project over
        /// its life (repeats of earlier answers are free; see
        /// docs/query-rules.md, "Fresh-value budget").
        #[arg(long = "fresh-values", default_value_t = enclave_state::DEFAULT_FRESH_VALUE_BUDGET)]
        fresh_value_budget: u64,
        /// Workspace quota in MiB.
        #[arg(long, default_value_t = 1024)]
        quota_mb: u64,
        #[command(flatten)]
        audit: AuditTarget,
    },
    /// Close a project: queries are refused and its workspace is deleted.
    Close {
        #[command(flatten)]
        state: StateArgs,
        /// Data store holding the workspace: a directory or s3://bucket/prefix.
        #[arg(long)]
        data: DataLocation,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        audit: AuditTarget,
    },
    /// List projects.
    List {
        #[command(flatten)]
        state: StateArgs,
    },
}

pub(crate) async fn user(command: UserCommand) -> Result<(), CommandError> {
    let UserCommand::Add {
        state,
        name,
        role,
        password_stdin: _,
        audit,
    } = command;
    let password = crate::client::password_from_stdin()?;
    let detail = serde_json::json!({ "user": name, "role": role.to_string() });
    let change = async {
        state.open()?.add_user(&name, role, &password)?;
        Ok(())
    };
    audit
        .recorded(Some(&state.state), Action::UserAdd, detail, change)
        .await?;
    outln!("user {name} ({role}) added");
    Ok(())
}

pub(crate) async fn project(command: ProjectCommand) -> Result<(), CommandError> {
    match command {
        ProjectCommand::Add {
            state,
            id,
            title,
            members,
            grants,
            period,
            until,
            ended,
            k,
            rounding,
            protection,
            fresh_value_budget,
            quota_mb,
            audit,
        } => {
            check_until(&until, ended)?;
            let project = Project {
                id,
                title,
                members,
                grants,
                period,
                valid_until: until,
                k,
                rounding,
                protection,
                fresh_value_budget,
                workspace_quota_bytes: quota_mb << 20,
                status: ProjectStatus::Active,
            };
            let detail = serde_json::json!({
                "project": project.id,
                "members": project.members,
                "grants": project.grants,
                "period": project.period.to_string(),
                "until": project.valid_until,
                "k": project.k,
                "protection": project.protection.name(),
                "fresh_values": project.fresh_value_budget,
            });
            let change = async { Ok(state.open()?.add_project(&project)?) };
            audit
                .recorded(Some(&state.state), Action::ProjectAdd, detail, change)
                .await?;
            outln!("project {} added", project.id);
        }
        ProjectCommand::Close {
            state,
            data,
            id,
            audit,
        } => {
            let change = async {
                let store = Arc::new(state.open()?);
                store.close_project(&id)?;
                let data = DataStore::open(&data)?;
                let mut destroyed = QueryEngine::destroy_workspace(&data, &id).await?;
                let catalog = Arc::new(Catalog::embedded().clone());
                let workflow = Workflow::new(store, catalog, Clock::system());
                let by = operating_system_user();
                destroyed.extend(workflow.destroy_outputs(&id, &by)?);
                for (record, object) in workflow.destroy_bring_ins(&id, &by)? {
                    references::delete(&data, &object).await?;
                    destroyed.push(record);
                }
                let listed = serde_json::json!({ "destroyed": destroyed });
                Ok((destroyed, listed))
            };
            let detail = serde_json::json!({ "project": id });
            let destroyed = audit
                .recorded_with(Some(&state.state), Action::ProjectClose, detail, change)
                .await?;
            let count = |kind: &str| destroyed.iter().filter(|item| item.kind == kind).count();
            outln!(
                "project {id} closed; destroyed {} workspace tables, {} held outputs and {} brought-in tables",
                count("workspace_table"),
                count("output"),
                count("reference_table")
            );
        }
        ProjectCommand::List { state } => {
            for project in state.open()?.projects()? {
                outln!(
                    "{}\t{:?}\t{}\tuntil {}\tk={}\t{}\tfresh-values={}\tmembers={}",
                    project.id,
                    project.status,
                    project.period,
                    project.valid_until,
                    project.k,
                    project.protection.name(),
                    project.fresh_value_budget,
                    project.members.join(",")
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub(crate) enum OptOutCommand {
    /// Record opt-out requests; they apply to every query from now on.
    ///
    /// The file is UTF-8 CSV with the header `kana_name,birth_date,sex`
    /// (birth date `YYYY-MM-DD`, sex `1` male / `2` female). Only keyed
    /// lookup values computed under the steward's key are stored.
    Add {
        #[command(flatten)]
        state: StateArgs,
        /// The request file.
        #[arg(long)]
        file: PathBuf,
        /// File holding the steward's secret key (the ingest key).
        #[arg(long, conflicts_with = "key_env")]
        key_file: Option<PathBuf>,
        /// Environment variable holding the secret key instead of a file.
        #[arg(long, default_value = crate::key::DEFAULT_KEY_ENV)]
        key_env: String,
        #[command(flatten)]
        audit: AuditTarget,
    },
}

pub(crate) async fn opt_out(command: OptOutCommand) -> Result<(), CommandError> {
    let OptOutCommand::Add {
        state,
        file,
        key_file,
        key_env,
        audit,
    } = command;
    let secret = crate::key::load_secret(key_file.as_deref(), &key_env)?;
    let keys = enclave_linkage::LinkageKeys::derive(&secret)?;
    let lookups = enclave_ingest::optout::request_lookups(&file, &keys)?;
    let recorded_on = Clock::system().today().to_string();
    let entries: Vec<enclave_state::OptOutEntry> = lookups
        .into_iter()
        .map(|lookup| enclave_state::OptOutEntry {
            lookup,
            recorded_on: recorded_on.clone(),
        })
        .collect();
    // The count only: the keyed lookup values stay in the state store.
    let detail =
        serde_json::json!({ "requests": entries.len(), "file": file.display().to_string() });
    let change = async { Ok(state.open()?.add_opt_outs(&entries)?) };
    let added = audit
        .recorded(Some(&state.state), Action::OptOutAdd, detail, change)
        .await?;
    outln!(
        "{} requests read, {added} new opt-outs recorded",
        entries.len()
    );
    Ok(())
}

/// Options of `enclave serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeOptions {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// PEM certificate for TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Queries one user may run at once.
    #[arg(long, default_value_t = 4)]
    pub max_concurrent_per_user: usize,
    /// Memory one query may use, in MiB.
    #[arg(long, default_value_t = 2048)]
    pub query_memory_mb: usize,
    /// Memory all queries may use together, in MiB.
    #[arg(long, default_value_t = 8192)]
    pub total_memory_mb: usize,
    /// Time limit of one query, in seconds.
    #[arg(long, default_value_t = 300)]
    pub query_timeout_secs: u64,
    /// Where project queries run: `embedded` (this process) or
    /// ballista://host:port (a Ballista cluster over the same --data; see
    /// `enclave ballista`).
    #[arg(long, default_value = "embedded")]
    pub engine: Execution,
    /// Audit log directory [default: STATE/audit].
    #[arg(long)]
    pub audit_dir: Option<PathBuf>,
    /// Checkpoint signing key (Ed25519, PKCS#8), made on first start with
    /// its public key beside it (`.pub`); keep it apart from the log
    /// [default: STATE/audit-signing.key].
    #[arg(long)]
    pub audit_key: Option<PathBuf>,
    #[command(flatten)]
    pub audit_log: AuditLogOptions,
    #[command(flatten)]
    pub portal: PortalOptions,
}

/// The web portal served beside Flight SQL.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PortalOptions {
    /// Address the web portal listens on (HTTP; put a TLS proxy in front
    /// beyond loopback).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub portal_listen: SocketAddr,
    /// Do not serve the web portal.
    #[arg(long)]
    pub no_portal: bool,
    /// Mark the portal's cookies `Secure` (it is reached through HTTPS).
    #[arg(long)]
    pub portal_secure_cookies: bool,
}

/// Seven years (two of them leap years); docs/audit.md says why.
const DEFAULT_RETENTION_DAYS: u32 = 2557;
const DEFAULT_SEGMENT_SIZE: &str = "64MiB";
const DEFAULT_SEGMENT_AGE_SECS: u64 = 3600;
/// S3 takes at most 5 GB in one upload.
const MAX_SEGMENT_BYTES: u64 = 4 << 30;
/// How often the archive looks for new sealed segments and checkpoints.
const ARCHIVE_EVERY: Duration = Duration::from_secs(5);

/// When audit segments are sealed, and the S3 archive of sealed segments
/// and checkpoints.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditLogOptions {
    /// Seal the active audit segment once it holds this much: bytes, or a
    /// number with KiB, MiB or GiB (at most 4GiB).
    #[arg(long, default_value = DEFAULT_SEGMENT_SIZE, value_parser = segment_size, value_name = "SIZE")]
    pub audit_segment_size: u64,
    /// Seal the active audit segment once its first event is this many
    /// seconds old, so the archive gets it in time on a quiet server.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_AGE_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_segment_max_age_secs: u64,
    /// Copy sealed audit segments and checkpoints to this S3 bucket and
    /// prefix under Object Lock (compliance mode); the bucket must have
    /// Object Lock enabled. Credentials, region and endpoint
    /// (`AWS_ENDPOINT_URL`) come from the AWS environment [default: off].
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub audit_archive: Option<ArchiveLocation>,
    /// Days archived objects stay locked; in compliance mode nobody can
    /// shorten this, so choose it deliberately.
    #[arg(long, default_value_t = DEFAULT_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub audit_retention_days: u32,
}

impl Default for AuditLogOptions {
    fn default() -> AuditLogOptions {
        AuditLogOptions {
            audit_segment_size: segment_size(DEFAULT_SEGMENT_SIZE).expect("a valid default"),
            audit_segment_max_age_secs: DEFAULT_SEGMENT_AGE_SECS,
            audit_archive: None,
            audit_retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// `4096`, `512KiB`, `64MiB`, `1GiB` in bytes (at least 1 KiB).
fn segment_size(text: &str) -> Result<u64, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        _ => {
            return Err(format!(
                "{text}: give bytes or a number with KiB, MiB or GiB"
            ));
        }
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text}: not a size"))?;
    if (1 << 10..=MAX_SEGMENT_BYTES).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("{text}: a segment holds from 1KiB to 4GiB"))
    }
}

fn audit_dir(state: &Path, options: &ServeOptions) -> PathBuf {
    options
        .audit_dir
        .clone()
        .unwrap_or_else(|| state.join("audit"))
}

fn audit_key(state: &Path, options: &ServeOptions) -> PathBuf {
    options
        .audit_key
        .clone()
        .unwrap_or_else(|| state.join("audit-signing.key"))
}

/// Opens the audit log, making the signing key on first start.
pub(crate) fn open_audit(
    state: &Path,
    options: &ServeOptions,
) -> Result<Arc<AuditLog>, CommandError> {
    let key = audit_key(state, options);
    let home = AuditHome::new(&audit_dir(state, options), &key)?;
    home.check(state)?;
    let signer = if key.exists() {
        CheckpointSigner::load(&key)?
    } else {
        CheckpointSigner::create(&key)?
    };
    let policy = LogPolicy {
        segment_bytes: options.audit_log.audit_segment_size,
        segment_age: Duration::from_secs(options.audit_log.audit_segment_max_age_secs),
        ..LogPolicy::default()
    };
    let log = AuditLog::open(&home.dir, signer, policy)?;
    home.remember(state)?;
    Ok(Arc::new(log))
}

/// Starts the archive when `--audit-archive` is given; fails closed on a
/// bucket without Object Lock or one that cannot be reached.
async fn start_archive(
    state: &Path,
    options: &ServeOptions,
    audit: &Arc<AuditLog>,
) -> Result<Option<ArchiveTask>, CommandError> {
    let Some(location) = options.audit_log.audit_archive.clone() else {
        return Ok(None);
    };
    let retention = Duration::from_secs(u64::from(options.audit_log.audit_retention_days) * 86_400);
    let archive = Archive::connect(
        location,
        retention,
        &audit_dir(state, options),
        Arc::clone(audit),
    )
    .await?;
    Ok(Some(archive.spawn(ARCHIVE_EVERY)))
}

/// How often grants whose period ended are expired (and their workspaces
/// deleted); access itself ends at midnight whatever this interval.
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

pub(crate) async fn serve(
    data: &DataLocation,
    state: &StateArgs,
    options: ServeOptions,
) -> Result<(), CommandError> {
    let state_dir = state.state.as_path();
    let store = crate::commands::existing_store(data)?;
    let audit = open_audit(state_dir, &options)?;
    let archive = start_archive(state_dir, &options, &audit).await?;
    let state = Arc::new(state.open()?);
    let limits = Limits {
        query_memory_bytes: options.query_memory_mb << 20,
        total_memory_bytes: options.total_memory_mb << 20,
        query_timeout: Duration::from_secs(options.query_timeout_secs),
        concurrent_queries_per_user: options.max_concurrent_per_user.max(1),
        ..Limits::default()
    };
    let clock = Clock::system();
    let engine = QueryEngine::open_on(
        store,
        Arc::clone(&state),
        limits,
        options.engine.clone(),
        clock.clone(),
    )
    .await?;
    let release = engine.release_id().to_string();
    let access = Arc::new(Access::new(
        Arc::clone(&state),
        clock.clone(),
        vec![Arc::new(ApplicationRoles)],
        Arc::clone(&audit),
    ));
    let catalog = Arc::new(engine.catalog().clone());
    let workflow = Arc::new(Workflow::new(state, catalog, clock));
    let api = Api::new(Arc::clone(&access), workflow, engine.clone());
    let routes = api.routes().add_service(enclave_flight::flight_service(
        engine.clone(),
        Arc::clone(&access),
        api.clone(),
    ));
    let portal = match options.portal.no_portal {
        true => None,
        false => Some(portal(data, state_dir, &options, api.clone(), access, engine).await?),
    };
    tokio::spawn(expire_grants(api));
    let detail = serde_json::json!({ "release": release, "listen": options.listen.to_string() });
    server_event(&audit, Action::ServerStart, detail.clone()).await?;
    let config = enclave_api::ServerConfig {
        listen: options.listen,
        tls: options.tls_cert.zip(options.tls_key),
    };
    let scheme = if config.tls.is_some() {
        "grpc+tls"
    } else {
        "grpc"
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop.send(true);
    });
    let grpc = async {
        enclave_api::serve(
            config,
            routes,
            |address| {
                outln!(
                    "serving Flight SQL and the enclave API on {scheme}://{address} (release {release}); Ctrl-C stops"
                )
            },
            stopped_by(stopped.clone()),
        )
        .await
        .map_err(CommandError::from)
    };
    let web = async {
        match portal {
            Some(portal) => portal
                .serve(
                    |address| outln!("serving the web portal on http://{address}"),
                    stopped_by(stopped.clone()),
                )
                .await
                .map_err(CommandError::from),
            None => Ok(()),
        }
    };
    tokio::try_join!(grpc, web)?;
    server_event(&audit, Action::ServerStop, detail).await?;
    if let Some(archive) = archive {
        archive.finish().await;
    }
    Ok(())
}

/// The web portal over the served release (its catalog as `enclave
/// catalog` publishes it) and the audit log's checkpoint key.
async fn portal(
    data: &DataLocation,
    state: &Path,
    options: &ServeOptions,
    api: Api,
    access: Arc<Access>,
    engine: QueryEngine,
) -> Result<Portal, CommandError> {
    let public_key = load_public_key(&public_key_path(&audit_key(state, options)))?;
    let config = PortalConfig {
        listen: options.portal.portal_listen,
        secure_cookies: options.portal.portal_secure_cookies,
        published: crate::commands::published_catalog(data).await?,
        audit_public_key: public_key,
    };
    Ok(Portal::new(api, access, engine, config))
}

/// Refuses a past `--until` unless the project is recorded as ended, and
/// `--ended` with a date still to come: either is more likely a typo than
/// the intent.
fn check_until(until: &str, ended: bool) -> Result<(), CommandError> {
    let Ok(last_day) = CivilDate::parse_yyyymmdd(&until.replace('-', "")) else {
        // The store's validation names the format.
        return Ok(());
    };
    let today = Clock::system().today();
    match (last_day < today, ended) {
        (true, false) => Err(CommandError::Usage(format!(
            "--until {until} is in the past (today is {today}): queries would be refused from \
             the start; give a later date, or --ended to record a project that has ended"
        ))),
        (false, true) => Err(CommandError::Usage(format!(
            "--ended was given but --until {until} has not passed (today is {today})"
        ))),
        _ => Ok(()),
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped_by(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn server_event(
    audit: &AuditLog,
    action: Action,
    detail: serde_json::Value,
) -> Result<(), CommandError> {
    audit
        .record(NewEvent::system(action, Outcome::Ok, detail))
        .await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Expires ended grants now and then, for as long as the server runs.
async fn expire_grants(api: Api) {
    let mut ticks = tokio::time::interval(EXPIRY_SWEEP);
    loop {
        ticks.tick().await;
        match api.expire_due().await {
            Ok(closed) if !closed.is_empty() => tracing::info!(?closed, "grants expired"),
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "expiring grants failed"),
        }
    }
}
