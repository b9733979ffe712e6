//! Files and directories that hold secrets (signing keys, tokens, stores): the checks
//! each binary makes before it trusts or writes one, shared so the rules are one.
//!
//! A secret's directory is trusted like a socket's: we or root own it and nobody else
//! can swap its entries (group/other-writable only with the sticky bit). A secret file
//! we read must not be readable by others (group is allowed: Kubernetes mounts Secrets
//! group-readable with `fsGroup`); one we write is 0600.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use nix::unistd::Uid;

/// Checks that `dir` is a directory nobody but us (or root) controls.
///
/// # Errors
/// A message naming the directory and the fix.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let us = Uid::effective().as_raw();
    if !crate::uds::parent_is_trusted(meta.uid(), meta.mode(), us) {
        return Err(format!(
            "{} is owned by uid {} (we are uid {us}) or writable by others without the sticky bit: keep secrets in a directory this user owns (mode 0700)",
            dir.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// Creates `dir` (and missing parents) 0700 if it is missing, then [`check_dir`]s it:
/// where a secret file is about to be written.
///
/// # Errors
/// A message naming the directory and the fix.
pub fn prepare_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    check_dir(dir)
}

/// Checks that the secret file `path` exists, is a regular file and is not readable
/// or writable by others.
///
/// # Errors
/// A message naming the file and the fix.
pub fn check_secret_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(format!(
            "{} holds a secret but has mode {mode:04o} (others may read or change it): `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// Replaces `path` with `contents` at once (a 0600 temporary file beside it, synced,
/// then renamed over it): readers see the old file or the new one, never a part, and
/// nobody else can read it at any point.
///
/// # Errors
/// The OS error of writing or renaming.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("not a file path"))?;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Makes an existing file of ours that holds a secret 0600 if group or others have any
/// access; returns the mode it had when it changed it.
///
/// # Errors
/// The OS error of inspecting or changing the file.
pub fn tighten(path: &Path) -> std::io::Result<Option<u32>> {
    let meta = std::fs::metadata(path)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 == 0 || meta.uid() != Uid::effective().as_raw() {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn world_readable_secret_is_refused_and_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = check_secret_file(&file).unwrap_err();
        assert!(error.contains("chmod 600"), "{error}");
        assert_eq!(tighten(&file).unwrap(), Some(0o644));
        check_secret_file(&file).unwrap();
        assert_eq!(tighten(&file).unwrap(), None);
    }

    #[test]
    fn an_atomic_write_replaces_the_file_0600_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.json");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&file, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn group_readable_secret_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        check_secret_file(&file).unwrap();
    }

    #[test]
    fn world_writable_dir_without_sticky_bit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_dir(dir.path()).is_err());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        check_dir(dir.path()).unwrap();
        assert!(check_dir(&dir.path().join("missing")).is_err());
    }
}
