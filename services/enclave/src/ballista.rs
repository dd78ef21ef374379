//! `enclave ballista scheduler|executor`: the processes of a Ballista
//! cluster that runs front ends' guarded plans (`enclave serve --engine
//! ballista://host:port`). Both read the same data store as the front ends.

use std::net::SocketAddr;
use std::path::PathBuf;

use enclave_cluster::{ExecutorOptions, run_executor, run_scheduler};
use enclave_store::DataLocation;

use crate::commands::{CommandError, existing_store};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BallistaCommand {
    /// Run the scheduler: plans each guarded query's stages and hands them
    /// to executors.
    Scheduler {
        /// Address to listen on (gRPC for front ends and executors).
        #[arg(long, default_value = "127.0.0.1:50050")]
        listen: SocketAddr,
        /// Data store holding the releases: a directory or s3://bucket/prefix.
        #[arg(long)]
        data: DataLocation,
    },
    /// Run an executor: runs stages of guarded queries over the release.
    Executor {
        /// The scheduler's host:port.
        #[arg(long, value_parser = host_port)]
        scheduler: (String, u16),
        /// Address of the executor's Flight service; its gRPC service takes
        /// the next port.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Host name the scheduler and front ends reach this executor by
        /// [default: the --listen address, which must then not be 0.0.0.0].
        #[arg(long, env = "ENCLAVE_EXECUTOR_HOST")]
        external_host: Option<String>,
        /// Data store holding the releases: a directory or s3://bucket/prefix.
        #[arg(long)]
        data: DataLocation,
        /// Directory for shuffle files.
        #[arg(long)]
        work_dir: PathBuf,
        /// Tasks run at once [default: the machine's cores].
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        task_slots: Option<u16>,
        /// Memory all queries may hold together on this executor, in MiB
        /// (each query also within its own limit, set by its front end).
        #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
        memory_mb: u64,
    },
}

pub(crate) async fn run(command: BallistaCommand) -> Result<(), CommandError> {
    match command {
        BallistaCommand::Scheduler { listen, data } => {
            let store = existing_store(&data)?;
            outln!("ballista scheduler on {listen} over {data}; Ctrl-C stops");
            run_scheduler(listen, &store).await?;
        }
        BallistaCommand::Executor {
            scheduler,
            listen,
            external_host,
            data,
            work_dir,
            task_slots,
            memory_mb,
        } => {
            let external_host = match external_host {
                Some(host) => host,
                None if listen.ip().is_unspecified() => {
                    return Err(CommandError::Usage(format!(
                        "--listen {listen} is no address others can reach; give --external-host"
                    )));
                }
                None => listen.ip().to_string(),
            };
            let store = existing_store(&data)?;
            let options = ExecutorOptions {
                scheduler,
                listen,
                external_host,
                work_dir,
                task_slots: task_slots.map(usize::from),
                memory_bytes: usize::try_from(memory_mb << 20).unwrap_or(usize::MAX),
            };
            outln!("ballista executor on {listen} over {data}; Ctrl-C stops");
            run_executor(options, &store).await?;
        }
    }
    Ok(())
}

/// `host:port`.
fn host_port(text: &str) -> Result<(String, u16), String> {
    enclave_query::execution::host_port(text)
        .map(|(host, port)| (host.to_string(), port))
        .ok_or_else(|| format!("{text}: give host:port"))
}
