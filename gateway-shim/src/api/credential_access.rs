//! Authorizing what a provider points at: the credential its owner may reference under
//! the operator's credential policy ([`crate::authz::credential_policy`]). Checked when a
//! provider is created or updated, and again at every resolve and bundle (a policy
//! change revokes at once). Shared providers (stored unprefixed; only admins create
//! them) are decided as an admin's.

use super::error::ApiError;

use super::Core;
use crate::authz::Holder;

/// The holder of the provider stored under `key`, owned by `owner`.
pub(super) fn holder_of<'a>(key: &str, owner: &'a str) -> Holder<'a> {
    Holder {
        owner,
        admin: !key.contains('/'),
    }
}

/// At create and update: `credential` must be one the driver serves and one `holder`
/// may reference.
///
/// # Errors
/// INVALID_ARGUMENT naming the credentials the holder may use when the driver does not
/// serve it; PERMISSION_DENIED when the policy does not grant it; the driver's status.
pub(super) async fn check_at_write(
    core: &Core,
    holder: Holder<'_>,
    credential: &str,
) -> Result<(), ApiError> {
    let catalog = core.credentials()?.list().await?;
    let policy = core.credential_policy.current();
    match catalog.get(credential) {
        None => {
            // Only names the holder may use: the list must not reveal others' credentials.
            let mut usable: Vec<&str> = catalog
                .iter()
                .filter(|(name, exchange)| policy.allows(holder, name, Some(**exchange)))
                .map(|(name, _)| name.as_str())
                .collect();
            usable.sort_unstable();
            let usable = if usable.is_empty() {
                "none (ask an admin to grant some in the credential policy)".to_owned()
            } else {
                usable.join(", ")
            };
            Err(ApiError::invalid(format!(
                "credential: the credentials driver serves no credential by that name; credentials this provider may use: {usable}"
            )))
        }
        Some(exchange) if policy.allows(holder, credential, Some(*exchange)) => Ok(()),
        Some(_) => Err(ApiError::denied(
            "credential: the gateway's credential policy does not let this provider's owner use it; ask an admin to grant it (--credential-policy)",
        )),
    }
}

/// At every resolve: the provider `name`'s credential must still be granted to its
/// holder.
///
/// # Errors
/// PERMISSION_DENIED when it no longer is; the driver's status when its kind must be
/// looked up and cannot be.
pub(super) async fn check_at_resolve(
    core: &Core,
    holder: Holder<'_>,
    name: &str,
    credential: &str,
) -> Result<(), ApiError> {
    let policy = core.credential_policy.current();
    if policy.grants(holder, credential) {
        return Ok(());
    }
    if policy.token_exchange_open() {
        let catalog = core.credentials()?.catalog().await?;
        if catalog.get(credential) == Some(&true) {
            return Ok(());
        }
    }
    Err(ApiError::denied(format!(
        "provider {name:?}: the gateway's credential policy does not let its owner use its credential; ask an admin to grant it, or point the provider at another credential"
    )))
}
