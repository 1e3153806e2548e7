//! Connecting to ferroflowd's management API: over its unix socket, or over
//! TCP with TLS and a client certificate.

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

/// Where the API is and how to reach it.
#[derive(Debug, Clone)]
pub enum ServerAddr {
    Unix(PathBuf),
    Tls {
        /// `host:port`.
        addr: String,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
        /// The name the server certificate must carry (default: the host).
        domain: Option<String>,
    },
}

/// Why the client could not reach the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("{0:?} is not a server address")]
    Address(String),
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub async fn connect(server: &ServerAddr) -> Result<Channel, ClientError> {
    match server {
        ServerAddr::Unix(path) => {
            let p = path.clone();
            // The URI is required by the API but unused: the connector dials the socket.
            Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let p = p.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(
                            tokio::net::UnixStream::connect(p).await?,
                        ))
                    }
                }))
                .await
                .map_err(|source| ClientError::Connect {
                    addr: format!("unix:{}", path.display()),
                    source,
                })
        }
        ServerAddr::Tls {
            addr,
            ca,
            cert,
            key,
            domain,
        } => {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|source| ClientError::ReadFile {
                    path: p.clone(),
                    source,
                })
            };
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca)?))
                .identity(Identity::from_pem(read(cert)?, read(key)?))
                .domain_name(
                    domain
                        .clone()
                        .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned()),
                );
            let err = |source| ClientError::Connect {
                addr: addr.clone(),
                source,
            };
            Channel::from_shared(format!("https://{addr}"))
                .map_err(|_| ClientError::Address(addr.clone()))?
                .tls_config(tls)
                .map_err(err)?
                .connect()
                .await
                .map_err(err)
        }
    }
}
