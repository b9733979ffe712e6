//! Users with real tokens from the OIDC test peer, and a gateway that trusts it.
#![allow(dead_code)]

use serde_json::{Value, json};

pub use conformance::oidc_peer::OidcPeer;

pub const AUDIENCE: &str = "openshell-gateway";

/// Peer config: the gateway's audience, and a CI client (client_credentials) whose
/// service account has the user role.
pub fn peer_config() -> Value {
    json!({
        "audiences": {
            "openshell-gateway": { "scope": "openshell:all" },
            "credentials-driver": { "scope": "credentials:resolve" }
        },
        "clients": [{
            "client_id": "ci", "client_secret": "ci-secret", "grant_types": ["client_credentials"],
            "scope": "openshell:all", "default_audience": "openshell-gateway",
            "claims": { "realm_access": { "roles": ["openshell-user"] } }
        }]
    })
}

/// Gateway flags trusting `peer` with RBAC and scopes from `scope`.
pub fn oidc_flags(peer: &OidcPeer) -> gateway_shim::OidcArgs {
    gateway_shim::OidcArgs {
        oidc_issuer: Some(peer.issuer.clone()),
        oidc_audience: Some(AUDIENCE.into()),
        oidc_scopes_claim: "scope".into(),
        ..Default::default()
    }
}

/// The OIDC configuration those flags give.
pub fn oidc_args(peer: &OidcPeer) -> Option<gateway_shim::auth::OidcConfig> {
    oidc_flags(peer).config().unwrap()
}

/// The owner key the gateway stamps for `subject` of `peer`.
pub fn owner(peer: &OidcPeer, subject: &str) -> String {
    gateway_shim::auth::owner::oidc_owner(&peer.issuer, subject)
}

/// A token for `sub` with `roles` and `scope`.
pub async fn user_token(peer: &OidcPeer, sub: &str, roles: &[&str], scope: &str) -> String {
    peer.mint(json!({
        "sub": sub, "aud": AUDIENCE, "azp": "openshell-cli", "scope": scope,
        "claims": { "realm_access": { "roles": roles } }
    }))
    .await
}

pub async fn alice(peer: &OidcPeer) -> String {
    user_token(peer, "alice", &["openshell-user"], "openshell:all").await
}

pub async fn bob(peer: &OidcPeer) -> String {
    user_token(peer, "bob", &["openshell-user"], "openshell:all").await
}

pub async fn admin(peer: &OidcPeer) -> String {
    user_token(peer, "root-admin", &["openshell-admin"], "openshell:all").await
}

/// A client_credentials token of the CI client, from the peer's token endpoint.
pub async fn ci_client(peer: &OidcPeer) -> String {
    let response: Value = reqwest::Client::new()
        .post(peer.token_endpoint())
        .basic_auth("ci", Some("ci-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{response}"))
        .to_owned()
}
