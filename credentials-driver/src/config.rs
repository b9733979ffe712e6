//! The credentials config file (YAML): credentials keyed by name, each of one kind.
//!
//! ```yaml
//! credentials:
//!   github:                       # kind static: a token read from the secrets directory
//!     kind: static
//!     token_ref: github-token
//!     scopes: [repo]
//!   ci-bot:                       # an entry without `kind` is client_credentials (the
//!     token_endpoint: https://idp.example/realms/x/protocol/openid-connect/token
//!     client_id: ci-bot           # deployed driver's format keeps working)
//!     client_secret_ref: ci-bot-secret
//!     scopes: [api.read]
//!   downstream:
//!     kind: token_exchange        # RFC 8693: needs the caller's subject token
//!     issuer: https://idp.example/realms/x
//!     client_id: credentials-driver
//!     client_secret_ref: driver-secret
//!     audience: [downstream-api]
//! ```
//! Unknown keys are rejected, and every error names the file, the key and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How the driver authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the URL-encoded id and secret (RFC 6749 2.3.1).
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields.
    Post,
}

/// Where a client credential's token endpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClient {
    /// The token endpoint URL.
    pub token_endpoint: String,
    /// The client id.
    pub client_id: String,
    /// File (in the secrets directory) holding the client secret.
    pub client_secret_ref: String,
    /// How to send the client's credentials.
    pub auth_method: AuthMethod,
    /// Scopes to request (empty: the client's defaults).
    pub scopes: Vec<String>,
    /// Audiences to request (empty: the IdP's default).
    pub audience: Vec<String>,
}

/// One configured credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A token read from a file.
    Static {
        /// File (in the secrets directory) holding the token.
        token_ref: String,
        /// Token type reported to callers (default `Bearer`).
        token_type: String,
        /// Expiry in epoch milliseconds (0: does not expire).
        expires_at_ms: i64,
        /// Scopes reported in `ListCredentials`.
        scopes: Vec<String>,
    },
    /// OAuth2 client_credentials.
    ClientCredentials(OAuthClient),
    /// RFC 8693 token exchange of the caller's subject token.
    TokenExchange(OAuthClient),
}

impl Credential {
    /// The kind's name, as reported to callers.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Static { .. } => "static",
            Self::ClientCredentials(_) => "client_credentials",
            Self::TokenExchange(_) => "token_exchange",
        }
    }

    /// The scopes listed for it.
    pub fn scopes(&self) -> &[String] {
        match self {
            Self::Static { scopes, .. } => scopes,
            Self::ClientCredentials(c) | Self::TokenExchange(c) => &c.scopes,
        }
    }
}

/// A validated config: credentials by name (sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The credentials.
    pub credentials: BTreeMap<String, Credential>,
}

/// A config file that cannot be used; the message names the file, the key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The key path, e.g. `credentials.github.token_ref`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    credentials: BTreeMap<String, RawCredential>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    kind: Option<String>,
    token_ref: Option<String>,
    token_type: Option<String>,
    expires_at: Option<String>,
    issuer: Option<String>,
    token_endpoint: Option<String>,
    client_id: Option<String>,
    client_secret_ref: Option<String>,
    auth_method: Option<AuthMethod>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    audience: Vec<String>,
}

/// Reads and validates a config file.
///
/// # Errors
/// [`ConfigError`] for an unreadable file, bad YAML, unknown keys or invalid values.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        key: "(file)".into(),
        problem: format!("cannot read it: {e}"),
    })?;
    parse(file, &text)
}

/// Validates config text that came from `file` (named in errors).
///
/// # Errors
/// [`ConfigError`] for bad YAML, unknown keys or invalid values.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let error = |key: String, problem: String| ConfigError {
        file: file.to_path_buf(),
        key,
        problem,
    };
    let raw: RawFile = serde_yaml_ng::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {}, column {}", l.line(), l.column()));
        error(
            at.unwrap_or_else(|| "(document)".into()),
            format!("{e}; see the README for the format"),
        )
    })?;
    let mut credentials = BTreeMap::new();
    for (name, entry) in raw.credentials {
        let key = |field: &str| format!("credentials.{name}.{field}");
        validate_name(&name).map_err(|p| error(format!("credentials.{name}"), p))?;
        let credential = build(entry, &key).map_err(|(k, p)| error(k, p))?;
        credentials.insert(name, credential);
    }
    Ok(Config { credentials })
}

fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err("credential names are 1-128 letters, digits, '-', '_' or '.'".into())
    }
}

type Problem = (String, String);

fn build(entry: RawCredential, key: &dyn Fn(&str) -> String) -> Result<Credential, Problem> {
    let kind = entry
        .kind
        .clone()
        .unwrap_or_else(|| "client_credentials".into());
    match kind.as_str() {
        "static" => {
            for (field, present) in [
                ("issuer", entry.issuer.is_some()),
                ("token_endpoint", entry.token_endpoint.is_some()),
                ("client_id", entry.client_id.is_some()),
                ("client_secret_ref", entry.client_secret_ref.is_some()),
                ("auth_method", entry.auth_method.is_some()),
                ("audience", !entry.audience.is_empty()),
            ] {
                if present {
                    return Err((key(field), "not used by kind static; remove it".into()));
                }
            }
            let token_ref = required(
                entry.token_ref,
                &key("token_ref"),
                "the file in --secrets-dir holding the token",
            )?;
            secret_ref(&token_ref).map_err(|p| (key("token_ref"), p))?;
            let expires_at_ms = match entry.expires_at {
                None => 0,
                Some(text) => humantime::parse_rfc3339_weak(&text)
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_millis()).ok())
                    .ok_or_else(|| {
                        (
                            key("expires_at"),
                            format!(
                                "{text:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"
                            ),
                        )
                    })?,
            };
            Ok(Credential::Static {
                token_ref,
                token_type: entry.token_type.unwrap_or_else(|| "Bearer".into()),
                expires_at_ms,
                scopes: entry.scopes,
            })
        }
        "client_credentials" | "token_exchange" => {
            for (field, present) in [
                ("token_ref", entry.token_ref.is_some()),
                ("token_type", entry.token_type.is_some()),
                ("expires_at", entry.expires_at.is_some()),
            ] {
                if present {
                    return Err((key(field), format!("not used by kind {kind}; remove it")));
                }
            }
            let token_endpoint = match (entry.token_endpoint, entry.issuer) {
                (Some(_), Some(_)) => {
                    return Err((
                        key("issuer"),
                        "give token_endpoint or issuer, not both".into(),
                    ));
                }
                (Some(endpoint), None) => endpoint,
                (None, Some(issuer)) => format!(
                    "{}/protocol/openid-connect/token",
                    issuer.trim_end_matches('/')
                ),
                (None, None) => {
                    return Err((
                        key("token_endpoint"),
                        "required (or issuer, from which the Keycloak token endpoint is derived)"
                            .into(),
                    ));
                }
            };
            if !(token_endpoint.starts_with("https://") || token_endpoint.starts_with("http://")) {
                return Err((
                    key("token_endpoint"),
                    format!("{token_endpoint:?} is not an http(s) URL"),
                ));
            }
            let client_secret_ref = required(
                entry.client_secret_ref,
                &key("client_secret_ref"),
                "the file in --secrets-dir holding the client secret",
            )?;
            secret_ref(&client_secret_ref).map_err(|p| (key("client_secret_ref"), p))?;
            let client = OAuthClient {
                token_endpoint,
                client_id: required(entry.client_id, &key("client_id"), "the OAuth2 client id")?,
                client_secret_ref,
                // The deployed (kagenti) format has no `kind` and its driver sends the
                // client's id and secret as form fields: entries in that format keep
                // doing so unless they say otherwise; entries with a `kind` default to
                // HTTP Basic (RFC 6749's preference).
                auth_method: entry.auth_method.unwrap_or(if entry.kind.is_none() {
                    AuthMethod::Post
                } else {
                    AuthMethod::Basic
                }),
                scopes: entry.scopes,
                audience: entry.audience,
            };
            Ok(if kind == "token_exchange" {
                Credential::TokenExchange(client)
            } else {
                Credential::ClientCredentials(client)
            })
        }
        other => Err((
            key("kind"),
            format!("unknown kind {other:?}: use static, client_credentials or token_exchange"),
        )),
    }
}

fn required(value: Option<String>, key: &str, what: &str) -> Result<String, Problem> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err((key.to_owned(), format!("required: {what}"))),
    }
}

/// A secret reference is a relative path inside the secrets directory: no `..`, not
/// absolute. (Symlinks that point outside are refused when the file is read.)
pub fn secret_ref(reference: &str) -> Result<(), String> {
    let path = Path::new(reference);
    if reference.is_empty() || path.is_absolute() {
        return Err(format!(
            "{reference:?} must be a file name relative to --secrets-dir"
        ));
    }
    if path
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "{reference:?} must stay inside --secrets-dir (no '..' or '.')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
