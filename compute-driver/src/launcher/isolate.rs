//! Filesystem isolation for one sandbox: a private mount namespace (inside a user
//! namespace when the driver is not root) in which the driver's state directory is an
//! empty tmpfs holding only what this sandbox may see, bound back by file descriptor.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid};

type Result<T> = std::result::Result<T, String>;

/// Hides `root` except for `keep` (directories or files under it).
pub(super) fn confine(root: &Path, keep: &[PathBuf]) -> Result<()> {
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
    mount(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| format!("cover {}: {e}", root.display()))?;
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
    args.extend(super::isolation_args(scratch, std::slice::from_ref(&keep)));
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
