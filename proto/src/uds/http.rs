//! Plain HTTP (axum) on a Unix socket published by [`super::bind`], with the same
//! peer-credential allowlist as the gRPC sockets: for small internal APIs a sidecar in
//! the same pod reads. A refused peer sees its connection closed before a byte is read.

use std::io;

use axum::Router;
use tokio::net::UnixListener;

use super::{BindError, PeerPolicy, SocketConfig, SocketGuard};

/// Accepts connections from allowed peers only.
struct Allowed {
    listener: UnixListener,
    policy: PeerPolicy,
}

impl axum::serve::Listener for Allowed {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => match stream.peer_cred() {
                    Ok(cred) if self.policy.allows(cred.uid(), cred.gid()) => {
                        return (stream, addr);
                    }
                    Ok(cred) => tracing::warn!(
                        uid = cred.uid(),
                        gid = cred.gid(),
                        "refused connection: peer is not in the allowlist"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "refused connection: no peer credentials");
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// `router` served on a Unix socket until dropped or stopped.
#[derive(Debug)]
pub struct HttpSocket {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
    _guard: SocketGuard,
}

impl HttpSocket {
    /// Publishes the socket `config` describes and serves `router` on it.
    ///
    /// # Errors
    /// [`BindError`] naming the path and the fix.
    pub fn serve(config: &SocketConfig, router: Router) -> Result<Self, BindError> {
        let (listener, policy, guard) = super::bind(config)?.into_parts();
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| UnixListener::from_std(listener))
            .map_err(|source| BindError::Io {
                action: "listen on",
                path: config.path.clone(),
                source,
            })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(Allowed { listener, policy }, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            stop: Some(stop),
            task: Some(task),
            _guard: guard,
        })
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
