//! The credential store behind upstream OpenShell's `CredentialDriver` contract: values
//! the gateway writes (a provider's API key, say), kept under `--store-dir` and
//! addressed by opaque handles the driver makes up.
//!
//! ```text
//! <store-dir>/values/<handle>.json   one value and its owner, mode 0600, replaced
//!                                    atomically (written beside, synced, renamed)
//! ```
//! Its calls block (files, fsync): run them off the async threads.
//! The directory is 0700 and checked like every directory holding secrets. Writes are
//! serialised (a store racing a delete of the same handle ends in one order or the
//! other, never half of each), and each is whole or absent on disk: a caller that gives
//! up does not leave a torn file, and leftovers of a crash are removed on open.
//!
//! A handle alone is not enough: what a request says of its owner (workspace, provider
//! id, provider, key), when it says it, must match what was stored, or the handle is
//! unknown (`NotFound`) — one workspace's handle never reads another's value.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use proto::Secret;
use serde::{Deserialize, Serialize};

/// The prefix of every handle of a stored value.
pub const HANDLE_PREFIX: &str = "store-";

/// Who a stored value belongs to (never secret).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The provider's name.
    pub provider_name: String,
    /// The gateway's key of the value (e.g. the environment variable it becomes).
    pub credential_key: String,
    /// The provider's workspace.
    pub workspace: String,
    /// The provider's id.
    pub provider_id: String,
}

impl Owner {
    /// Whether a request saying `claimed` may touch this owner's value: every field the
    /// request gives must match.
    fn admits(&self, claimed: &Owner) -> bool {
        let matches = |ours: &str, theirs: &str| theirs.is_empty() || ours == theirs;
        matches(&self.provider_name, &claimed.provider_name)
            && matches(&self.credential_key, &claimed.credential_key)
            && matches(&self.workspace, &claimed.workspace)
            && matches(&self.provider_id, &claimed.provider_id)
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No value with this handle (for this owner).
    #[error("no stored credential has handle {0:?} (for this provider and workspace)")]
    NotFound(String),
    /// The store cannot be read or written.
    #[error("credential store: cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store directory cannot be used.
    #[error("--store-dir: {0}")]
    Directory(String),
}

/// One stored value, as on disk.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    owner: Owner,
    object_id: String,
    value: String,
    updated_ms: i64,
}

/// A stored value, as read back.
#[derive(Debug)]
pub struct Stored {
    /// Its owner.
    pub owner: Owner,
    /// The value.
    pub value: Secret,
}

/// The store directory, opened.
#[derive(Debug)]
pub struct Store {
    values: PathBuf,
    /// Held by writers (from blocking threads: the store's calls are blocking).
    writes: tokio::sync::Mutex<()>,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// Whether `handle` could be one of ours (hex after the prefix: no path tricks).
fn file_name(handle: &str) -> Option<String> {
    let id = handle.strip_prefix(HANDLE_PREFIX)?;
    (id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| format!("{handle}.json"))
}

fn new_handle() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        action: "draw a random handle",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{HANDLE_PREFIX}{hex}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// Opens (creating 0700 if missing) the store under `root`, removing the leftovers
    /// of interrupted writes.
    ///
    /// # Errors
    /// `Directory` when `root` is not private to this user; `Io` when it cannot be
    /// created or listed.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        proto::private::prepare_dir(root).map_err(StoreError::Directory)?;
        let values = root.join("values");
        proto::private::prepare_dir(&values).map_err(StoreError::Directory)?;
        for entry in fs::read_dir(&values).map_err(io("list", &values))? {
            let path = entry.map_err(io("list", &values))?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path).map_err(io("remove", &path))?;
            }
        }
        Ok(Self {
            values,
            writes: tokio::sync::Mutex::new(()),
        })
    }

    fn path(&self, handle: &str) -> Option<PathBuf> {
        file_name(handle).map(|name| self.values.join(name))
    }

    fn read(&self, handle: &str) -> Result<Option<Record>, StoreError> {
        let Some(path) = self.path(handle) else {
            return Ok(None);
        };
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Io {
                    action: "parse",
                    path,
                    source: std::io::Error::other(e.to_string()),
                }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io("read", &path)(error)),
        }
    }

    /// Stores `value` for `owner`: replaces the value of `existing` when that handle is
    /// this owner's, else (none given, or it is gone) under a new handle. Returns the
    /// handle.
    ///
    /// # Errors
    /// `NotFound` when `existing` belongs to another owner; `Io`.
    pub fn put(
        &self,
        owner: &Owner,
        object_id: &str,
        value: &Secret,
        existing: Option<&str>,
    ) -> Result<String, StoreError> {
        let _serialised = self.writes.blocking_lock();
        let handle = match existing.filter(|h| !h.is_empty()) {
            Some(handle) => match self.read(handle)? {
                Some(record) if record.owner.admits(owner) => handle.to_owned(),
                Some(_) => return Err(StoreError::NotFound(handle.to_owned())),
                None => new_handle()?,
            },
            None => new_handle()?,
        };
        let record = Record {
            owner: owner.clone(),
            object_id: object_id.to_owned(),
            value: value.expose().to_owned(),
            updated_ms: now_ms(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Io {
            action: "encode",
            path: self.values.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let path = self
            .path(&handle)
            .ok_or_else(|| StoreError::NotFound(handle.clone()))?;
        let temporary = path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io("create", &temporary))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(io("write", &temporary))?;
        fs::rename(&temporary, &path).map_err(io("replace", &path))?;
        Ok(handle)
    }

    /// The value of `handle`, if `owner` may read it.
    ///
    /// # Errors
    /// `NotFound` for an unknown handle or another owner's; `Io`.
    pub fn get(&self, handle: &str, owner: &Owner) -> Result<Stored, StoreError> {
        match self.read(handle)? {
            Some(record) if record.owner.admits(owner) => Ok(Stored {
                owner: record.owner,
                value: Secret::new(record.value),
            }),
            _ => Err(StoreError::NotFound(handle.to_owned())),
        }
    }

    /// Forgets `handle`. An unknown handle is fine (deletes are retried); another
    /// owner's is `NotFound` and stays.
    ///
    /// # Errors
    /// `NotFound`; `Io`.
    pub fn delete(&self, handle: &str, owner: &Owner) -> Result<(), StoreError> {
        let _serialised = self.writes.blocking_lock();
        match self.read(handle)? {
            None => Ok(()),
            Some(record) if !record.owner.admits(owner) => {
                Err(StoreError::NotFound(handle.to_owned()))
            }
            Some(_) => {
                let path = self
                    .path(handle)
                    .ok_or_else(|| StoreError::NotFound(handle.to_owned()))?;
                match fs::remove_file(&path) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        Err(io("remove", &path)(error))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Every stored handle with its owner, sorted by handle.
    ///
    /// # Errors
    /// `Io`.
    pub fn list(&self) -> Result<Vec<(String, Owner)>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.values).map_err(io("list", &self.values))? {
            let name = entry.map_err(io("list", &self.values))?.file_name();
            let Some(handle) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            // Deleted between the listing and the read: not listed.
            if let Some(record) = self.read(handle)? {
                out.push((handle.to_owned(), record.owner));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
