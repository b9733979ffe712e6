//! Names, as pure functions: what callers may name things, the scoped keys providers
//! and inference routes are stored under, and what each caller sees.
//!
//! A user's provider `openai` is stored as `<owner>/openai`; an admin's is shared and
//! stored unprefixed. A name a user gives resolves to their own first, then the shared
//! one. Users see their own providers by the plain name; admins see keys.

use std::collections::{BTreeMap, HashMap};

use super::error::ApiError;
use sha2::{Digest, Sha256};

use crate::auth::Principal;

/// Label prefix only the gateway may set.
pub const RESERVED_LABEL_PREFIX: &str = "openshell.io/";
/// Base name of inference routes.
pub const INFERENCE_ROUTE: &str = "inference.local";

/// A DNS-1123 label (sandbox names, workspaces).
///
/// # Errors
/// INVALID_ARGUMENT naming `field`.
pub fn dns_label(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let ok = !value.is_empty()
        && value.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field} {} is invalid: use 1 to {max} lowercase letters, digits or '-', starting and ending with a letter or digit",
            super::limits::shown(value)
        )))
    }
}

/// A provider name as a user gives it (no `/`).
///
/// # Errors
/// INVALID_ARGUMENT naming `field`.
pub fn provider_name(field: &str, value: &str) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let ok = !value.is_empty()
        && value.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field} {} is invalid: use 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit",
            super::limits::shown(value)
        )))
    }
}

/// The key a new provider `name` from `principal` is stored under.
pub fn provider_key(principal: &Principal, name: &str) -> String {
    if principal.is_admin() {
        name.to_owned()
    } else {
        format!("{}/{name}", principal.owner())
    }
}

/// The keys `name` may mean to `principal`, in resolution order.
///
/// # Errors
/// INVALID_ARGUMENT for a malformed name (users may not address scoped keys).
pub fn provider_candidates(principal: &Principal, name: &str) -> Result<Vec<String>, ApiError> {
    if principal.is_admin() {
        if let Some((owner, plain)) = name.split_once('/') {
            provider_name("provider", plain)?;
            if owner.is_empty() {
                return Err(ApiError::invalid("provider key has an empty owner"));
            }
            return Ok(vec![name.to_owned()]);
        }
        provider_name("provider", name)?;
        return Ok(vec![name.to_owned()]);
    }
    if name.contains('/') {
        // Another user's key: it does not exist for this caller.
        return Err(ApiError::not_found(format!(
            "provider {} not found",
            super::limits::shown(name)
        )));
    }
    provider_name("provider", name)?;
    Ok(vec![
        format!("{}/{name}", principal.owner()),
        name.to_owned(),
    ])
}

/// The keys `owner` (acting as a plain user, e.g. through a sandbox) may mean by `name`.
pub fn owner_candidates(owner: &str, name: &str) -> Vec<String> {
    vec![format!("{owner}/{name}"), name.to_owned()]
}

/// How `principal` sees the provider key `key`.
pub fn visible_provider_name(principal: &Principal, key: &str) -> String {
    if principal.is_admin() {
        return key.to_owned();
    }
    key.strip_prefix(&format!("{}/", principal.owner()))
        .unwrap_or(key)
        .to_owned()
}

/// How the owner of the provider `key` names it.
pub fn visible_provider_name_of_owner(owner: &str, key: &str) -> String {
    key.strip_prefix(&format!("{owner}/"))
        .unwrap_or(key)
        .to_owned()
}

/// The key of `principal`'s inference route: the global one for admins.
pub fn route_key(principal: &Principal) -> String {
    if principal.is_admin() {
        INFERENCE_ROUTE.to_owned()
    } else {
        format!("{INFERENCE_ROUTE}/{}", principal.owner())
    }
}

/// Route keys for a sandbox of `owner`, in resolution order.
pub fn route_candidates_for_owner(owner: &str) -> [String; 2] {
    [
        format!("{INFERENCE_ROUTE}/{owner}"),
        INFERENCE_ROUTE.to_owned(),
    ]
}

/// The driver workspace for `owner`'s workspace `name` (empty: their default): one
/// per owner, so owners never share files.
///
/// # Errors
/// INVALID_ARGUMENT for a malformed name.
pub fn workspace(owner: &str, name: &str) -> Result<String, ApiError> {
    let digest = Sha256::digest(owner.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    if name.is_empty() {
        return Ok(format!("ws-{hex}"));
    }
    dns_label("spec.workspace", name, 40)?;
    Ok(format!("ws-{hex}-{name}"))
}

/// Client labels without the reserved prefix.
pub fn client_labels(labels: HashMap<String, String>) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .filter(|(key, _)| {
            let reserved = key.starts_with(RESERVED_LABEL_PREFIX);
            if reserved {
                tracing::debug!(%key, "dropped a client label in the reserved prefix");
            }
            !reserved
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Identity, User};

    fn user(owner: &str, admin: bool) -> Principal {
        Principal::new(Identity::User(User {
            subject: owner.into(),
            owner: owner.into(),
            admin,
            user_role: true,
            scopes: None,
            bearer: None,
        }))
    }

    #[test]
    fn users_get_scoped_keys_and_fall_back_to_shared() {
        let alice = user("alice", false);
        assert_eq!(provider_key(&alice, "openai"), "alice/openai");
        assert_eq!(
            provider_candidates(&alice, "openai").unwrap(),
            ["alice/openai", "openai"]
        );
        let other = provider_candidates(&alice, "bob/openai").unwrap_err();
        assert_eq!(
            other.code(),
            tonic::Code::NotFound,
            "another user's key does not exist for alice"
        );
        assert_eq!(visible_provider_name(&alice, "alice/openai"), "openai");
        assert_eq!(visible_provider_name(&alice, "openai"), "openai");
    }

    #[test]
    fn admins_create_shared_and_address_keys() {
        let admin = user("root", true);
        assert_eq!(provider_key(&admin, "openai"), "openai");
        assert_eq!(
            provider_candidates(&admin, "alice/openai").unwrap(),
            ["alice/openai"]
        );
        assert_eq!(
            visible_provider_name(&admin, "alice/openai"),
            "alice/openai"
        );
        assert_eq!(route_key(&admin), "inference.local");
        assert_eq!(route_key(&user("bob", false)), "inference.local/bob");
    }

    #[test]
    fn names_are_validated_with_the_field_named() {
        let error = dns_label("name", "Bad_Name", 63).unwrap_err();
        assert!(error.to_string().starts_with("name \"Bad_Name\""));
        assert!(provider_name("provider", "").is_err());
        assert!(workspace("alice", "x/y").is_err());
        assert_ne!(
            workspace("alice", "").unwrap(),
            workspace("bob", "").unwrap()
        );
    }

    #[test]
    fn reserved_labels_are_dropped() {
        let labels = HashMap::from([
            ("openshell.io/owner".to_owned(), "bob".to_owned()),
            ("team".to_owned(), "ml".to_owned()),
        ]);
        assert_eq!(
            client_labels(labels).into_keys().collect::<Vec<_>>(),
            ["team"]
        );
    }
}
