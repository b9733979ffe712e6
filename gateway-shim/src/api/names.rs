//! Names, as pure functions: what callers may name things, the scoped keys providers
//! and inference routes are stored under, and what each caller sees.
//!
//! Within a tenant, a user's provider `openai` is stored as `<owner>/openai`; a tenant
//! admin's is shared by the tenant and stored unprefixed. A platform admin's provider
//! named `platform:openai` is in the platform layer, under every tenant. A name a user
//! gives resolves to their own first, then the tenant's shared one, then the
//! platform's. Users see their own providers by the plain name; admins see keys; the
//! platform's are always shown (and stored in references) as `platform:<name>`.

use std::collections::{BTreeMap, HashMap};

use super::error::ApiError;
use sha2::{Digest, Sha256};

use crate::auth::Principal;

/// Label prefix only the gateway may set.
pub const RESERVED_LABEL_PREFIX: &str = "openshell.io/";
/// Base name of inference routes.
pub const INFERENCE_ROUTE: &str = "inference.local";
/// How the platform layer's providers are named and referred to.
pub const PLATFORM_PREFIX: &str = "platform:";

/// Where a provider lives: a key in the caller's tenant or in the platform layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRef {
    /// In the platform layer (else in the referring record's tenant).
    pub platform: bool,
    /// The key within its layer.
    pub key: String,
}

impl ProviderRef {
    /// A key in the caller's tenant.
    pub fn tenant(key: impl Into<String>) -> Self {
        Self {
            platform: false,
            key: key.into(),
        }
    }

    /// A key in the platform layer.
    pub fn platform(key: impl Into<String>) -> Self {
        Self {
            platform: true,
            key: key.into(),
        }
    }

    /// The reference stored in sandboxes and routes (`platform:<key>` for the
    /// platform's).
    pub fn reference(&self) -> String {
        if self.platform {
            format!("{PLATFORM_PREFIX}{}", self.key)
        } else {
            self.key.clone()
        }
    }

    /// A stored reference read back.
    pub fn parse(reference: &str) -> Self {
        match reference.strip_prefix(PLATFORM_PREFIX) {
            Some(key) => Self::platform(key),
            None => Self::tenant(reference),
        }
    }

    /// The tenant the provider lives in, for a referrer in `tenant`.
    pub fn tenant_for<'a>(&self, tenant: &'a str) -> &'a str {
        if self.platform {
            crate::store::PLATFORM_TENANT
        } else {
            tenant
        }
    }
}

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

/// Where a new provider `name` from `principal` is stored: `platform:<name>` in the
/// platform layer (platform admins only), else the caller's own, or the tenant's
/// shared one for a tenant admin.
///
/// # Errors
/// INVALID_ARGUMENT for a malformed name; PERMISSION_DENIED for the platform layer
/// without the platform admin role.
pub fn provider_key(principal: &Principal, name: &str) -> Result<ProviderRef, ApiError> {
    if let Some(plain) = name.strip_prefix(PLATFORM_PREFIX) {
        provider_name("name", plain)?;
        if !principal.is_platform_admin() {
            return Err(ApiError::denied(
                "the platform layer (`platform:` names) is changed only by platform admins",
            ));
        }
        return Ok(ProviderRef::platform(plain));
    }
    provider_name("name", name)?;
    Ok(ProviderRef::tenant(if principal.is_admin() {
        name.to_owned()
    } else {
        format!("{}/{name}", principal.owner())
    }))
}

/// What `name` may mean to `principal`, in resolution order: for users their own,
/// the tenant's shared one, the platform's; `platform:<name>` only the platform's.
///
/// # Errors
/// INVALID_ARGUMENT for a malformed name (users may not address scoped keys).
pub fn provider_candidates(
    principal: &Principal,
    name: &str,
) -> Result<Vec<ProviderRef>, ApiError> {
    if let Some(plain) = name.strip_prefix(PLATFORM_PREFIX) {
        provider_name("provider", plain)?;
        return Ok(vec![ProviderRef::platform(plain)]);
    }
    let keys = tenant_candidates(principal, name)?;
    let platform = (!name.contains('/')).then(|| ProviderRef::platform(name));
    Ok(keys
        .into_iter()
        .map(ProviderRef::tenant)
        .chain(platform)
        .collect())
}

/// The keys in the caller's tenant `name` may mean, in resolution order.
///
/// A key (`<owner>/<name>`) means only itself: admins address any; a user another's
/// only where the attribute rules admit them (decided on the record found).
fn tenant_candidates(principal: &Principal, name: &str) -> Result<Vec<String>, ApiError> {
    if let Some((owner, plain)) = name.split_once('/') {
        if owner.is_empty() || provider_name("provider", plain).is_err() {
            // Not a key of anyone's: it does not exist for this caller.
            return Err(ApiError::not_found(format!(
                "provider {} not found",
                super::limits::shown(name)
            )));
        }
        return Ok(vec![name.to_owned()]);
    }
    provider_name("provider", name)?;
    if principal.is_admin() {
        return Ok(vec![name.to_owned()]);
    }
    Ok(vec![
        format!("{}/{name}", principal.owner()),
        name.to_owned(),
    ])
}

/// The references `owner` (acting as a plain user, e.g. through a sandbox) may mean
/// by `name`, in resolution order.
pub fn owner_candidates(owner: &str, name: &str) -> Vec<String> {
    if name.starts_with(PLATFORM_PREFIX) || name.contains('/') {
        return vec![name.to_owned()];
    }
    vec![
        format!("{owner}/{name}"),
        name.to_owned(),
        ProviderRef::platform(name).reference(),
    ]
}

/// How `principal` sees the provider `reference`.
pub fn visible_provider_name(principal: &Principal, reference: &str) -> String {
    if principal.is_admin() || reference.starts_with(PLATFORM_PREFIX) {
        return reference.to_owned();
    }
    reference
        .strip_prefix(&format!("{}/", principal.owner()))
        .unwrap_or(reference)
        .to_owned()
}

/// How the owner of the provider `reference` names it.
pub fn visible_provider_name_of_owner(owner: &str, reference: &str) -> String {
    reference
        .strip_prefix(&format!("{owner}/"))
        .unwrap_or(reference)
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

/// The driver workspace for `owner`'s workspace `name` (empty: their default) in
/// `tenant`: one per owner and tenant, so owners never share files.
///
/// # Errors
/// INVALID_ARGUMENT for a malformed name.
pub fn workspace(tenant: &str, owner: &str, name: &str) -> Result<String, ApiError> {
    // The default tenant keeps the workspaces it had before tenants.
    let digest = if tenant == crate::store::DEFAULT_TENANT {
        Sha256::digest(owner.as_bytes())
    } else {
        Sha256::digest(format!("{tenant}\0{owner}").as_bytes())
    };
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
            platform_admin: false,
            user_role: true,
            scopes: None,
            bearer: None,
        }))
    }

    #[test]
    fn users_get_scoped_keys_and_fall_back_to_shared() {
        let alice = user("alice", false);
        assert_eq!(
            provider_key(&alice, "openai").unwrap(),
            ProviderRef::tenant("alice/openai")
        );
        assert_eq!(
            provider_candidates(&alice, "openai").unwrap(),
            [
                ProviderRef::tenant("alice/openai"),
                ProviderRef::tenant("openai"),
                ProviderRef::platform("openai")
            ]
        );
        assert_eq!(
            provider_candidates(&alice, "platform:openai").unwrap(),
            [ProviderRef::platform("openai")]
        );
        let denied = provider_key(&alice, "platform:openai").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        // Another user's key means only that key (the rules decide on the record).
        assert_eq!(
            provider_candidates(&alice, "bob/openai").unwrap(),
            [ProviderRef::tenant("bob/openai")]
        );
        let malformed = provider_candidates(&alice, "/openai").unwrap_err();
        assert_eq!(malformed.code(), tonic::Code::NotFound);
        assert_eq!(visible_provider_name(&alice, "alice/openai"), "openai");
        assert_eq!(visible_provider_name(&alice, "openai"), "openai");
    }

    #[test]
    fn admins_create_shared_and_address_keys() {
        let admin = user("root", true);
        assert_eq!(
            provider_key(&admin, "openai").unwrap(),
            ProviderRef::tenant("openai")
        );
        assert_eq!(
            provider_candidates(&admin, "alice/openai").unwrap(),
            [ProviderRef::tenant("alice/openai")]
        );
        // A tenant admin is no platform admin.
        assert!(provider_key(&admin, "platform:openai").is_err());
        assert_eq!(
            visible_provider_name(&admin, "alice/openai"),
            "alice/openai"
        );
        assert_eq!(route_key(&admin), "inference.local");
        assert_eq!(route_key(&user("bob", false)), "inference.local/bob");
    }

    #[test]
    fn platform_references_round_trip_and_never_meet_a_tenant_key() {
        for place in [
            ProviderRef::platform("openai"),
            ProviderRef::tenant("openai"),
            ProviderRef::tenant("alice/openai"),
        ] {
            assert_eq!(ProviderRef::parse(&place.reference()), place);
        }
        // Tenant keys are names (no ':') or `<owner>/<name>`: never `platform:…`.
        assert!(provider_name("provider", "platform:openai").is_err());
        assert_eq!(
            ProviderRef::platform("x").tenant_for("acme"),
            crate::store::PLATFORM_TENANT
        );
        assert_eq!(ProviderRef::tenant("x").tenant_for("acme"), "acme");
    }

    #[test]
    fn names_are_validated_with_the_field_named() {
        let error = dns_label("name", "Bad_Name", 63).unwrap_err();
        assert!(error.to_string().starts_with("name \"Bad_Name\""));
        assert!(provider_name("provider", "").is_err());
        assert!(workspace("default", "alice", "x/y").is_err());
        assert_ne!(
            workspace("default", "alice", "").unwrap(),
            workspace("default", "bob", "").unwrap()
        );
        assert_ne!(
            workspace("acme", "alice", "").unwrap(),
            workspace("globex", "alice", "").unwrap(),
            "one owner key in two tenants gets two workspaces"
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
