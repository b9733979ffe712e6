//! Config and secret reload without a restart: on SIGHUP, and when the config file or
//! anything in the secrets directory changes (polled; Kubernetes Secret volumes change
//! by swapping a symlink, which inotify-style watching of one file misses).
//!
//! A reload that fails validation keeps the previous config serving and logs why. Any
//! change clears the token cache, so a fixed client secret is used at once instead of
//! after the negative-cache period.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::cache::TokenCache;
use crate::config::{self, Config};

/// What can trigger a reload.
#[derive(Debug)]
pub(crate) struct Reloader {
    /// The config file (none: only secrets are watched).
    pub(crate) config_file: Option<PathBuf>,
    /// The secrets directory.
    pub(crate) secrets_dir: PathBuf,
    /// Where the live config is published.
    pub(crate) config: watch::Sender<Arc<Config>>,
    /// The cache to clear on change.
    pub(crate) cache: Arc<TokenCache>,
    /// How often files are checked.
    pub(crate) interval: Duration,
}

/// A cheap summary of the watched files: path → (resolved path, length, mtime).
type Fingerprint = BTreeMap<PathBuf, (PathBuf, u64, Option<SystemTime>)>;

impl Reloader {
    fn fingerprint(&self) -> Fingerprint {
        let mut paths: Vec<PathBuf> = self.config_file.iter().cloned().collect();
        if let Ok(entries) = std::fs::read_dir(&self.secrets_dir) {
            paths.extend(entries.flatten().map(|e| e.path()));
        }
        paths
            .into_iter()
            .map(|path| {
                let resolved = std::fs::canonicalize(&path).unwrap_or_default();
                let meta = std::fs::metadata(&path).ok();
                let summary = (
                    resolved,
                    meta.as_ref().map_or(0, std::fs::Metadata::len),
                    meta.and_then(|m| m.modified().ok()),
                );
                (path, summary)
            })
            .collect()
    }

    /// Re-reads the config (if any) and publishes it; clears the cache.
    fn reload(&self, why: &str) {
        if let Some(file) = &self.config_file {
            match config::load(file) {
                Ok(new) => {
                    let count = new.credentials.len();
                    self.config.send_replace(Arc::new(new));
                    tracing::info!(reason = why, credentials = count, "config reloaded");
                }
                Err(error) => {
                    tracing::error!(reason = why, %error, "config reload failed; keeping the previous config");
                    return;
                }
            }
        }
        self.cache.clear();
        tracing::info!(reason = why, "token cache cleared");
    }

    /// Watches until `shutdown` completes.
    pub(crate) async fn run<F>(self, shutdown: F)
    where
        F: std::future::Future<Output = ()>,
    {
        let mut hangups =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = self.fingerprint();
        tokio::pin!(shutdown);
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = hangup => {
                    self.reload("SIGHUP");
                    seen = self.fingerprint();
                }
                () = tokio::time::sleep(self.interval) => {
                    let now = self.fingerprint();
                    if now != seen {
                        seen = now;
                        self.reload("files changed");
                    }
                }
            }
        }
    }
}
