//! Remembered gateways: one JSON file per gateway under the user's config directory
//! (`$XDG_CONFIG_HOME/gateway-shim`, else `~/.config/gateway-shim`), the one in use
//! named in `current`. A gateway's file holds its address and its discovery document;
//! its login lives apart, in [`super::tokens`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::discovery::Discovery;

/// Env var overriding the config directory (tests, several identities on one account).
pub const ENV_CONFIG_DIR: &str = "OPENSHELL_CONFIG_DIR";

/// A remembered gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Its name (`gateway use NAME`).
    pub name: String,
    /// Its address, `http://` or `https://`.
    pub url: String,
    /// What it said at `gateway add`.
    pub discovery: Discovery,
    /// CA file to verify its certificate with (`https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Why the remembered gateways could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No gateway of that name.
    #[error("no gateway named {0:?}: `gateway-shim gateway list` shows the names")]
    Unknown(String),
    /// A name that cannot be a file name.
    #[error(
        "{0:?} cannot name a gateway: use letters, digits, '-', '_' and '.' (not first), up to 63"
    )]
    BadName(String),
    /// The directory or a file could not be used.
    #[error("{0}")]
    Io(String),
}

/// The config directory.
pub fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV_CONFIG_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("gateway-shim")
}

/// Checks that `name` is a safe file name.
///
/// # Errors
/// [`ProfileError::BadName`].
pub fn check_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.to_owned()))
    }
}

/// The remembered gateways in `dir`.
#[derive(Clone, Debug)]
pub struct Profiles {
    dir: PathBuf,
}

impl Profiles {
    /// The gateways remembered in the user's config directory.
    pub fn user() -> Self {
        Self::at(config_dir())
    }

    /// The gateways remembered in `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join("gateways").join(format!("{name}.json"))
    }

    /// Remembers `profile` (replacing one of the same name); the first one added
    /// becomes the one in use.
    ///
    /// # Errors
    /// [`ProfileError`].
    pub fn save(&self, profile: &Profile) -> Result<(), ProfileError> {
        check_name(&profile.name)?;
        let dir = self.dir.join("gateways");
        proto::private::prepare_dir(&dir).map_err(ProfileError::Io)?;
        let json =
            serde_json::to_vec_pretty(profile).map_err(|e| ProfileError::Io(e.to_string()))?;
        proto::private::write_atomically(&self.file(&profile.name), &json).map_err(|e| {
            ProfileError::Io(format!("{}: {e}", self.file(&profile.name).display()))
        })?;
        if self.current()?.is_none() {
            self.select(&profile.name)?;
        }
        Ok(())
    }

    /// The gateway named `name`.
    ///
    /// # Errors
    /// [`ProfileError::Unknown`], or a file that cannot be read.
    pub fn get(&self, name: &str) -> Result<Profile, ProfileError> {
        check_name(name).map_err(|_| ProfileError::Unknown(name.to_owned()))?;
        let path = self.file(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProfileError::Unknown(name.to_owned()));
            }
            Err(e) => return Err(ProfileError::Io(format!("{}: {e}", path.display()))),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            ProfileError::Io(format!(
                "{}: {e} (remove it with `gateway-shim gateway remove {name}`)",
                path.display()
            ))
        })
    }

    /// Every remembered gateway, by name.
    ///
    /// # Errors
    /// A directory or file that cannot be read.
    pub fn list(&self) -> Result<Vec<Profile>, ProfileError> {
        let dir = self.dir.join("gateways");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ProfileError::Io(format!("{}: {e}", dir.display()))),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_owned)
            })
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        names.iter().map(|n| self.get(n)).collect()
    }

    /// The name of the gateway in use, if one is.
    ///
    /// # Errors
    /// The `current` file cannot be read.
    pub fn current(&self) -> Result<Option<String>, ProfileError> {
        let path = self.dir.join("current");
        match std::fs::read_to_string(&path) {
            Ok(name) => Ok(Some(name.trim().to_owned()).filter(|n| !n.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ProfileError::Io(format!("{}: {e}", path.display()))),
        }
    }

    /// Makes `name` the gateway in use.
    ///
    /// # Errors
    /// [`ProfileError::Unknown`].
    pub fn select(&self, name: &str) -> Result<(), ProfileError> {
        self.get(name)?;
        proto::private::prepare_dir(&self.dir).map_err(ProfileError::Io)?;
        let path = self.dir.join("current");
        proto::private::write_atomically(&path, format!("{name}\n").as_bytes())
            .map_err(|e| ProfileError::Io(format!("{}: {e}", path.display())))
    }

    /// Forgets `name` (its login too); the one in use is no longer in use.
    ///
    /// # Errors
    /// [`ProfileError::Unknown`].
    pub fn remove(&self, name: &str) -> Result<(), ProfileError> {
        self.get(name)?;
        super::tokens::Tokens::in_dir(&self.dir)
            .delete(name)
            .map_err(ProfileError::Io)?;
        std::fs::remove_file(self.file(name))
            .map_err(|e| ProfileError::Io(format!("{}: {e}", self.file(name).display())))?;
        if self.current()?.as_deref() == Some(name) {
            let _ = std::fs::remove_file(self.dir.join("current"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn profile(name: &str) -> Profile {
        Profile {
            name: name.into(),
            url: format!("https://{name}.example:8443"),
            discovery: Discovery::new(None),
            ca_file: None,
        }
    }

    #[test]
    fn the_first_added_is_in_use_and_removing_it_leaves_none() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = Profiles::at(dir.path().join("cfg"));
        assert!(profiles.list().unwrap().is_empty());
        profiles.save(&profile("prod")).unwrap();
        profiles.save(&profile("dev")).unwrap();
        assert_eq!(profiles.current().unwrap().as_deref(), Some("prod"));
        let names: Vec<_> = profiles
            .list()
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["dev", "prod"]);
        profiles.select("dev").unwrap();
        assert_eq!(profiles.current().unwrap().as_deref(), Some("dev"));
        profiles.remove("dev").unwrap();
        assert_eq!(profiles.current().unwrap(), None);
        assert!(matches!(profiles.get("dev"), Err(ProfileError::Unknown(_))));
        assert!(matches!(
            profiles.select("nope"),
            Err(ProfileError::Unknown(_))
        ));
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["prod", "eu-1.example", "a_b"] {
            check_name(good).unwrap();
        }
    }
}
