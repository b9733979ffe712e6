//! Safe binding of a Unix domain socket.
//!
//! [`bind`] creates the parent directory if missing, refuses a symlinked or
//! foreign-owned parent, refuses to steal a socket someone still answers on, replaces a
//! stale one, and publishes the socket with its final mode and group already set: it
//! binds under a temporary name in the same directory, fixes permissions, then renames
//! into place, so there is no window in which the socket has the process umask's mode.
//! The returned [`BoundSocket`] unlinks the path when dropped, unless another instance
//! has replaced it meanwhile.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::unistd::{Gid, Group, Uid};

use super::PeerPolicy;

/// Longest socket path the kernel accepts (`sun_path` is 108 bytes including the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Where and how to publish a socket, and who may talk to it.
///
/// Defaults: mode `0600`; with `group` set, mode `0660` and that group's members are
/// allowed peers too. With both allowlists empty only this process's own UID may connect.
#[derive(Clone, Debug, Default)]
pub struct SocketConfig {
    /// Absolute or relative path of the socket file.
    pub path: PathBuf,
    /// Group (name or numeric id) that shares the socket; sets mode `0660`.
    pub group: Option<String>,
    /// Peer UIDs allowed to connect.
    pub allowed_uids: Vec<u32>,
    /// Peer GIDs allowed to connect.
    pub allowed_gids: Vec<u32>,
}

/// Why a socket could not be bound. Every message names the path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The path does not fit in `sun_path`.
    #[error(
        "socket path {path:?} is {len} bytes; the limit is {MAX_SOCKET_PATH}: choose a shorter directory (e.g. /run/<name>/)"
    )]
    PathTooLong {
        /// The rejected path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// The path has no file name or parent.
    #[error("socket path {path:?} must name a file inside a directory")]
    NoParent {
        /// The rejected path.
        path: PathBuf,
    },
    /// The parent directory is a symlink, which could redirect the socket elsewhere.
    #[error("socket directory {parent:?} is a symlink: point the socket at the real directory")]
    SymlinkedParent {
        /// The parent directory.
        parent: PathBuf,
    },
    /// The parent exists but is not a directory.
    #[error("socket directory {parent:?} is not a directory")]
    ParentNotADirectory {
        /// The parent path.
        parent: PathBuf,
    },
    /// Someone else controls the parent directory and could swap the socket.
    #[error(
        "socket directory {parent:?} is owned by uid {owner} (we are uid {us}) or writable by others without the sticky bit: use a directory this user owns"
    )]
    ForeignParent {
        /// The parent directory.
        parent: PathBuf,
        /// Its owner's UID.
        owner: u32,
        /// Our effective UID.
        us: u32,
    },
    /// A live server already answers on the path.
    #[error(
        "socket {path:?} is in use by another running instance: stop it or choose another --socket path"
    )]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket sits at the path; we never delete it.
    #[error("{path:?} exists and is not a socket: remove it or choose another --socket path")]
    NotASocket {
        /// The occupied path.
        path: PathBuf,
    },
    /// The configured group does not exist.
    #[error("socket group {group:?} does not exist: create it or set a numeric gid")]
    UnknownGroup {
        /// The configured group.
        group: String,
    },
    /// An I/O step failed.
    #[error("{action} {path:?}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl BindError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A listening socket published at its configured path.
#[derive(Debug)]
pub struct BoundSocket {
    listener: UnixListener,
    guard: SocketGuard,
    mode: u32,
    policy: PeerPolicy,
}

impl BoundSocket {
    /// The path the socket is published at.
    pub fn path(&self) -> &Path {
        self.guard.path()
    }

    /// The permission bits the socket was published with.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The peers allowed to connect: the configured lists plus the socket's group.
    pub fn peer_policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// Splits into the std listener, the peer policy and the guard that unlinks the
    /// path on drop.
    pub fn into_parts(self) -> (UnixListener, PeerPolicy, SocketGuard) {
        (self.listener, self.policy, self.guard)
    }
}

/// Unlinks the socket path on drop, but only if the path still names our socket.
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketGuard {
    /// The guarded path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if ours && let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "could not remove socket");
        }
    }
}

/// Binds and publishes a socket as described in the module docs.
///
/// # Errors
/// Every [`BindError`] variant; none leaves a file behind.
pub fn bind(config: &SocketConfig) -> Result<BoundSocket, BindError> {
    let path = config.path.as_path();
    let parent = parent_of_fitting(path)?;
    prepare_parent(parent)?;
    check_existing(path)?;

    let gid = config.group.as_deref().map(resolve_group).transpose()?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    let mut allowed_gids = config.allowed_gids.clone();
    allowed_gids.extend(gid.map(Gid::as_raw));
    let policy = PeerPolicy::new(config.allowed_uids.clone(), allowed_gids);

    let staging = staging_path(parent);
    let listener = UnixListener::bind(&staging).map_err(BindError::io("bind", &staging))?;
    let published = publish(&staging, path, mode, gid);
    if published.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    let meta = published?;
    Ok(BoundSocket {
        listener,
        guard: SocketGuard {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
        mode,
        policy,
    })
}

/// Checks what [`bind`] would, without creating or changing anything: the path's
/// length, its parent (when it exists already: a directory we or root own that others
/// cannot write to) and the group. For `--check-config`.
///
/// # Errors
/// The [`BindError`] that [`bind`] would return.
pub fn check(config: &SocketConfig) -> Result<(), BindError> {
    let parent = parent_of_fitting(&config.path)?;
    if std::fs::symlink_metadata(parent).is_ok() {
        check_parent(parent)?;
    }
    config.group.as_deref().map(resolve_group).transpose()?;
    Ok(())
}

/// The directory of `path`, once `path` is known to fit in `sun_path`.
fn parent_of_fitting(path: &Path) -> Result<&Path, BindError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(BindError::PathTooLong {
            path: path.to_path_buf(),
            len,
        });
    }
    split(path).map(|(parent, _)| parent)
}

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), BindError> {
    let no_parent = || BindError::NoParent {
        path: path.to_path_buf(),
    };
    let name = path.file_name().ok_or_else(no_parent)?;
    let parent = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return Err(no_parent()),
    };
    Ok((parent, name))
}

fn prepare_parent(parent: &Path) -> Result<(), BindError> {
    if std::fs::symlink_metadata(parent).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(parent)
            .map_err(BindError::io("create socket directory", parent))?;
    }
    check_parent(parent)
}

fn check_parent(parent: &Path) -> Result<(), BindError> {
    let meta = std::fs::symlink_metadata(parent)
        .map_err(BindError::io("inspect socket directory", parent))?;
    if meta.file_type().is_symlink() {
        return Err(BindError::SymlinkedParent {
            parent: parent.to_path_buf(),
        });
    }
    if !meta.is_dir() {
        return Err(BindError::ParentNotADirectory {
            parent: parent.to_path_buf(),
        });
    }
    let us = Uid::effective().as_raw();
    if !parent_is_trusted(meta.uid(), meta.mode(), us) {
        return Err(BindError::ForeignParent {
            parent: parent.to_path_buf(),
            owner: meta.uid(),
            us,
        });
    }
    Ok(())
}

/// A parent is trusted when we or root own it and nobody else can swap entries in it:
/// writable by group/others is fine only with the sticky bit (as on `/tmp`).
pub(crate) fn parent_is_trusted(owner: u32, mode: u32, us: u32) -> bool {
    let owned = owner == us || owner == 0;
    let shared_writable = mode & 0o022 != 0;
    let sticky = mode & 0o1000 != 0;
    owned && (!shared_writable || sticky)
}

fn check_existing(path: &Path) -> Result<(), BindError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BindError::io("inspect", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing stale socket nobody answers on");
            Ok(())
        }
        Err(e) => Err(BindError::io("probe existing socket", path)(e)),
    }
}

fn resolve_group(group: &str) -> Result<Gid, BindError> {
    if let Ok(raw) = group.parse::<u32>() {
        return Ok(Gid::from_raw(raw));
    }
    match Group::from_name(group) {
        Ok(Some(found)) => Ok(found.gid),
        _ => Err(BindError::UnknownGroup {
            group: group.to_owned(),
        }),
    }
}

fn staging_path(parent: &Path) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    parent.join(format!(".s{}-{n}", std::process::id()))
}

fn publish(
    staging: &Path,
    path: &Path,
    mode: u32,
    gid: Option<Gid>,
) -> Result<std::fs::Metadata, BindError> {
    if let Some(gid) = gid {
        std::os::unix::fs::chown(staging, None, Some(gid.as_raw()))
            .map_err(BindError::io("set group of", staging))?;
    }
    std::fs::set_permissions(staging, std::fs::Permissions::from_mode(mode))
        .map_err(BindError::io("set mode of", staging))?;
    std::fs::rename(staging, path).map_err(BindError::io("publish socket at", path))?;
    std::fs::symlink_metadata(path).map_err(BindError::io("inspect", path))
}

#[cfg(test)]
mod tests {
    use super::parent_is_trusted;

    #[test]
    fn parent_owned_by_us_and_private_is_trusted() {
        assert!(parent_is_trusted(1000, 0o40750, 1000));
    }

    #[test]
    fn sticky_world_writable_root_dir_is_trusted() {
        assert!(parent_is_trusted(0, 0o41777, 1000));
    }

    #[test]
    fn world_writable_without_sticky_bit_is_refused() {
        assert!(!parent_is_trusted(1000, 0o40777, 1000));
    }

    #[test]
    fn dir_owned_by_another_user_is_refused() {
        assert!(!parent_is_trusted(1001, 0o40700, 1000));
    }
}
