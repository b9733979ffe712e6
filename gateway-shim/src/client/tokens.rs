//! Logins kept between CLI calls: one 0600 JSON file per gateway in `tokens/` under
//! the config directory, a directory we own that nobody else can write (checked like
//! the socket directories before a token is read or written). Writes are atomic; a
//! refresh holds a lock file so two CLI calls never both spend one rotated refresh
//! token.

use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// How a login was obtained (and so how it is renewed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Browser, Authorization Code with PKCE.
    AuthorizationCode,
    /// Device authorization grant.
    DeviceCode,
    /// Client credentials (CI): renewed by asking again with the same secret source.
    ClientCredentials,
}

/// Where a client secret is read from again at renewal (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// A file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// A stored login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogin {
    /// How it was obtained.
    pub grant: Grant,
    /// The OAuth2 client.
    pub client_id: String,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// The issuer's token endpoint.
    pub token_endpoint: String,
    /// The issuer's revocation endpoint, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The access token.
    pub access_token: String,
    /// The refresh token, when one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds), when the issuer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When it was obtained (Unix seconds).
    #[serde(default)]
    pub obtained_at: u64,
    /// Client credentials: where the secret comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSource>,
}

impl StoredLogin {
    /// Whether the access token should be renewed at `now`: it expires within
    /// `margin` seconds, or within half its lifetime when that is shorter.
    pub fn needs_renewal(&self, now: u64, margin: u64) -> bool {
        self.expires_at.is_some_and(|at| {
            let lifetime = at.saturating_sub(self.obtained_at);
            at <= now.saturating_add(margin.min(lifetime / 2))
        })
    }
}

/// The logins in a config directory.
#[derive(Clone, Debug)]
pub struct Tokens {
    dir: PathBuf,
}

impl Tokens {
    /// The logins kept under `config_dir`.
    pub fn in_dir(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.join("tokens"),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The login for gateway `name`, if there is one.
    ///
    /// # Errors
    /// An untrusted directory, a file others can read, or one that cannot be parsed.
    pub fn load(&self, name: &str) -> Result<Option<StoredLogin>, String> {
        let path = self.file(name);
        if !path.exists() {
            return Ok(None);
        }
        proto::private::check_dir(&self.dir)?;
        proto::private::check_secret_file(&path)?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e} (log in again)", path.display()))
    }

    /// Stores `login` for gateway `name` (0600, atomically).
    ///
    /// # Errors
    /// An untrusted directory, or the write failing.
    pub fn save(&self, name: &str, login: &StoredLogin) -> Result<(), String> {
        proto::private::prepare_dir(&self.dir)?;
        let json = serde_json::to_vec_pretty(login).map_err(|e| e.to_string())?;
        let path = self.file(name);
        proto::private::write_atomically(&path, &json)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Deletes the login of gateway `name` (nothing to do when there is none).
    ///
    /// # Errors
    /// The file exists and cannot be removed.
    pub fn delete(&self, name: &str) -> Result<(), String> {
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Holds the refresh lock of gateway `name` until the guard is dropped (blocking
    /// while another CLI call renews the same login).
    ///
    /// # Errors
    /// An untrusted directory, or the lock file failing.
    pub fn lock(&self, name: &str) -> Result<Flock<std::fs::File>, String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        proto::private::prepare_dir(&self.dir)?;
        let path = self.dir.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;

    fn login() -> StoredLogin {
        StoredLogin {
            grant: Grant::AuthorizationCode,
            client_id: "cli".into(),
            scopes: vec!["openid".into()],
            token_endpoint: "http://idp/token".into(),
            revocation_endpoint: None,
            access_token: "at".into(),
            refresh_token: Some("rt".into()),
            expires_at: Some(1_000),
            obtained_at: 0,
            secret: None,
        }
    }

    #[test]
    fn a_login_is_kept_0600_in_a_0700_directory_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::in_dir(dir.path());
        assert_eq!(tokens.load("prod").unwrap(), None);
        tokens.save("prod", &login()).unwrap();
        assert_eq!(tokens.load("prod").unwrap(), Some(login()));
        let file = dir.path().join("tokens/prod.json");
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(dir.path().join("tokens")).unwrap().mode() & 0o777,
            0o700
        );
        tokens.delete("prod").unwrap();
        tokens.delete("prod").unwrap();
        assert_eq!(tokens.load("prod").unwrap(), None);
    }

    #[test]
    fn a_token_file_others_can_read_or_a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::in_dir(dir.path());
        tokens.save("prod", &login()).unwrap();
        let file = dir.path().join("tokens/prod.json");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(tokens.load("prod").unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(
            dir.path().join("tokens"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        assert!(tokens.load("prod").is_err());
    }

    #[test]
    fn renewal_is_due_a_margin_before_expiry_or_half_a_short_lifetime() {
        let login = login();
        assert!(!login.needs_renewal(900, 60));
        assert!(login.needs_renewal(940, 60));
        let short = StoredLogin {
            obtained_at: 990,
            ..login.clone()
        };
        assert!(!short.needs_renewal(994, 60));
        assert!(short.needs_renewal(995, 60));
        let never = StoredLogin {
            expires_at: None,
            ..login
        };
        assert!(!never.needs_renewal(u64::MAX, 60));
    }
}
