//! The OAuth2 grants, each turning into a [`StoredLogin`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, StandardDeviceAuthorizationResponse, TokenResponse as _, TokenUrl,
};
use tokio::net::TcpListener;

use super::loopback::{self, CALLBACK_PATH, Callback};
use super::{Endpoints, LoginError};
use crate::client::tokens::{Grant, SecretSource, StoredLogin};

// Revocation is not made through `oauth2` (see [`revoke`]): no revocation URL here.
type OAuthClient = BasicClient<
    EndpointMaybeSet,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
>;

/// Who logs in and with which scopes.
#[derive(Clone, Debug)]
pub struct LoginClient {
    /// The OAuth2 client id.
    pub client_id: String,
    /// Its secret (client credentials only).
    pub secret: Option<(String, SecretSource)>,
    /// Scopes to request.
    pub scopes: Vec<String>,
}

fn url<T>(
    kind: &str,
    value: &str,
    make: fn(String) -> Result<T, oauth2::url::ParseError>,
) -> Result<T, LoginError> {
    make(value.to_owned())
        .map_err(|e| LoginError::Setup(format!("the issuer's {kind} {value:?} is not a URL: {e}")))
}

fn oauth_client(endpoints: &Endpoints, client: &LoginClient) -> Result<OAuthClient, LoginError> {
    let present = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let authorization = present(&endpoints.authorization_endpoint)
        .map(|v| url("authorization endpoint", &v, AuthUrl::new))
        .transpose()?;
    let device = present(&endpoints.device_authorization_endpoint)
        .map(|v| {
            url(
                "device authorization endpoint",
                &v,
                DeviceAuthorizationUrl::new,
            )
        })
        .transpose()?;
    let token = url("token endpoint", &endpoints.token_endpoint, TokenUrl::new)?;
    let mut oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_auth_uri_option(authorization)
        .set_device_authorization_url_option(device)
        .set_token_uri_option(Some(token))
        // Keycloak-style servers read the client's id (and secret) from the body.
        .set_auth_type(AuthType::RequestBody);
    if let Some((secret, _)) = &client.secret {
        oauth = oauth.set_client_secret(ClientSecret::new(secret.clone()));
    }
    Ok(oauth)
}

fn scopes(client: &LoginClient) -> Vec<Scope> {
    client.scopes.iter().cloned().map(Scope::new).collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn stored(
    grant: Grant,
    endpoints: &Endpoints,
    client: &LoginClient,
    token: &BasicTokenResponse,
    previous_refresh: Option<String>,
) -> StoredLogin {
    StoredLogin {
        grant,
        client_id: client.client_id.clone(),
        scopes: client.scopes.clone(),
        token_endpoint: endpoints.token_endpoint.clone(),
        revocation_endpoint: endpoints.revocation_endpoint.clone(),
        access_token: token.access_token().secret().clone(),
        // A server that does not rotate refresh tokens answers without one: keep ours.
        refresh_token: token
            .refresh_token()
            .map(|t| t.secret().clone())
            .or(previous_refresh),
        expires_at: token
            .expires_in()
            .map(|d| now().saturating_add(d.as_secs())),
        obtained_at: now(),
        secret: client.secret.as_ref().map(|(_, source)| source.clone()),
    }
}

/// How the browser login tells the user where to sign in.
#[derive(Clone, Copy, Debug)]
pub struct BrowserOptions {
    /// Try to open a browser (`$BROWSER`, else `xdg-open`/`open`).
    pub open: bool,
    /// How long the sign-in may take.
    pub deadline: Duration,
}

/// Authorization Code with PKCE: the browser signs in at the issuer and is redirected
/// to a listener on a random loopback port.
///
/// # Errors
/// [`LoginError`] saying what to do.
pub async fn browser(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client: &LoginClient,
    options: BrowserOptions,
) -> Result<StoredLogin, LoginError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
        LoginError::Setup(format!(
            "cannot listen on loopback for the login's redirect: {e}"
        ))
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| LoginError::Setup(e.to_string()))?
        .port();
    let redirect = url(
        "redirect",
        &format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        RedirectUrl::new,
    )?;
    let oauth = oauth_client(endpoints, client)?.set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (address, state) = oauth
        .authorize_url(CsrfToken::new_random)
        .map_err(|_| {
            LoginError::Setup(
                "the issuer has no authorization endpoint: use `gateway-shim login --device`"
                    .into(),
            )
        })?
        .add_scopes(scopes(client))
        .set_pkce_challenge(challenge)
        .url();
    let opened = options.open && open_browser(address.as_str());
    if opened {
        eprintln!("Opened your browser to sign in. If it did not open, visit:");
    } else {
        eprintln!("To sign in, open this address in a browser on this machine:");
    }
    eprintln!("  {address}");
    match loopback::wait(&listener, options.deadline).await? {
        Callback::Error { error, description } => Err(LoginError::Refused {
            what: "the sign-in".into(),
            error,
            description,
        }),
        Callback::Code { state: got, .. } if got != *state.secret() => Err(LoginError::Setup(
            "the sign-in's answer does not belong to this login (state differs); run `gateway-shim login` again".into(),
        )),
        Callback::Code { code, .. } => {
            let token = oauth
                .exchange_code(AuthorizationCode::new(code))
                .map_err(|e| LoginError::Setup(e.to_string()))?
                .set_pkce_verifier(verifier)
                .request_async(http)
                .await
                .map_err(|e| LoginError::from_oauth("the authorization code", e))?;
            Ok(stored(Grant::AuthorizationCode, endpoints, client, &token, None))
        }
    }
}

/// Tries to open `address` in a browser.
fn open_browser(address: &str) -> bool {
    let command = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open"
            } else {
                "xdg-open"
            }
            .into()
        });
    std::process::Command::new(command)
        .arg(address)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// The device authorization grant: the user approves a code on any device.
///
/// # Errors
/// [`LoginError`] saying what to do (an expired code, a denial).
pub async fn device(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client: &LoginClient,
    deadline: Duration,
) -> Result<StoredLogin, LoginError> {
    let oauth = oauth_client(endpoints, client)?;
    let details: StandardDeviceAuthorizationResponse = oauth
        .exchange_device_code()
        .map_err(|_| {
            LoginError::Setup(
                "the issuer has no device authorization endpoint: log in with the browser (`gateway-shim login`)".into(),
            )
        })?
        .add_scopes(scopes(client))
        .request_async(http)
        .await
        .map_err(|e| LoginError::from_oauth("the device code request", e))?;
    eprintln!(
        "To sign in, open {} on any device and enter the code {}",
        details.verification_uri().as_str(),
        details.user_code().secret()
    );
    if let Some(complete) = details.verification_uri_complete() {
        eprintln!("or open this address, which carries the code:");
        eprintln!("  {}", complete.secret());
    }
    let token = oauth
        .exchange_device_access_token(&details)
        .map_err(|e| LoginError::Setup(e.to_string()))?
        .request_async(http, tokio::time::sleep, Some(deadline))
        .await
        .map_err(|e| LoginError::from_oauth("the device login", e))?;
    Ok(stored(Grant::DeviceCode, endpoints, client, &token, None))
}

/// Client credentials (CI): the secret goes in the request body.
///
/// # Errors
/// [`LoginError`] saying what to do.
pub async fn client_credentials(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client: &LoginClient,
) -> Result<StoredLogin, LoginError> {
    let oauth = oauth_client(endpoints, client)?;
    let token = oauth
        .exchange_client_credentials()
        .map_err(|e| LoginError::Setup(e.to_string()))?
        .add_scopes(scopes(client))
        .request_async(http)
        .await
        .map_err(|e| LoginError::from_oauth("the client credentials", e))?;
    Ok(stored(
        Grant::ClientCredentials,
        endpoints,
        client,
        &token,
        None,
    ))
}

/// Endpoints enough to renew or revoke `login`.
fn endpoints_of(login: &StoredLogin) -> Endpoints {
    Endpoints {
        issuer: String::new(),
        authorization_endpoint: None,
        token_endpoint: login.token_endpoint.clone(),
        device_authorization_endpoint: None,
        revocation_endpoint: login.revocation_endpoint.clone(),
    }
}

/// A fresh access token for `login`: its refresh token, or (client credentials) the
/// same secret asked again. `secret` is the client secret read again.
///
/// # Errors
/// [`LoginError`]; `invalid_grant` says to log in again.
pub async fn renew(
    http: &reqwest::Client,
    login: &StoredLogin,
    secret: Option<String>,
) -> Result<StoredLogin, LoginError> {
    let endpoints = endpoints_of(login);
    let client = LoginClient {
        client_id: login.client_id.clone(),
        secret: secret.zip(login.secret.clone()),
        scopes: login.scopes.clone(),
    };
    if login.grant == Grant::ClientCredentials {
        return client_credentials(http, &endpoints, &client).await;
    }
    let Some(refresh) = &login.refresh_token else {
        return Err(LoginError::Setup(
            "the login expired and the identity provider gave no refresh token: run `gateway-shim login` again".into(),
        ));
    };
    let oauth = oauth_client(&endpoints, &client)?;
    let token = oauth
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .map_err(|e| LoginError::Setup(e.to_string()))?
        .request_async(http)
        .await
        .map_err(|e| LoginError::from_oauth("the refresh of the login", e))?;
    Ok(stored(
        login.grant,
        &endpoints,
        &client,
        &token,
        login.refresh_token.clone(),
    ))
}

/// Revokes `login`'s refresh token (else its access token) where the issuer supports
/// revocation (RFC 7009); `Ok(false)` when it does not.
///
/// The request is made here rather than by `oauth2`, which refuses a plain-HTTP
/// revocation endpoint even on loopback; we refuse it except on loopback.
///
/// # Errors
/// [`LoginError`] when the issuer refused or cannot be reached.
pub async fn revoke(
    http: &reqwest::Client,
    login: &StoredLogin,
    secret: Option<String>,
) -> Result<bool, LoginError> {
    let Some(endpoint) = &login.revocation_endpoint else {
        return Ok(false);
    };
    let parsed = oauth2::url::Url::parse(endpoint).map_err(|e| {
        LoginError::Setup(format!(
            "the issuer's revocation endpoint {endpoint:?}: {e}"
        ))
    })?;
    let loopback = match parsed.host() {
        Some(oauth2::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(oauth2::url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(oauth2::url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if parsed.scheme() != "https" && !loopback {
        return Err(LoginError::Setup(format!(
            "the issuer's revocation endpoint {endpoint} is not https: not sending a token there"
        )));
    }
    let (token, hint) = match &login.refresh_token {
        Some(refresh) => (refresh.clone(), "refresh_token"),
        None => (login.access_token.clone(), "access_token"),
    };
    let mut form = vec![
        ("token", token),
        ("token_type_hint", hint.to_owned()),
        ("client_id", login.client_id.clone()),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    let response =
        http.post(parsed)
            .form(&form)
            .send()
            .await
            .map_err(|e| LoginError::Transport {
                what: "the revocation".into(),
                why: proto::error_chain(&e),
            })?;
    if response.status().is_success() {
        return Ok(true);
    }
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Err(LoginError::Refused {
        what: "the revocation".into(),
        error: body["error"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned),
        description: body["error_description"].as_str().map(str::to_owned),
    })
}
