//! An accepted connection the server can cut when its shutdown grace period is over.
//!
//! tonic runs each connection on its own task, so dropping the server future does not
//! close them: a watch stream would outlive the server. Every accepted stream is
//! wrapped in [`Conn`], which fails its reads and writes once the server's
//! [`CancellationToken`] fires, so the connection task ends and the peer sees EOF.
//! What the client sends reaches h2 through the authority [`Rewriter`], so clients
//! that name the socket path as `:authority` are served too.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, UdsConnectInfo};

use super::authority::Rewriter;

/// How much is read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// A server-side connection that ends when its token is cancelled.
pub(crate) struct Conn {
    inner: UnixStream,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    rewriter: Rewriter,
    /// Rewritten bytes not yet read by h2.
    ready: bytes::BytesMut,
}

impl Conn {
    pub(crate) fn new(inner: UnixStream, token: &CancellationToken) -> Self {
        Self {
            inner,
            cut: Box::pin(token.clone().cancelled_owned()),
            rewriter: Rewriter::default(),
            ready: bytes::BytesMut::new(),
        }
    }

    fn poll_cut(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.cut.as_mut().poll(cx).is_ready().then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "server shutdown grace period over",
            )
        })
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.poll_cut(cx) {
            return Poll::Ready(Err(error));
        }
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.rewriter.passes_through() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut raw = [0u8; READ_CHUNK];
            let mut raw_buf = ReadBuf::new(&mut raw);
            match Pin::new(&mut this.inner).poll_read(cx, &mut raw_buf) {
                Poll::Ready(Ok(())) if raw_buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => this.rewriter.feed(raw_buf.filled(), &mut this.ready)?,
                other => return other,
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(error) = this.poll_cut(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Connected for Conn {
    type ConnectInfo = UdsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
