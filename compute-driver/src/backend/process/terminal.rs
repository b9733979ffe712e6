//! Pseudo-terminals for sandboxes whose spec asks for one (`tty: true`, and the default
//! shell): the driver opens the pty, the launcher makes its subsidiary side the
//! program's controlling terminal (`--tty`), and the driver copies what the program
//! writes there into the sandbox's stdout log (one thread per terminal).
//!
//! The driver holds the controlling side: when the driver stops, the terminal hangs up
//! and the program gets SIGHUP, as a shell does when its terminal closes. (Sandboxes
//! without a terminal outlive the driver.)

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt};

/// A pty whose subsidiary side the launcher opens by path.
#[derive(Debug)]
pub(crate) struct Terminal {
    controller: PtyMaster,
    /// The subsidiary side, e.g. `/dev/pts/3`.
    pub(crate) path: PathBuf,
}

/// Opens a pty (close-on-exec, so no other sandbox inherits it).
///
/// # Errors
/// When the host has no ptys left or no `/dev/pts`.
pub(crate) fn open() -> std::io::Result<Terminal> {
    let controller = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&controller)?;
    unlockpt(&controller)?;
    let path = PathBuf::from(ptsname_r(&controller)?);
    Ok(Terminal { controller, path })
}

impl Terminal {
    /// Copies what the program writes to its terminal into `log` (appending) until the
    /// last process holding the terminal closes it. Returns at once; the copy runs on
    /// its own thread (a blocking read: tokio registers descriptors only unsafely),
    /// which owns the controlling side.
    pub(crate) fn relay_to(self, log: &Path) {
        let log = log.to_owned();
        let controller = std::fs::File::from(OwnedFd::from(self.controller));
        let spawned = std::thread::Builder::new()
            .name("terminal-relay".into())
            .spawn(move || {
                if let Err(error) = relay(controller, &log) {
                    tracing::debug!(%error, log = %log.display(), "terminal relay ended");
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no thread for a sandbox's terminal: its output is not captured");
        }
    }
}

fn relay(mut controller: std::fs::File, log: &Path) -> std::io::Result<()> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)?;
    let mut buffer = [0u8; 8192];
    loop {
        match controller.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => file.write_all(&buffer[..read])?,
            // EIO: every process holding the subsidiary side has closed it.
            Err(error) if error.raw_os_error() == Some(Errno::EIO as i32) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
