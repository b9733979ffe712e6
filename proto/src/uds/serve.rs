//! Serving gRPC routes on a bound socket: peer allowlist, health, graceful shutdown.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;

use super::peer::allowed_connections;
use super::{BoundSocket, Health};

/// How a server shuts down.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// How long open unary calls may run after shutdown starts before they are cut.
    /// Default: 10 s.
    pub shutdown_grace: Duration,
    /// Cancelled the moment shutdown starts: services end their open streams (with
    /// UNAVAILABLE, so callers reconnect to the next instance) instead of holding the
    /// server for the whole grace.
    pub closing: CancellationToken,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(10),
            closing: CancellationToken::new(),
        }
    }
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener could not be handed to the runtime.
    #[error("socket {path:?} could not be used for serving: {source}")]
    Listener {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("serving on {path:?} failed: {source}")]
    Transport {
        /// The socket path.
        path: PathBuf,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Serves `routes` on `socket` until `shutdown` completes.
///
/// Only peers allowed by the socket's [`PeerPolicy`](super::PeerPolicy) get a
/// connection. `health` turns SERVING once the server runs. On shutdown, health turns
/// NOT_SERVING (streams watching it see that), new connections stop, open ones get
/// [`ServeOptions::shutdown_grace`] to finish, and the socket file is removed.
///
/// # Errors
/// [`ServeError`] when the listener or the transport fails.
pub async fn serve<F>(
    socket: BoundSocket,
    routes: Routes,
    health: Health,
    options: ServeOptions,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()>,
{
    let (listener, policy, guard) = socket.into_parts();
    let path = guard.path().to_path_buf();
    let cut = CancellationToken::new();
    let incoming = allowed_connections(listener, policy, cut.clone()).map_err(|source| {
        ServeError::Listener {
            path: path.clone(),
            source,
        }
    })?;
    let transport_error = |source| ServeError::Transport {
        path: path.clone(),
        source,
    };

    let (drain_tx, drain_rx) = oneshot::channel::<()>();
    let server = Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = drain_rx.await;
        });
    tokio::pin!(server);
    health.set_serving().await;
    tracing::info!(socket = %path.display(), "serving");

    tokio::select! {
        result = &mut server => return result.map_err(transport_error),
        () = shutdown => {}
    }

    options.closing.cancel();
    health.set_not_serving().await;
    tracing::info!(grace = ?options.shutdown_grace, "shutting down: health NOT_SERVING, streams ended, draining calls");
    let _ = drain_tx.send(());
    match tokio::time::timeout(options.shutdown_grace, &mut server).await {
        Ok(result) => result.map_err(transport_error)?,
        Err(_) => {
            tracing::warn!("grace period over; closing the remaining connections");
            cut.cancel();
        }
    }
    drop(guard);
    tracing::info!(socket = %path.display(), "stopped; socket removed");
    Ok(())
}

/// Completes on SIGTERM or SIGINT (the signals Kubernetes and a terminal send).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind, name: &'static str| async move {
        match signal(kind) {
            Ok(mut stream) => {
                stream.recv().await;
                tracing::info!(signal = name, "received shutdown signal");
            }
            Err(error) => {
                tracing::warn!(signal = name, %error, "cannot listen for signal");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = wait(SignalKind::terminate(), "SIGTERM") => {}
        () = wait(SignalKind::interrupt(), "SIGINT") => {}
    }
}
