//! The `enclave` command: one binary that composes the service crates.
//!
//! - `synth`: a synthetic population and its identified extracts (enclave-synth)
//! - `ingest`: extracts → pseudonymized, linked Parquet release (enclave-ingest)
//! - `linkage-eval`: linkage quality of a release against ground truth
//! - `catalog`: the published catalog of the newest release (enclave-catalog)
//! - `serve`: Arrow Flight SQL (enclave-flight over enclave-query) and the
//!   gRPC API (enclave-api: applications, review, output releases) on one port
//! - `apply`, `review`: the researcher's and the committee's side of the
//!   workflow, as clients of the gRPC API
//! - `audit`: verify, tail and search the audit log (enclave-audit)
//! - `user`, `project`, `optout`: accounts, projects decided outside the
//!   workflow, opt-out requests (enclave-state)
//! - `ballista`: scheduler and executors of a cluster that runs the front
//!   ends' guarded plans (enclave-cluster; `serve --engine ballista://…`)
//! - `demo`: all of the above on embedded defaults in a work directory, then serve

#[macro_use]
mod output;

mod admin;
mod apply;
mod audit;
mod audit_home;
mod ballista;
mod client;
mod commands;
mod key;
mod recorded;
mod review;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use enclave_core::date::YearMonth;
use enclave_store::DataLocation;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// enclave: secondary use of Japan's public health and care data.
#[derive(Debug, Parser)]
#[command(name = "enclave", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a synthetic population and its identified source extracts.
    Synth {
        /// Number of persons.
        #[arg(long, default_value_t = 20_000)]
        persons: u64,
        /// Random seed; the same seed gives byte-identical extracts.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory (must be empty or absent).
        #[arg(long)]
        out: PathBuf,
        /// Write only these service months, `YYYYMM..YYYYMM` inclusive (the
        /// population is the same; each month's files are those of the whole run).
        #[arg(long, value_parser = parse_month_range)]
        months: Option<(YearMonth, YearMonth)>,
    },
    /// Pseudonymize, link and publish extracts as a new dataset release.
    Ingest {
        /// Directory of identified extracts (ndb/, dpc/, care/).
        #[arg(long)]
        extracts: PathBuf,
        /// Data store receiving the release: a directory or s3://bucket/prefix.
        #[arg(long)]
        data: DataLocation,
        /// File holding the steward's secret key (at least 32 bytes).
        #[arg(long, conflicts_with = "key_env")]
        key_file: Option<PathBuf>,
        /// Environment variable holding the secret key instead of a file.
        #[arg(long, default_value = key::DEFAULT_KEY_ENV)]
        key_env: String,
        /// Directory of catalog definitions (`*.toml`) to use instead of the built-in ones.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Add the extracts' months (all after the newest release's last
        /// month) to the newest release, reading only them: its files are
        /// shared, its persons keep their ids.
        #[arg(long)]
        append: bool,
        #[command(flatten)]
        resources: IngestResources,
        #[command(flatten)]
        audit: recorded::AuditTarget,
    },
    /// Run one shard task of an ingest's worker (`ingest --workers`): the
    /// task on standard input, the result in the task's directory.
    #[command(hide = true)]
    IngestWorker {
        #[arg(long, conflicts_with = "key_env")]
        key_file: Option<PathBuf>,
        #[arg(long, default_value = key::DEFAULT_KEY_ENV)]
        key_env: String,
    },
    /// Score the newest release's linkage against the generator's truth.
    LinkageEval {
        /// The `truth/` directory written by `enclave synth`.
        #[arg(long)]
        truth: PathBuf,
        /// Data store holding the release: a directory or s3://bucket/prefix.
        #[arg(long)]
        data: DataLocation,
    },
    /// Print the published catalog of the newest release.
    Catalog {
        /// Data store holding the release: a directory or s3://bucket/prefix.
        #[arg(long)]
        data: DataLocation,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Language of the text listing: `ja` or `en`.
        #[arg(long, default_value = "ja")]
        lang: enclave_catalog::Lang,
    },
    /// Synthetic data → ingest → catalog in a work directory.
    Demo {
        /// Number of synthetic persons.
        #[arg(long, default_value_t = 20_000)]
        persons: u64,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Work directory (extracts, steward key and data go under it).
        #[arg(long, default_value = "enclave-demo")]
        workdir: PathBuf,
        /// Address the demo server listens on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        portal: admin::PortalOptions,
    },
    /// Serve Arrow Flight SQL and the gRPC API over the newest release.
    Serve {
        /// Data store holding the releases: a directory or s3://bucket/prefix.
        #[arg(long)]
        data: DataLocation,
        #[command(flatten)]
        state: state::StateArgs,
        #[command(flatten)]
        options: admin::ServeOptions,
    },
    /// Apply for data, follow applications, ask for outputs (researcher).
    Apply {
        #[command(subcommand)]
        command: apply::ApplyCommand,
    },
    /// Review applications and outputs (committee).
    Review {
        #[command(subcommand)]
        command: review::ReviewCommand,
    },
    /// Verify and read the audit log (operator).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: admin::UserCommand,
    },
    /// Record opt-out requests (steward).
    Optout {
        #[command(subcommand)]
        command: admin::OptOutCommand,
    },
    /// Manage projects (grants, periods, disclosure parameters).
    Project {
        #[command(subcommand)]
        command: admin::ProjectCommand,
    },
    /// Run a scheduler or executor of the Ballista cluster that
    /// `enclave serve --engine ballista://host:port` sends queries to.
    Ballista {
        #[command(subcommand)]
        command: ballista::BallistaCommand,
    },
}

const WORKER_STACK_BYTES: usize = 16 << 20;

/// How an ingest may use the machine.
#[derive(Debug, clap::Args)]
pub(crate) struct IngestResources {
    /// Most memory the ingest plans to hold, in MiB: extract chunks and key
    /// partitions are cut to fit, and an ingest that cannot fit stops before
    /// linking.
    #[arg(long, default_value_t = enclave_ingest::DEFAULT_MEMORY_MB)]
    memory_mb: u64,
    /// Local directory for spill files (keyed hashes, never identifiers)
    /// [default: the system's temporary directory].
    #[arg(long)]
    spill_dir: Option<PathBuf>,
    /// Keep the spill files after the ingest, for inspection.
    #[arg(long)]
    keep_spill: bool,
    /// Worker processes sharing the parsing, keying and table building,
    /// shard by shard (linkage stays in this process); 0: this process
    /// does it all.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=256))]
    workers: u16,
    /// A program that starts each worker, on another machine as a batch
    /// scheduler or a remote shell places it (a script around `srun` or
    /// `ssh`): it is run with the worker's command line (`enclave
    /// ingest-worker --key-file K`) as its arguments, ENCLAVE_WORKER_PASS
    /// (keys, tables) and ENCLAVE_WORKER_INDEX (0 to N-1) in its
    /// environment; it hands its standard input to the worker and exits
    /// with it. The worker's machine must see the extracts, the key file
    /// and `--spill-dir` at the same (absolute) paths. Needs `--workers`.
    #[arg(long, value_name = "PROGRAM")]
    worker_launcher: Option<PathBuf>,
}

impl IngestResources {
    /// The options, with workers started as `enclave ingest-worker`
    /// reading the key from `key` (the arguments naming the key source).
    pub(crate) fn options(
        &self,
        key: Vec<String>,
    ) -> Result<enclave_ingest::IngestOptions, commands::CommandError> {
        if self.worker_launcher.is_some() && self.workers == 0 {
            return Err(commands::CommandError::Usage(
                "--worker-launcher starts workers: give --workers N too".into(),
            ));
        }
        let workers = match self.workers {
            0 => None,
            count => Some(enclave_ingest::Workers {
                count: count.into(),
                program: std::env::current_exe().map_err(|e| {
                    commands::CommandError::Usage(format!(
                        "cannot find this program for the ingest's workers: {e}"
                    ))
                })?,
                args: std::iter::once("ingest-worker".to_owned())
                    .chain(key)
                    .collect(),
                launcher: self.worker_launcher.clone(),
            }),
        };
        Ok(enclave_ingest::IngestOptions {
            memory_mb: self.memory_mb,
            spill_dir: self.spill_dir.clone(),
            keep_spill: self.keep_spill,
            append: false,
            workers,
        })
    }
}

/// `YYYYMM..YYYYMM`, first no later than last.
fn parse_month_range(text: &str) -> Result<(YearMonth, YearMonth), String> {
    let usage = || format!("expected YYYYMM..YYYYMM, got {text:?}");
    let (first, last) = text.split_once("..").ok_or_else(usage)?;
    let first = YearMonth::parse_yyyymm(first).map_err(|_| usage())?;
    let last = YearMonth::parse_yyyymm(last).map_err(|_| usage())?;
    if first > last {
        return Err(format!("{text}: the first month is after the last"));
    }
    Ok((first, last))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Workers get a larger stack than tokio's 2 MiB: statements are bounded
    // in nesting before planning (see enclave_guard::bounds), and
    // this leaves a wide margin for the planner and the guard on any
    // statement that passes those bounds.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
