//! The on-disk layout under `--state-dir`, so nothing is lost when the driver restarts.
//!
//! ```text
//! <state-dir>/sandboxes/<id>/record.pb    the sandbox as created (token cleared), protobuf
//!                           state.json   desired state, phase, pid + start time
//!                           token        the sandbox token, mode 0600
//!                           stdout.log   the main process's output
//!                           stderr.log
//!                           work/        working directory when the sandbox has no workspace
//!                           run/         the supervisor's SSH socket (supervisor option)
//! <state-dir>/workspaces/<name>/         working directory shared by a workspace's sandboxes
//! ```
//! `record.pb` is written last, so a directory without it is an interrupted create and
//! is removed on start-up. `state.json` is replaced atomically (write, then rename).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use prost::Message;
use proto::Secret;
use proto::pb::compute::v1 as pb;

use super::state::State;
use crate::{ComputeError as Error, Result};

/// A sandbox as read back from disk.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The sandbox as created, token cleared.
    pub(crate) record: pb::DriverSandbox,
    /// Its token.
    pub(crate) token: Secret,
    /// Its last persisted state.
    pub(crate) state: State,
}

/// Paths under the state directory, held exclusively (an advisory lock on
/// `<state-dir>/.lock`) so two drivers never manage the same sandboxes.
#[derive(Debug)]
pub(crate) struct Layout {
    root: PathBuf,
    _lock: Flock<fs::File>,
}

fn private_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(Error::storage("create directory", path))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32, create_new: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut file = options.open(path).map_err(Error::storage("create", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::storage("write", path))
}

impl Layout {
    /// Creates (if missing) the state directory and its subdirectories, mode 0700, and
    /// locks it.
    ///
    /// # Errors
    /// `Storage` when a directory cannot be created; `StateDirInUse` when another
    /// driver holds it.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        private_dir(root)?;
        // It holds every sandbox's token: nobody else may control it.
        proto::private::check_dir(root)
            .map_err(|e| Error::FailedPrecondition(format!("--state-dir: {e}")))?;
        let lock_path = root.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(Error::storage("open", &lock_path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| Error::StateDirInUse(root.to_path_buf()))?;
        let layout = Self {
            root: root.to_path_buf(),
            _lock: lock,
        };
        private_dir(&layout.root.join("sandboxes"))?;
        private_dir(&layout.root.join("workspaces"))?;
        Ok(layout)
    }

    /// The driver-private directory of a sandbox.
    pub(crate) fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    /// Where a sandbox's supervisor binds its sockets (created 0700 on demand).
    ///
    /// # Errors
    /// `Storage` when it cannot be created.
    pub(crate) fn run_dir(&self, id: &str) -> Result<PathBuf> {
        let dir = self.sandbox_dir(id).join("run");
        private_dir(&dir)?;
        Ok(dir)
    }

    /// A workspace's directory.
    pub(crate) fn workspace_dir(&self, name: &str) -> PathBuf {
        self.root.join("workspaces").join(name)
    }

    /// Where a sandbox's process runs.
    pub(crate) fn work_dir(&self, record: &pb::DriverSandbox) -> PathBuf {
        if record.workspace.is_empty() {
            self.sandbox_dir(&record.id).join("work")
        } else {
            self.workspace_dir(&record.workspace)
        }
    }

    /// The token file of a sandbox.
    pub(crate) fn token_path(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("token")
    }

    /// The captured stdout of a sandbox.
    pub(crate) fn stdout_path(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("stdout.log")
    }

    /// The captured stderr of a sandbox.
    pub(crate) fn stderr_path(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("stderr.log")
    }

    /// Creates a workspace directory (mode 0700) if missing.
    ///
    /// # Errors
    /// `Storage` when it cannot be created.
    pub(crate) fn ensure_workspace(&self, name: &str) -> Result<()> {
        private_dir(&self.workspace_dir(name))
    }

    /// Removes a workspace directory; missing is fine.
    ///
    /// # Errors
    /// `Storage` when it cannot be removed.
    pub(crate) fn remove_workspace(&self, name: &str) -> Result<()> {
        remove_all(&self.workspace_dir(name))
    }

    /// Writes a new sandbox: directory, token (0600), state, then the record.
    ///
    /// # Errors
    /// `Storage`; a partly written directory is removed again.
    pub(crate) fn create_sandbox(
        &self,
        record: &pb::DriverSandbox,
        token: &Secret,
        state: &State,
    ) -> Result<()> {
        let dir = self.sandbox_dir(&record.id);
        let written = (|| {
            private_dir(&dir)?;
            private_dir(&self.work_dir(record))?;
            write_file(
                &self.token_path(&record.id),
                token.expose().as_bytes(),
                0o600,
                true,
            )?;
            self.save_state(&record.id, state)?;
            write_file(&dir.join("record.pb"), &record.encode_to_vec(), 0o600, true)
        })();
        if written.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        written
    }

    /// Replaces a sandbox's `state.json` atomically.
    ///
    /// # Errors
    /// `Storage` when it cannot be written.
    pub(crate) fn save_state(&self, id: &str, state: &State) -> Result<()> {
        let path = self.sandbox_dir(id).join("state.json");
        let staging = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Storage {
            action: "encode state for",
            path: path.clone(),
            source: e.into(),
        })?;
        write_file(&staging, &json, 0o600, false)?;
        fs::rename(&staging, &path).map_err(Error::storage("replace", &path))
    }

    /// Removes a sandbox's directory; missing is fine.
    ///
    /// # Errors
    /// `Storage` when it cannot be removed.
    pub(crate) fn remove_sandbox(&self, id: &str) -> Result<()> {
        remove_all(&self.sandbox_dir(id))
    }

    /// Every complete sandbox on disk. Interrupted creates are removed; unreadable
    /// sandboxes are logged and skipped (their files stay for an operator to inspect).
    ///
    /// # Errors
    /// `Storage` when the sandboxes directory cannot be listed.
    pub(crate) fn load_all(&self) -> Result<Vec<Stored>> {
        let dir = self.root.join("sandboxes");
        let entries = fs::read_dir(&dir).map_err(Error::storage("list", &dir))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.join("record.pb").exists() {
                tracing::warn!(dir = %path.display(), "removing an interrupted create");
                let _ = fs::remove_dir_all(&path);
                continue;
            }
            match load_one(&path) {
                Ok(stored) => found.push(stored),
                Err(error) => {
                    tracing::error!(dir = %path.display(), %error, "skipping unreadable sandbox")
                }
            }
        }
        Ok(found)
    }
}

fn load_one(dir: &Path) -> Result<Stored> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).map_err(Error::storage("read", path))
    };
    let invalid = |name: &str, e: String| Error::Storage {
        action: "decode",
        path: dir.join(name),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    };
    let record = pb::DriverSandbox::decode(read("record.pb")?.as_slice())
        .map_err(|e| invalid("record.pb", e.to_string()))?;
    let state: State = serde_json::from_slice(&read("state.json")?)
        .map_err(|e| invalid("state.json", e.to_string()))?;
    let token = String::from_utf8(read("token")?).map_err(|e| invalid("token", e.to_string()))?;
    Ok(Stored {
        record,
        token: Secret::new(token),
        state,
    })
}

fn remove_all(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::storage("remove", path)(e))
        }
        _ => Ok(()),
    }
}
