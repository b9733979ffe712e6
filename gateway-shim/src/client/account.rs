//! `gateway add|list|use|remove`, `login` and `logout`: the user's side of a gateway's
//! OIDC login. What they print goes to stderr, except `gateway list`'s table or JSON.

use std::path::Path;

use serde_json::json;

use super::ClientError;
use super::cli::{GatewayAdd, GatewayCommand, Login, Logout};
use super::login::flows::{self, BrowserOptions, LoginClient};
use super::login::{Endpoints, LoginError, http_client};
use super::output::emit;
use super::profiles::{Profile, Profiles, check_name};
use super::tokens::{SecretSource, StoredLogin, Tokens};
use crate::discovery::{Discovery, with_openid};

/// Env var holding a client secret for `login --client-credentials`.
pub(super) const ENV_CLIENT_SECRET: &str = "OPENSHELL_CLIENT_SECRET";

/// Runs a `gateway` subcommand.
///
/// # Errors
/// [`ClientError`] saying what to do.
pub(super) async fn gateway(command: &GatewayCommand) -> Result<(), ClientError> {
    let profiles = Profiles::user();
    match command {
        GatewayCommand::Add(add) => add_gateway(&profiles, add).await,
        GatewayCommand::List(list) => {
            let current = profiles.current()?;
            let tokens = Tokens::in_dir(profiles.dir());
            let mut rows = Vec::new();
            let mut json = Vec::new();
            for profile in profiles.list()? {
                let in_use = current.as_deref() == Some(profile.name.as_str());
                let logged_in = tokens.load(&profile.name).ok().flatten().is_some();
                let auth = if profile.discovery.auth_enabled {
                    "oidc"
                } else {
                    "local"
                };
                rows.push(vec![
                    if in_use { "*" } else { "" }.to_owned(),
                    profile.name.clone(),
                    profile.url.clone(),
                    auth.to_owned(),
                    if logged_in { "yes" } else { "no" }.to_owned(),
                ]);
                json.push(json!({
                    "name": profile.name, "url": profile.url, "in_use": in_use,
                    "auth": auth, "logged_in": logged_in,
                }));
            }
            Ok(emit(
                list.output,
                &["", "NAME", "URL", "AUTH", "LOGGED IN"],
                &rows,
                &json!(json),
            )?)
        }
        GatewayCommand::Use(pick) => {
            profiles.select(&pick.name)?;
            eprintln!("using gateway {}", pick.name);
            Ok(())
        }
        GatewayCommand::Remove(pick) => {
            profiles.remove(&pick.name)?;
            eprintln!("forgot gateway {} and its login", pick.name);
            Ok(())
        }
    }
}

/// A name for `url`: its host and port.
fn default_name(url: &oauth2::url::Url) -> String {
    let host = url.host_str().unwrap_or("gateway").trim_matches(['[', ']']);
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    match url.port() {
        Some(port) => format!("{host}-{port}"),
        None => host,
    }
}

async fn add_gateway(profiles: &Profiles, add: &GatewayAdd) -> Result<(), ClientError> {
    if !(add.url.starts_with("http://") || add.url.starts_with("https://")) {
        return Err(ClientError::NoScheme(add.url.clone()));
    }
    let parsed =
        oauth2::url::Url::parse(&add.url).map_err(|_| ClientError::BadAddress(add.url.clone()))?;
    let name = add.name.clone().unwrap_or_else(|| default_name(&parsed));
    check_name(&name)?;
    let ca_file = match &add.ca_file {
        Some(path) => Some(
            std::fs::canonicalize(path)
                .map_err(|e| LoginError::Setup(format!("--ca-file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let discovery = fetch_discovery(&add.url, ca_file.as_deref()).await?;
    let url = add.url.trim_end_matches('/').to_owned();
    profiles.save(&Profile {
        name: name.clone(),
        url: url.clone(),
        discovery: discovery.clone(),
        ca_file,
    })?;
    eprintln!("added gateway {name} ({url})");
    if profiles.current()?.as_deref() == Some(name.as_str()) {
        eprintln!("it is the gateway in use");
    }
    if discovery.auth_enabled {
        eprintln!("log in with: gateway-shim login {name}");
    }
    Ok(())
}

/// Reads a gateway's discovery document.
async fn fetch_discovery(url: &str, ca_file: Option<&Path>) -> Result<Discovery, ClientError> {
    let http = http_client(ca_file)?;
    let address = format!("{}{}", url.trim_end_matches('/'), crate::discovery::PATH);
    let unreachable = |why: String| ClientError::Unreachable {
        addr: url.to_owned(),
        why,
    };
    let response = http
        .get(&address)
        .send()
        .await
        .map_err(|e| unreachable(proto::error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(unreachable(format!(
            "{address} answered HTTP {}; is this a gateway-shim gateway?",
            response.status()
        )));
    }
    response
        .json()
        .await
        .map_err(|e| unreachable(format!("{address}: not a discovery document: {e}")))
}

/// The remembered gateway `name`, or the one in use.
fn pick(profiles: &Profiles, name: Option<&str>) -> Result<Profile, ClientError> {
    let name = match name {
        Some(name) => name.to_owned(),
        None => profiles.current()?.ok_or_else(|| {
            LoginError::Setup(
                "no gateway in use: `gateway-shim gateway add URL` first (or name one)".into(),
            )
        })?,
    };
    Ok(profiles.get(&name)?)
}

/// Reads a client secret from a file or $OPENSHELL_CLIENT_SECRET.
pub(super) fn read_secret(source: &SecretSource) -> Result<String, LoginError> {
    let secret = match source {
        SecretSource::File(path) => {
            proto::private::check_secret_file(path)
                .map_err(|e| LoginError::Setup(format!("--client-secret-file: {e}")))?;
            std::fs::read_to_string(path).map_err(|e| {
                LoginError::Setup(format!("--client-secret-file {}: {e}", path.display()))
            })?
        }
        SecretSource::Env(name) => std::env::var(name).map_err(|_| {
            LoginError::Setup(format!(
                "the client secret was read from ${name}, which is not set now: set it or log in again with --client-secret-file"
            ))
        })?,
    };
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        return Err(LoginError::Setup("the client secret is empty".into()));
    }
    Ok(secret)
}

/// Runs `login`.
///
/// # Errors
/// [`ClientError`] saying what to do.
pub(super) async fn login(login: &Login) -> Result<(), ClientError> {
    let profiles = Profiles::user();
    let profile = pick(&profiles, login.name.as_deref())?;
    let Some(oidc) = &profile.discovery.oidc else {
        return Err(LoginError::Setup(format!(
            "gateway {} does not use OIDC (when it was added it said so); if it does now, run `gateway-shim gateway add {} --name {}` again",
            profile.name, profile.url, profile.name
        ))
        .into());
    };
    let http = http_client(profile.ca_file.as_deref())?;
    let endpoints = Endpoints::discover(&http, &oidc.issuer).await?;
    let mut scopes = with_openid(&oidc.scopes);
    for scope in &login.scopes {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    let stored: StoredLogin = if login.client_credentials {
        let client_id = login.client_id.clone().ok_or_else(|| {
            LoginError::Setup("--client-credentials needs --client-id (the CI client)".into())
        })?;
        let source = match &login.client_secret_file {
            Some(path) => SecretSource::File(path.clone()),
            None if std::env::var_os(ENV_CLIENT_SECRET).is_some() => {
                SecretSource::Env(ENV_CLIENT_SECRET.into())
            }
            None => {
                return Err(LoginError::Setup(format!(
                    "--client-credentials needs the client secret: --client-secret-file PATH or ${ENV_CLIENT_SECRET}"
                ))
                .into());
            }
        };
        let source = match source {
            SecretSource::File(path) => {
                SecretSource::File(std::fs::canonicalize(&path).map_err(|e| {
                    LoginError::Setup(format!("--client-secret-file {}: {e}", path.display()))
                })?)
            }
            env => env,
        };
        let secret = read_secret(&source)?;
        // A robot has no user session: no `openid`, no refresh token to ask for.
        scopes.retain(|s| s != "openid" && s != "offline_access");
        let client = LoginClient {
            client_id,
            secret: Some((secret, source)),
            scopes,
        };
        flows::client_credentials(&http, &endpoints, &client).await?
    } else {
        let client_id = login
            .client_id
            .clone()
            .or_else(|| oidc.client_id.clone())
            .ok_or_else(|| {
                LoginError::Setup(format!(
                    "gateway {} names no CLI client (its --oidc-cli-client-id is unset): pass --client-id",
                    profile.name
                ))
            })?;
        let client = LoginClient {
            client_id,
            secret: None,
            scopes,
        };
        if login.device {
            flows::device(&http, &endpoints, &client, login.login_timeout).await?
        } else {
            let options = BrowserOptions {
                open: !login.no_browser,
                deadline: login.login_timeout,
            };
            flows::browser(&http, &endpoints, &client, options).await?
        }
    };
    Tokens::in_dir(profiles.dir())
        .save(&profile.name, &stored)
        .map_err(ClientError::Tokens)?;
    eprintln!("logged in to {}", profile.name);
    Ok(())
}

/// Runs `logout`.
///
/// # Errors
/// [`ClientError`] when the login cannot be deleted.
pub(super) async fn logout(logout: &Logout) -> Result<(), ClientError> {
    let profiles = Profiles::user();
    let profile = pick(&profiles, logout.name.as_deref())?;
    let tokens = Tokens::in_dir(profiles.dir());
    let Some(stored) = tokens.load(&profile.name).map_err(ClientError::Tokens)? else {
        eprintln!("not logged in to {}", profile.name);
        return Ok(());
    };
    let http = http_client(profile.ca_file.as_deref())?;
    let secret = stored.secret.as_ref().and_then(|s| read_secret(s).ok());
    let revoked = flows::revoke(&http, &stored, secret).await;
    tokens.delete(&profile.name).map_err(ClientError::Tokens)?;
    match revoked {
        Ok(true) => eprintln!(
            "logged out of {} (the identity provider revoked the login)",
            profile.name
        ),
        Ok(false) => eprintln!(
            "logged out of {} (the identity provider cannot revoke; the last access token stays valid until it expires)",
            profile.name
        ),
        Err(error) => eprintln!(
            "logged out of {}; the identity provider did not revoke the login: {error}",
            profile.name
        ),
    }
    Ok(())
}
