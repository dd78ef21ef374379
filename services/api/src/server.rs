//! Binding and serving: Flight SQL and the API services on one port.

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::service::Routes;
use tonic::transport::{Identity, Server, ServerTlsConfig};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// PEM certificate and key; plain HTTP/2 without them.
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read TLS file {path}: {source}")]
    Tls {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` until `shutdown` completes. `ready` is called with the
/// bound address once connections are accepted.
pub async fn serve(
    config: ServerConfig,
    routes: Routes,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Bind {
        address: config.listen,
        source,
    })?;
    let mut builder = Server::builder();
    if let Some((cert, key)) = &config.tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| ServeError::Tls {
                path: path.clone(),
                source,
            })
        };
        let identity = Identity::from_pem(read(cert)?, read(key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    ready(address);
    builder
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // Small results are a few frames: without TCP_NODELAY each waits
            // for the client's delayed ACK (about 40 ms on Linux).
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
