//! A server stream that survives disconnects.
//!
//! [`reconnecting`] reopens the stream with backoff and jitter whenever it fails or
//! ends, and emits [`WatchEvent::Connected`] before the first item of every new stream.
//! Contract streams begin with a snapshot, so a consumer treats `Connected` as "what
//! follows is the full state": it reconciles instead of assuming continuity.

use std::future::Future;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

use crate::retry::Backoff;
use crate::uds::describe_status;

/// What a reconnecting watch yields.
#[derive(Debug)]
pub enum WatchEvent<T> {
    /// A new stream is open; its snapshot follows.
    Connected,
    /// An item from the current stream.
    Item(T),
    /// The stream failed or ended; a reconnect follows unless the status says the
    /// request can never succeed (e.g. UNIMPLEMENTED), in which case this is the last
    /// event.
    Disconnected(Status),
}

/// Opens `open()` and keeps it open: see the module docs.
///
/// The returned stream ends when the status is permanent (e.g. UNIMPLEMENTED); the
/// background task stops as soon as the returned stream is dropped. The backoff
/// starts over after a stream that delivered at least one item.
pub fn reconnecting<T, F, Fut>(backoff: Backoff, mut open: F) -> ReceiverStream<WatchEvent<T>>
where
    T: Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<tonic::Response<Streaming<T>>, Status>> + Send,
{
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut delays = backoff.session();
        loop {
            let status = tokio::select! {
                () = tx.closed() => return,
                status = run_once(&mut open, &tx, &mut delays) => status,
            };
            let Some(status) = status else { return };
            let permanent = ends_watch(status.code());
            // The consumer knows what it watches and logs it; a permanent end is worth
            // a warning on its own.
            if permanent {
                tracing::warn!(reason = %describe_status(&status), "watch stream ended for good");
            } else {
                tracing::debug!(reason = %describe_status(&status), "watch stream interrupted; reopening");
            }
            if tx.send(WatchEvent::Disconnected(status)).await.is_err() || permanent {
                return;
            }
            let delay = delays.next_delay();
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Whether a failed watch should stop instead of reconnecting.
///
/// A watch is an idempotent read, so unlike a unary call it also reconnects after the
/// codes a broken connection surfaces as (UNKNOWN "transport error", INTERNAL h2
/// errors, CANCELLED): it stops only when the request itself can never succeed.
fn ends_watch(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::Unimplemented
            | Code::Unauthenticated
            | Code::OutOfRange
    )
}

/// Opens one stream and forwards it; returns why it stopped, or `None` when the
/// receiver is gone.
async fn run_once<T, F, Fut>(
    open: &mut F,
    tx: &mpsc::Sender<WatchEvent<T>>,
    delays: &mut crate::retry::BackoffSession,
) -> Option<Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<Streaming<T>>, Status>>,
{
    let mut stream = match open().await {
        Ok(response) => response.into_inner(),
        Err(status) => return Some(status),
    };
    tx.send(WatchEvent::Connected).await.ok()?;
    let mut delivered = false;
    loop {
        match stream.next().await {
            Some(Ok(item)) => {
                if !delivered {
                    delivered = true;
                    delays.reset();
                }
                tx.send(WatchEvent::Item(item)).await.ok()?;
            }
            Some(Err(status)) => return Some(status),
            None => return Some(Status::unavailable("stream ended by the server")),
        }
    }
}
