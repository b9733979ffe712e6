//! Peer-credential allowlist, enforced when a connection is accepted.
//!
//! The check runs on `SO_PEERCRED` before a single HTTP/2 byte is read, so a refused
//! peer never reaches a service: it sees its connection closed. (A tower layer would
//! also work, but would parse the peer's requests first.)

use std::io;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::time::Duration;

use futures_util::Stream;
use nix::unistd::Uid;
use tokio::net::{UnixListener, unix::UCred};
use tokio_util::sync::CancellationToken;

use super::conn::Conn;

/// Which peers may talk to a socket: a UID or a GID in these lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPolicy {
    uids: Vec<u32>,
    gids: Vec<u32>,
}

impl PeerPolicy {
    /// A policy from explicit lists. With no UIDs listed, this process's own effective
    /// UID is allowed (so the default is "only us", never "everyone").
    pub fn new(mut uids: Vec<u32>, gids: Vec<u32>) -> Self {
        if uids.is_empty() {
            uids.push(Uid::effective().as_raw());
        }
        Self { uids, gids }
    }

    /// Whether a peer with these credentials may connect.
    pub fn allows(&self, uid: u32, gid: u32) -> bool {
        self.uids.contains(&uid) || self.gids.contains(&gid)
    }

    fn allows_cred(&self, cred: &UCred) -> bool {
        self.allows(cred.uid(), cred.gid())
    }
}

/// Accepted connections from allowed peers; refused peers are logged and dropped.
///
/// Accept errors (such as running out of file descriptors) are logged and retried
/// after a short pause instead of ending the stream, which would stop the server.
/// Every connection is wrapped in [`Conn`] so `cut` can end it at shutdown.
pub(crate) fn allowed_connections(
    listener: StdUnixListener,
    policy: PeerPolicy,
    cut: CancellationToken,
) -> io::Result<impl Stream<Item = io::Result<Conn>>> {
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    Ok(futures_util::stream::unfold(
        (listener, policy, cut),
        |(listener, policy, cut)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => match stream.peer_cred() {
                        Ok(cred) if policy.allows_cred(&cred) => {
                            let conn = Conn::new(stream, &cut);
                            return Some((Ok(conn), (listener, policy, cut)));
                        }
                        Ok(cred) => tracing::warn!(
                            uid = cred.uid(),
                            gid = cred.gid(),
                            pid = cred.pid(),
                            "refused connection: peer is not in the allowlist"
                        ),
                        Err(error) => {
                            tracing::warn!(%error, "refused connection: no peer credentials");
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%error, "accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::PeerPolicy;

    #[test]
    fn no_listed_uids_means_only_our_own_uid() {
        let us = nix::unistd::Uid::effective().as_raw();
        let policy = PeerPolicy::new(vec![], vec![]);
        assert!(policy.allows(us, 12345));
        assert!(!policy.allows(us.wrapping_add(1), 12345));
    }

    #[test]
    fn a_listed_gid_admits_any_uid_in_that_group() {
        let policy = PeerPolicy::new(vec![], vec![700]);
        assert!(policy.allows(4242, 700));
        assert!(!policy.allows(4242, 701));
    }

    #[test]
    fn a_listed_uid_is_allowed_whatever_its_group() {
        let policy = PeerPolicy::new(vec![65534], vec![]);
        assert!(policy.allows(65534, 1));
        assert!(!policy.allows(0, 0));
    }
}
