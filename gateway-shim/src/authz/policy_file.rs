//! The credential policy's file: loaded at start-up (a broken file stops the start with
//! the file and key named), then re-read whenever its modification time or size
//! changes, checked at every decision. A policy change therefore revokes at once; a file
//! that breaks while running denies every user's credentials (admins keep theirs) and
//! logs why, rather than keep serving a policy the operator meant to replace.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::CredentialPolicy;

/// The policy in force, from a file or the built-in default.
#[derive(Debug)]
pub struct PolicyFile {
    path: Option<PathBuf>,
    state: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    policy: Arc<CredentialPolicy>,
}

impl PolicyFile {
    /// The default policy (no file).
    pub fn builtin() -> Self {
        Self {
            path: None,
            state: RwLock::new(Loaded {
                stamp: None,
                policy: Arc::new(CredentialPolicy::default()),
            }),
        }
    }

    /// Loads the policy at `path`.
    ///
    /// # Errors
    /// A message naming the file and what is wrong in it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let (stamp, policy) = read(path)?;
        Ok(Self {
            path: Some(path.to_owned()),
            state: RwLock::new(Loaded {
                stamp: Some(stamp),
                policy: Arc::new(policy),
            }),
        })
    }

    /// The policy in force now (re-read if the file changed).
    pub fn current(&self) -> Arc<CredentialPolicy> {
        let Some(path) = &self.path else {
            return self.cached();
        };
        let stamp = stamp_of(path).ok();
        if let Ok(state) = self.state.read()
            && stamp.is_some()
            && state.stamp == stamp
        {
            return Arc::clone(&state.policy);
        }
        let (stamp, policy) = match read(path) {
            Ok((stamp, policy)) => {
                tracing::info!(file = %path.display(), "credential policy reloaded");
                (Some(stamp), policy)
            }
            Err(error) => {
                tracing::error!(%error, "credential policy unusable: users may reference no credential until it is fixed");
                (stamp, CredentialPolicy::deny_users())
            }
        };
        let policy = Arc::new(policy);
        if let Ok(mut state) = self.state.write() {
            *state = Loaded {
                stamp,
                policy: Arc::clone(&policy),
            };
        }
        policy
    }

    fn cached(&self) -> Arc<CredentialPolicy> {
        self.state.read().map_or_else(
            |_| Arc::new(CredentialPolicy::deny_users()),
            |state| Arc::clone(&state.policy),
        )
    }
}

fn stamp_of(path: &Path) -> std::io::Result<(SystemTime, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified()?, meta.len()))
}

fn read(path: &Path) -> Result<((SystemTime, u64), CredentialPolicy), String> {
    let shown = path.display();
    let stamp = stamp_of(path).map_err(|e| format!("--credential-policy {shown}: {e}"))?;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--credential-policy {shown}: {e}"))?;
    let policy =
        CredentialPolicy::parse(&text).map_err(|e| format!("--credential-policy {shown}: {e}"))?;
    Ok((stamp, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Holder;

    const BOB: Holder<'static> = Holder {
        owner: "bob",
        admin: false,
    };

    #[test]
    fn a_changed_file_takes_effect_at_the_next_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, "grants: [{credentials: [\"shared-*\"]}]").unwrap();
        let file = PolicyFile::load(&path).unwrap();
        assert!(file.current().allows(BOB, "shared-gpu", Some(false)));

        // Revoked: a different size, so the change shows even within one mtime tick.
        std::fs::write(&path, "grants: [{credentials: [\"other-*\"]}]  ").unwrap();
        assert!(!file.current().allows(BOB, "shared-gpu", Some(false)));

        // Broken: users get nothing, admins keep everything.
        std::fs::write(&path, "grants: [{credentials: [\"{nope}\"]}]").unwrap();
        let policy = file.current();
        assert!(!policy.allows(BOB, "other-x", Some(false)));
        assert!(!policy.allows(BOB, "kc", Some(true)));
        assert!(policy.allows(
            Holder {
                owner: "root",
                admin: true
            },
            "x",
            None
        ));

        std::fs::remove_file(&path).unwrap();
        assert!(
            !file.current().allows(BOB, "other-x", Some(false)),
            "a vanished file denies"
        );
    }

    #[test]
    fn a_broken_file_at_start_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, "grants: [{credentials: []}]").unwrap();
        let error = PolicyFile::load(&path).unwrap_err();
        assert!(
            error.contains("p.yaml") && error.contains("grants[0].credentials"),
            "{error}"
        );
        let missing = PolicyFile::load(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(missing.contains("--credential-policy"), "{missing}");
    }
}
