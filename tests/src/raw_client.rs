//! A gRPC client over a Unix socket with no client-side timer of its own: tonic's
//! `Channel` enforces a request's `grpc-timeout` itself (it cancels the call at the
//! deadline), which would hide whether the driver honours the deadline. This client
//! only sends the header, so a case using it sees the driver's own behaviour.

use std::path::{Path, PathBuf};

use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;

/// The HTTP/2 client the generated gRPC clients run on.
pub type RawChannel = Client<UnixConnector, Body>;

/// Connects every request to one socket, whatever the URI says.
#[derive(Clone, Debug)]
pub struct UnixConnector(PathBuf);

impl tower::Service<http::Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move { Ok(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) })
    }
}

/// A raw channel to `socket` (HTTP/2 only, as gRPC needs).
pub fn channel(socket: &Path) -> RawChannel {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(UnixConnector(socket.to_owned()))
}

/// The origin the generated clients put in requests (any authority does for a socket).
pub fn origin() -> http::Uri {
    http::Uri::from_static("http://localhost")
}
