//! A gRPC client transport to one Unix socket with no relay task between the caller and
//! the connection.
//!
//! tonic's `Channel` hands every request to a buffer task, which passes it on to the
//! HTTP/2 connection's task: the request crosses two tasks before a byte is written.
//! [`DirectChannel`] sends from the caller's own task straight to the connection
//! (hyper's HTTP/2 sender, the one `Channel` wraps), one hand-over fewer per call.
//! It dials on first use and again once the connection has closed (one dial at a
//! time; callers arriving meanwhile wait for it). Failures read as they do through
//! `Channel`: a socket that cannot be dialled is UNAVAILABLE, and errors on an open
//! connection are hyper's own, which tonic maps the same way for both.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::UnixStream;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::StdError;

/// The `:authority` sent on every request; a socket has no host, servers accept any.
const AUTHORITY: &str = "localhost";

/// A cheap-to-clone client transport to the socket at one path; typed tonic clients
/// take it in place of a `Channel`.
#[derive(Clone, Debug)]
pub struct DirectChannel {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    /// The open connection's sender, if one was made and has not closed.
    current: RwLock<Option<SendRequest<Body>>>,
    /// Held while dialling, so concurrent callers make one connection.
    dialling: tokio::sync::Mutex<()>,
}

impl DirectChannel {
    /// A transport to the socket at `path`; nothing is dialled until the first call.
    pub fn lazy(path: impl Into<PathBuf>) -> Self {
        Self {
            shared: Arc::new(Shared {
                path: path.into(),
                current: RwLock::new(None),
                dialling: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The open connection's sender, if it is still open.
    fn open(&self) -> Option<SendRequest<Body>> {
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// A sender on an open connection, dialling one if there is none.
    async fn sender(&self) -> Result<SendRequest<Body>, Status> {
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        let _dialling = self.shared.dialling.lock().await;
        // Another caller may have dialled while this one waited.
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        let sender = self.dial().await?;
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    async fn dial(&self) -> Result<SendRequest<Body>, Status> {
        let path = &self.shared.path;
        let unavailable = |what: &str, error: &dyn std::fmt::Display| {
            Status::unavailable(format!("{what} {}: {error}", path.display()))
        };
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| unavailable("cannot connect to", &e))?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unavailable("HTTP/2 handshake failed on", &e))?;
        let socket = path.display().to_string();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %socket, "connection ended");
            }
        });
        Ok(sender)
    }
}

impl tower::Service<http::Request<Body>> for DirectChannel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = StdError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the connection's, found per call: a closed one is redialled.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let mut sender = this.sender().await?;
            let mut uri = std::mem::take(request.uri_mut()).into_parts();
            uri.scheme = Some(http::uri::Scheme::HTTP);
            uri.authority = Some(http::uri::Authority::from_static(AUTHORITY));
            *request.uri_mut() = http::Uri::from_parts(uri)?;
            Ok(sender.send_request(request).await?)
        })
    }
}
