//! Which gateway a client command talks to and with which token.
//!
//! The address: `--gateway` (a URL, or the name of a remembered gateway), else
//! `$OPENSHELL_GATEWAY_ENDPOINT` (inside sandboxes), else the gateway in use, else
//! `http://127.0.0.1:8080`. The token: `--token`, `--token-file`,
//! `$OPENSHELL_SANDBOX_TOKEN_FILE`, then the stored login of the remembered gateway
//! being called (renewed a minute before it expires, or half its lifetime when that is shorter), then the token
//! `gateway-shim dev` writes. A stored login is only ever sent to its own gateway.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::cli::ClientArgs;
use super::login::{flows, http_client};
use super::profiles::{Profile, ProfileError, Profiles};
use super::tokens::Tokens;
use super::{ClientError, DEFAULT_GATEWAY};

/// Renew a stored login this long before it expires.
const RENEW_MARGIN_SECS: u64 = 60;

/// Where a call goes and how it authenticates.
#[derive(Debug)]
pub struct Target {
    /// The gateway's address.
    pub addr: String,
    /// The bearer token.
    pub token: String,
    /// The remembered gateway, when it is one.
    pub profile: Option<Profile>,
}

/// The target `args` lead to.
///
/// # Errors
/// [`ClientError`] saying what is missing.
pub async fn target(args: &ClientArgs) -> Result<Target, ClientError> {
    let profiles = Profiles::user();
    let asked = args
        .gateway
        .clone()
        .or_else(|| std::env::var(crate::api::driver_spec::ENV_GATEWAY_ENDPOINT).ok())
        .filter(|a| !a.is_empty());
    let profile = match &asked {
        Some(name) if !name.contains("://") => match profiles.get(name) {
            Ok(profile) => Some(profile),
            Err(ProfileError::Unknown(_) | ProfileError::BadName(_)) => {
                return Err(ClientError::NoScheme(name.clone()));
            }
            Err(other) => return Err(other.into()),
        },
        // A URL: the remembered gateway at that address, if it is the one in use.
        Some(url) => {
            in_use(&profiles)?.filter(|p| p.url.trim_end_matches('/') == url.trim_end_matches('/'))
        }
        None => in_use(&profiles)?,
    };
    let addr = match (&profile, asked) {
        (Some(profile), _) => profile.url.clone(),
        (None, Some(url)) => url,
        (None, None) => DEFAULT_GATEWAY.to_owned(),
    };
    let token = match explicit_token(args)? {
        Some(token) => token,
        None => match &profile {
            Some(profile) => match stored_token(&profiles, profile).await? {
                Some(token) => token,
                None => {
                    dev_token()?.ok_or_else(|| ClientError::NotLoggedIn(profile.name.clone()))?
                }
            },
            None => dev_token()?.ok_or(ClientError::NoToken)?,
        },
    };
    Ok(Target {
        addr,
        token,
        profile,
    })
}

fn in_use(profiles: &Profiles) -> Result<Option<Profile>, ClientError> {
    match profiles.current()? {
        Some(name) => match profiles.get(&name) {
            Ok(profile) => Ok(Some(profile)),
            // The file went away: as if none were in use.
            Err(ProfileError::Unknown(_)) => Ok(None),
            Err(other) => Err(other.into()),
        },
        None => Ok(None),
    }
}

fn read_token_file(path: PathBuf) -> Result<String, ClientError> {
    let token =
        std::fs::read_to_string(&path).map_err(|source| ClientError::TokenFile { path, source })?;
    Ok(token.trim().to_owned())
}

/// `--token`, `--token-file`, `$OPENSHELL_SANDBOX_TOKEN_FILE`.
fn explicit_token(args: &ClientArgs) -> Result<Option<String>, ClientError> {
    if let Some(token) = &args.token {
        return Ok(Some(token.trim().to_owned()));
    }
    let file = args
        .token_file
        .clone()
        .or_else(|| std::env::var_os("OPENSHELL_SANDBOX_TOKEN_FILE").map(PathBuf::from));
    file.map(read_token_file).transpose()
}

/// The token `gateway-shim dev` wrote, if it is there.
fn dev_token() -> Result<Option<String>, ClientError> {
    let path = crate::dev::default_state_dir().join(crate::dev::TOKEN_FILE);
    if path.exists() {
        read_token_file(path).map(Some)
    } else {
        Ok(None)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The stored login's access token, renewed first when it expires soon. Renewals
/// are serialized across processes; the one that waited uses what the other got.
async fn stored_token(
    profiles: &Profiles,
    profile: &Profile,
) -> Result<Option<String>, ClientError> {
    let tokens = Tokens::in_dir(profiles.dir());
    let Some(login) = tokens.load(&profile.name).map_err(ClientError::Tokens)? else {
        return Ok(None);
    };
    if !login.needs_renewal(now(), RENEW_MARGIN_SECS) {
        return Ok(Some(login.access_token));
    }
    let name = profile.name.clone();
    let locker = tokens.clone();
    let _lock = tokio::task::spawn_blocking(move || locker.lock(&name))
        .await
        .map_err(|e| ClientError::Tokens(e.to_string()))?
        .map_err(ClientError::Tokens)?;
    let Some(login) = tokens.load(&profile.name).map_err(ClientError::Tokens)? else {
        return Ok(None);
    };
    if !login.needs_renewal(now(), RENEW_MARGIN_SECS) {
        return Ok(Some(login.access_token));
    }
    let http = http_client(profile.ca_file.as_deref())?;
    let secret = login
        .secret
        .as_ref()
        .map(super::account::read_secret)
        .transpose()?;
    let renewed = flows::renew(&http, &login, secret).await?;
    tokens
        .save(&profile.name, &renewed)
        .map_err(ClientError::Tokens)?;
    tracing::debug!(gateway = %profile.name, "renewed the stored login");
    Ok(Some(renewed.access_token))
}
