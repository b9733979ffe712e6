//! Filesystem isolation for one sandbox: a private mount namespace (inside a user
//! namespace when the driver is not root) in which the driver's state directory is an
//! empty tmpfs holding only what this sandbox may see, bound back by file descriptor;
//! the configured host paths (the driver's socket, a gateway's runtime directory) are
//! covered too (a directory by an empty tmpfs, a file by `/dev/null`), and `/tmp` can
//! be a fresh tmpfs of the sandbox's own.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid};

type Result<T> = std::result::Result<T, String>;

/// What a sandbox must not see.
#[derive(Debug, Default)]
pub(super) struct Confinement {
    /// The state directory: covered, then `keep` bound back.
    pub(super) root: PathBuf,
    /// Directories or files under `root` the sandbox keeps.
    pub(super) keep: Vec<PathBuf>,
    /// Host paths covered whole.
    pub(super) hide: Vec<PathBuf>,
    /// A fresh `/tmp`.
    pub(super) private_tmp: bool,
}

/// Applies `confinement` to this process (before it execs the sandbox's program).
pub(super) fn confine(confinement: &Confinement) -> Result<()> {
    let Confinement {
        root,
        keep,
        hide,
        private_tmp,
    } = confinement;
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    enter_namespaces()?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make mounts private: {e}"))?;
    // Open what stays visible before covering it: the descriptors still reach the
    // originals once `root` is covered. (Opened inside the new namespace: a bind
    // mount's source must belong to the caller's mount namespace.)
    let held: Vec<(File, &PathBuf)> = keep
        .iter()
        .map(|path| {
            File::open(path)
                .map(|f| (f, path))
                .map_err(|e| format!("open {}: {e}", path.display()))
        })
        .collect::<Result<_>>()?;
    for path in hide {
        cover(path)?;
    }
    if *private_tmp {
        tmpfs(Path::new("/tmp"), "mode=1777")?;
    }
    // A state directory under /tmp is gone with the old /tmp: recreate it to cover it.
    fs::create_dir_all(root).map_err(|e| format!("recreate {}: {e}", root.display()))?;
    tmpfs(root, "mode=0755")?;
    for (file, path) in &held {
        let is_dir = file.metadata().map_err(|e| e.to_string())?.is_dir();
        if is_dir {
            fs::create_dir_all(path).map_err(|e| format!("recreate {}: {e}", path.display()))?;
        } else {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("recreate {}: {e}", parent.display()))?;
            }
            File::create(path).map_err(|e| format!("recreate {}: {e}", path.display()))?;
        }
        let source = format!("/proc/self/fd/{}", file.as_raw_fd());
        mount(
            Some(source.as_str()),
            path.as_path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("expose {}: {e}", path.display()))?;
    }
    std::env::set_current_dir(&cwd).map_err(|e| format!("enter {}: {e}", cwd.display()))
}

fn tmpfs(path: &Path, options: &str) -> Result<()> {
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(|e| format!("cover {}: {e}", path.display()))
}

/// Covers a host path: a directory with an empty tmpfs (kept paths under it can still
/// be bound back), anything else (a file, a socket) with `/dev/null`. A path that does
/// not exist is already unseen.
fn cover(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("inspect {}: {e}", path.display())),
    };
    if meta.is_dir() {
        return mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        )
        .map_err(|e| format!("hide {}: {e}", path.display()));
    }
    mount(
        Some("/dev/null"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("hide {}: {e}", path.display()))
}

fn enter_namespaces() -> Result<()> {
    let (uid, gid) = (Uid::effective(), Gid::effective());
    if uid.is_root() {
        return unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("new mount namespace: {e}"));
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("new user and mount namespaces: {e}"))?;
    // Map our ids to themselves so files keep their owners and the program runs as us.
    fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))
        .map_err(|e| format!("uid_map: {e}"))?;
    fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")).map_err(|e| format!("gid_map: {e}"))
}

/// Whether this host lets the launcher isolate sandboxes: runs the launcher once,
/// confined to a scratch directory, and checks that it succeeds.
pub fn probe(launcher: &Path, scratch: &Path) -> bool {
    let keep = scratch.join("keep");
    if fs::create_dir_all(&keep).is_err() {
        return false;
    }
    let mut args = vec![super::SUBCOMMAND.into()];
    args.extend(super::isolation_args(&super::Isolation {
        root: scratch.to_owned(),
        keep: vec![keep.clone()],
        hide: Vec::new(),
        private_tmp: true,
    }));
    args.extend(["--".into(), "true".into()]);
    let ok = std::process::Command::new(launcher)
        .args(args)
        .current_dir(&keep)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let _ = fs::remove_dir_all(scratch);
    ok
}
