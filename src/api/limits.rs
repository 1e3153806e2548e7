//! What a gRPC peer can make the switch hold (issue 14): a bound on each
//! request's size, on the time a `tcp:` peer has to finish its TLS handshake,
//! on connections open at once and on calls in progress per connection. Each
//! refusal is counted ([`GrpcCounters`], `ferroflow_grpc_*` in /metrics) and,
//! where the peer has a call to answer, answered RESOURCE_EXHAUSTED naming the
//! `[grpc]` key of the limit.

use std::convert::Infallible;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tonic::body::BoxBody;
use tonic::codegen::{http, BoxFuture, Bytes, Service};
use tonic::server::NamedService;
use tonic::transport::server::Connected;
use tonic::Status;
use tracing::{debug, warn};

use super::ServeError;

/// The gRPC server's refusals since start, for /metrics.
#[derive(Debug, Default)]
pub struct GrpcCounters {
    /// `tcp:` peers dropped because their TLS handshake did not finish in time.
    pub handshake_timeouts: AtomicU64,
    /// TLS handshakes that failed (no certificate, one the CA did not sign...).
    pub handshake_failures: AtomicU64,
    /// Connections closed as they were accepted: `max_connections` were open.
    pub connections_refused: AtomicU64,
    /// Connections open now (handshaking or serving).
    pub connections_open: AtomicU64,
    /// Calls refused: `max_streams_per_connection` were in progress on theirs.
    pub streams_refused: AtomicU64,
    /// Calls refused: a request message over `max_request_bytes` (or
    /// `max_flow_batch_bytes` for FlowService).
    pub requests_too_large: AtomicU64,
    /// `AddPort` calls refused by the port rules (driver, path, PCI).
    pub ports_refused: AtomicU64,
}

/// The limits the server enforces, from `[grpc]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_flow_batch_bytes: usize,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
    pub max_streams_per_connection: usize,
}

impl Limits {
    pub fn from_config(cfg: &ferroflow_config::GrpcConfig) -> Limits {
        Limits {
            max_request_bytes: cfg.max_request_bytes(),
            max_flow_batch_bytes: cfg.max_flow_batch_bytes(),
            handshake_timeout: cfg.handshake_timeout(),
            max_connections: cfg.max_connections(),
            max_streams_per_connection: cfg.max_streams_per_connection(),
        }
    }
}

/// One connection's place among `max_connections`; given back when dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    counters: Arc<GrpcCounters>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counters.connections_open.fetch_sub(1, Relaxed);
    }
}

/// What every call on a connection sees of it (tonic puts it in the
/// request's extensions): its calls in progress.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    calls: Arc<AtomicUsize>,
}

/// A call in progress, counted on its connection until its response ends.
struct CallGuard(Arc<AtomicUsize>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl ConnInfo {
    fn enter(&self, max: usize) -> Option<CallGuard> {
        let before = self.calls.fetch_add(1, Relaxed);
        let guard = CallGuard(Arc::clone(&self.calls));
        (before < max).then_some(guard)
    }
}

/// A connection the server accepted within its limits.
pub struct LimitedIo<IO> {
    io: IO,
    info: ConnInfo,
    _slot: Slot,
}

impl<IO: AsyncRead + Unpin> AsyncRead for LimitedIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for LimitedIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO> Connected for LimitedIo<IO> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

/// Logs a refusal on its 1st, 2nd, 4th, 8th... occurrence, so a flood of
/// them cannot flood the log; the counter has them all.
fn sampled(n: u64) -> bool {
    n.is_power_of_two()
}

/// Accepts connections from `accept` while fewer than `max_connections` are
/// open (closing the others at once), runs `handshake` on each within the
/// handshake timeout (a peer that does not finish it is dropped and counted),
/// and hands the finished ones to the server. The accept loop ends when the
/// server does.
pub(super) fn incoming<L, A, IO, H, F>(
    mut accept: A,
    handshake: H,
    limits: Limits,
    counters: Arc<GrpcCounters>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<LimitedIo<IO>>>
where
    A: FnMut() -> Pin<Box<dyn std::future::Future<Output = io::Result<L>> + Send>> + Send + 'static,
    L: Send + 'static,
    H: Fn(L) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = io::Result<IO>> + Send + 'static,
    IO: Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let handshake = Arc::new(handshake);
    tokio::spawn(async move {
        while !tx.is_closed() {
            let conn = match accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of fds, say: wait a little rather than spin.
                    warn!("gRPC accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                let n = counters.connections_refused.fetch_add(1, Relaxed) + 1;
                if sampled(n) {
                    warn!(
                        refused = n,
                        "gRPC connection closed: grpc.max_connections ({}) are open",
                        limits.max_connections
                    );
                }
                drop(conn);
                continue;
            };
            counters.connections_open.fetch_add(1, Relaxed);
            let slot = Slot {
                _permit: permit,
                counters: Arc::clone(&counters),
            };
            let (tx, counters, handshake) =
                (tx.clone(), Arc::clone(&counters), Arc::clone(&handshake));
            tokio::spawn(async move {
                match tokio::time::timeout(limits.handshake_timeout, handshake(conn)).await {
                    Err(_) => {
                        let n = counters.handshake_timeouts.fetch_add(1, Relaxed) + 1;
                        if sampled(n) {
                            warn!(
                                timeouts = n,
                                "gRPC peer dropped: no TLS handshake within grpc.handshake_timeout_s ({} s)",
                                limits.handshake_timeout.as_secs()
                            );
                        }
                    }
                    Ok(Err(e)) => {
                        let n = counters.handshake_failures.fetch_add(1, Relaxed) + 1;
                        if sampled(n) {
                            warn!(failures = n, "gRPC TLS handshake failed: {e}");
                        } else {
                            debug!("gRPC TLS handshake failed: {e}");
                        }
                    }
                    Ok(Ok(io)) => {
                        let _ = tx
                            .send(Ok(LimitedIo {
                                io,
                                info: ConnInfo::default(),
                                _slot: slot,
                            }))
                            .await;
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The TLS side of a `tcp:` listener: the server's certificate, client
/// certificates signed by the CA required, HTTP/2 by ALPN (tonic's clients
/// insist on it).
pub(super) fn tls_acceptor(cert: &Path, key: &Path, ca: &Path) -> Result<TlsAcceptor, ServeError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| ServeError::TlsFile {
            path: p.to_owned(),
            source,
        })
    };
    let bad = |p: &Path, what: &str| ServeError::Tls(format!("{}: {what}", p.display()));
    let certs = |p: &Path| -> Result<Vec<_>, ServeError> {
        let data = read(p)?;
        let c: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| bad(p, &e.to_string()))?;
        if c.is_empty() {
            return Err(bad(p, "no PEM certificate in it"));
        }
        Ok(c)
    };
    let chain = certs(cert)?;
    let key_data = read(key)?;
    let private = rustls_pemfile::private_key(&mut key_data.as_slice())
        .map_err(|e| bad(key, &e.to_string()))?
        .ok_or_else(|| bad(key, "no PEM private key in it"))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| bad(ca, &e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| ServeError::Tls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A service with the per-call limits in front: calls in progress on the
/// connection, and the size of each request message.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    /// The largest request message, and the `[grpc]` key that sets it.
    max_message: (usize, &'static str),
    max_calls: usize,
    counters: Arc<GrpcCounters>,
}

impl<S> Guarded<S> {
    pub(super) fn new(
        inner: S,
        max_message: (usize, &'static str),
        max_calls: usize,
        counters: &Arc<GrpcCounters>,
    ) -> Guarded<S> {
        Guarded {
            inner,
            max_message,
            max_calls,
            counters: Arc::clone(counters),
        }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<BoxBody>> for Guarded<S>
where
    S: Service<http::Request<BoxBody>, Response = http::Response<BoxBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<BoxBody>) -> Self::Future {
        let guard = match req.extensions().get::<ConnInfo>() {
            Some(conn) => match conn.enter(self.max_calls) {
                Some(g) => Some(g),
                None => {
                    self.counters.streams_refused.fetch_add(1, Relaxed);
                    let status = Status::resource_exhausted(format!(
                        "grpc.max_streams_per_connection ({}) calls are in progress on this connection",
                        self.max_calls
                    ));
                    return Box::pin(std::future::ready(Ok(status.into_http())));
                }
            },
            None => None,
        };
        let (max, counters) = (self.max_message, Arc::clone(&self.counters));
        let req = req.map(|inner| {
            tonic::body::boxed(CappedBody {
                inner,
                max,
                header: [0; 5],
                have: 0,
                payload_left: 0,
                failed: false,
                counters,
            })
        });
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|inner| {
                tonic::body::boxed(HeldBody {
                    inner,
                    _call: guard,
                })
            }))
        })
    }
}

/// A request body that fails with RESOURCE_EXHAUSTED as soon as a gRPC
/// message header announces more than the limit (before its payload is read).
struct CappedBody {
    inner: BoxBody,
    max: (usize, &'static str),
    /// The message header being read (compressed flag, u32 length).
    header: [u8; 5],
    have: usize,
    payload_left: usize,
    failed: bool,
    counters: Arc<GrpcCounters>,
}

impl CappedBody {
    /// Walks `data` through the message framing; Err: the length of a message
    /// over the limit (counted).
    fn check(&mut self, mut data: &[u8]) -> Result<(), usize> {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(data.len());
                self.payload_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as usize;
                if len > self.max.0 {
                    self.counters.requests_too_large.fetch_add(1, Relaxed);
                    return Err(len);
                }
                self.payload_left = len;
            }
        }
        Ok(())
    }
}

impl CappedBody {
    fn too_large(&self, len: usize) -> Status {
        Status::resource_exhausted(format!(
            "request message of {len} bytes is over grpc.{} ({} bytes)",
            self.max.1, self.max.0
        ))
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => f,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let data = data.clone();
            if let Err(len) = self.check(&data) {
                self.failed = true;
                return Poll::Ready(Some(Err(self.too_large(len))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds its call's place on the connection until it ends
/// (a stream of events holds it for as long as it runs).
struct HeldBody {
    inner: BoxBody,
    _call: Option<CallGuard>,
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(max: usize) -> CappedBody {
        CappedBody {
            inner: tonic::body::empty_body(),
            max: (max, "max_request_bytes"),
            header: [0; 5],
            have: 0,
            payload_left: 0,
            failed: false,
            counters: Arc::default(),
        }
    }

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&(len as u32).to_be_bytes());
        m.resize(5 + len, 7);
        m
    }

    #[test]
    fn messages_up_to_the_limit_pass_in_any_split() {
        let mut data = message(100);
        data.extend(message(0));
        data.extend(message(100));
        for split in 1..data.len() {
            let mut b = body(100);
            for chunk in data.chunks(split) {
                b.check(chunk).unwrap();
            }
            assert_eq!((b.have, b.payload_left), (0, 0));
        }
    }

    #[test]
    fn a_header_over_the_limit_is_refused_before_its_payload() {
        let mut b = body(100);
        b.check(&message(100)).unwrap();
        let len = b.check(&message(101)[..5]).unwrap_err();
        assert_eq!(len, 101);
        let e = b.too_large(len);
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(
            e.message().contains("grpc.max_request_bytes (100 bytes)"),
            "{e}"
        );
        assert_eq!(b.counters.requests_too_large.load(Relaxed), 1);
    }
}
