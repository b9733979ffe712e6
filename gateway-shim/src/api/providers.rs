//! Providers: a named credential in the credentials driver plus its type, endpoint and
//! config. Credential values are never stored or returned, only the credential's name.
//!
//! Three layers, each its own store partition: the caller's own providers and the
//! tenant's shared ones live in the caller's tenant; the platform layer's
//! (`platform:<name>`, set by platform admins) in [`crate::store::PLATFORM_TENANT`],
//! usable by every tenant.

use super::error::ApiError;
use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::names::{self, ProviderRef, client_labels};
use super::sandboxes;
use super::{Core, credential_access, limits};
use crate::auth::Principal;
use crate::authz::access::access_labels;
use crate::authz::access_rules::{Attributes, check_name};
use crate::authz::{Access, Action};
use crate::store::{Filter, Kind, PLATFORM_TENANT, Record, Store, StoreError};

/// Creates a provider: the caller's own, or a shared one when the caller is an admin.
pub(super) async fn create(
    core: &Core,
    who: &Principal,
    provider: pb::Provider,
) -> Result<pb::Provider, ApiError> {
    let place = names::provider_key(who, &provider.name)?;
    check_fields(&provider)?;
    let access = access_attributes(&provider.access)?;
    let store = layer(core, who, &place);
    let max = core.limits.max_providers_per_owner;
    limits::owner_count(&store, Kind::Provider, who.owner(), "providers", max).await?;
    let key = place.key.clone();
    credential_access::check_at_write(
        core,
        credential_access::holder_of(&key, who.owner()),
        &provider.credential,
    )
    .await?;
    let stored = pb::Provider {
        name: key.clone(),
        owner: who.owner().to_owned(),
        labels: client_labels(provider.labels).into_iter().collect(),
        resource_version: 0,
        access: attributes_message(&access),
        ..provider
    };
    let mut record = Record::new(Kind::Provider, &key, &key, who.owner());
    record.labels = stored.labels.clone().into_iter().collect();
    record.labels.extend(access_labels(&access));
    record.body = stored.encode_to_vec();
    record.version = store.create(&record).await.map_err(|error| match error {
        StoreError::AlreadyExists { .. } => ApiError::already_exists(format!(
            "provider {:?} already exists",
            stored_name(who, &place.reference())
        )),
        other => other.into(),
    })?;
    record.tenant = store.tenant().to_owned();
    tracing::info!(provider = %key, tenant = %record.tenant, owner = %who.owner(), "provider created");
    Ok(view(who, &record))
}

/// A provider the caller may use, by the name they give.
pub(super) async fn get(
    core: &Core,
    who: &Principal,
    name: &str,
) -> Result<pb::Provider, ApiError> {
    Ok(view(who, &find(core, who, name, Action::Read).await?))
}

/// The caller's own providers, the tenant's shared ones and the platform's (every one
/// of the tenant for its admins).
pub(super) async fn list(core: &Core, who: &Principal) -> Result<Vec<pb::Provider>, ApiError> {
    let mut records = core
        .records(who)
        .list(
            Kind::Provider,
            &Access::with_rules(who, &core.access_rules).provider_filter(),
        )
        .await?;
    records.extend(
        core.store
            .in_tenant(PLATFORM_TENANT)
            .list(Kind::Provider, &Filter::default())
            .await?,
    );
    Ok(records.iter().map(|record| view(who, record)).collect())
}

/// The store partition of `place`: the platform layer or the caller's tenant.
fn layer(core: &Core, who: &Principal, place: &ProviderRef) -> Store {
    core.store.in_tenant(place.tenant_for(&who.tenant))
}

/// The reference to the provider `record` that sandboxes and routes store.
pub(super) fn reference(record: &Record) -> String {
    ProviderRef {
        platform: record.tenant == PLATFORM_TENANT,
        key: record.key.clone(),
    }
    .reference()
}

/// Replaces a provider the caller owns (admins: any).
pub(super) async fn update(
    core: &Core,
    who: &Principal,
    provider: pb::Provider,
) -> Result<pb::Provider, ApiError> {
    check_fields(&provider)?;
    let access = access_attributes(&provider.access)?;
    let mut record = find_owned(core, who, &provider.name, Action::Update).await?;
    if provider.resource_version != 0 && provider.resource_version != record.version {
        return Err(ApiError::conflict(format!(
            "provider {:?} is at version {}, not {}: read it again and retry",
            provider.name, record.version, provider.resource_version
        )));
    }
    let current = decode(&record)?;
    credential_access::check_at_write(
        core,
        credential_access::holder_of(&record.key, &record.owner),
        &provider.credential,
    )
    .await?;
    let stored = pb::Provider {
        name: record.key.clone(),
        owner: current.owner,
        labels: client_labels(provider.labels).into_iter().collect(),
        resource_version: 0,
        access: attributes_message(&access),
        ..provider
    };
    record.labels = stored.labels.clone().into_iter().collect();
    record.labels.extend(access_labels(&access));
    record.body = stored.encode_to_vec();
    record.version = core.store.in_tenant(&record.tenant).update(&record).await?;
    Ok(view(who, &record))
}

/// Deletes a provider the caller owns, unless a sandbox has it attached or an
/// inference route uses it.
pub(super) async fn delete(core: &Core, who: &Principal, name: &str) -> Result<(), ApiError> {
    let record = find_owned(core, who, name, Action::Delete).await?;
    let (tenant, stored_ref) = (record.tenant.clone(), reference(&record));
    // A platform provider is referred to from every tenant; a tenant's only from it.
    let names_it = move |referrer: &Record, refs: &[String]| {
        (tenant == PLATFORM_TENANT || referrer.tenant == tenant) && refs.contains(&stored_ref)
    };
    let refers = move |referrer: &Record| match referrer.kind {
        Kind::Sandbox => {
            sandboxes::decode(referrer).is_ok_and(|s| names_it(referrer, &s.providers))
        }
        Kind::InferenceRoute => super::inference::decode(referrer)
            .is_ok_and(|route| names_it(referrer, std::slice::from_ref(&route.provider))),
        Kind::Provider | Kind::Setting | Kind::SandboxSettings | Kind::ApiKey => false,
    };
    // The check and the delete are one transaction: an attach, a route or a sandbox
    // create naming this provider either lands first and is found, or finds it gone.
    core.store
        .in_tenant(&record.tenant)
        .delete_unless_referenced(
            Kind::Provider,
            &record.key,
            record.version,
            &[Kind::Sandbox, Kind::InferenceRoute],
            &refers,
        )
        .await
        .map_err(|error| match error {
            StoreError::Referenced { by } if by.kind == Kind::Sandbox => {
                ApiError::precondition(format!(
                    "provider {name:?} is attached to sandbox {:?} ({}): detach it first",
                    by.name, by.key
                ))
            }
            StoreError::Referenced { by } => ApiError::precondition(format!(
                "provider {name:?} serves the inference route {:?}: point the route elsewhere first",
                by.key
            )),
            other => other.into(),
        })?;
    tracing::info!(provider = %record.key, "provider deleted");
    Ok(())
}

/// The provider `name` means to `who`: their own first, then the tenant's shared one,
/// then the platform's. Another user's (or tenant's) provider is NOT_FOUND.
///
/// A user may also name another's provider by its key (`<owner>/<name>`) when the
/// attribute rules let them do `action` to it.
pub(super) async fn find(
    core: &Core,
    who: &Principal,
    name: &str,
    action: Action,
) -> Result<Record, ApiError> {
    let access = Access::with_rules(who, &core.access_rules);
    for place in names::provider_candidates(who, name)? {
        if let Some(record) = layer(core, who, &place)
            .get(Kind::Provider, &place.key)
            .await?
            && (place.platform || access.may(action, &record.key, &record.labels))
        {
            return Ok(record);
        }
    }
    Err(ApiError::not_found(format!(
        "provider {} not found",
        limits::shown(name)
    )))
}

/// A provider the caller may change: their own (tenant admins: any of the tenant;
/// platform admins: the platform's too).
async fn find_owned(
    core: &Core,
    who: &Principal,
    name: &str,
    action: Action,
) -> Result<Record, ApiError> {
    let record = if who.is_admin() || name.contains('/') {
        // Admins change any of the tenant's; users another's only by the rules.
        find(core, who, name, action).await?
    } else {
        names::provider_candidates(who, name)?;
        let place = names::provider_key(who, name).or_else(|_| find_denied(name))?;
        let own = layer(core, who, &place)
            .get(Kind::Provider, &place.key)
            .await?;
        match own {
            Some(record) => record,
            None => {
                find(core, who, name, Action::Read).await?;
                return Err(ApiError::denied(format!(
                    "provider {name:?} is shared: only an admin can change it"
                )));
            }
        }
    };
    if record.tenant == PLATFORM_TENANT && !who.is_platform_admin() {
        return Err(ApiError::denied(format!(
            "provider {name:?} is the platform's: only a platform admin can change it"
        )));
    }
    Ok(record)
}

/// A name the caller could use but never change (a platform one, for a user).
fn find_denied(name: &str) -> Result<ProviderRef, ApiError> {
    Err(ApiError::denied(format!(
        "provider {name:?} is the platform's: only a platform admin can change it"
    )))
}

/// Decodes a provider record's body.
pub(super) fn decode(record: &Record) -> Result<pb::Provider, ApiError> {
    pb::Provider::decode(record.body.as_slice())
        .map_err(|_| ApiError::internal(format!("provider record {:?} is corrupt", record.key)))
}

/// Access attributes as given, checked: names and values as
/// [`check_name`] allows, at most 8 categories and 32 values.
fn access_attributes(given: &[pb::AccessAttribute]) -> Result<Attributes, ApiError> {
    let mut attributes = Attributes::new();
    for attribute in given {
        check_name(&attribute.category).map_err(|e| ApiError::invalid(format!("access: {e}")))?;
        for value in &attribute.values {
            check_name(value).map_err(|e| ApiError::invalid(format!("access: {e}")))?;
        }
        attributes
            .entry(attribute.category.clone())
            .or_default()
            .extend(attribute.values.iter().cloned());
    }
    attributes.retain(|_, values| !values.is_empty());
    let values: usize = attributes
        .values()
        .map(std::collections::BTreeSet::len)
        .sum();
    if attributes.len() > 8 || values > 32 {
        return Err(ApiError::invalid(
            "access: at most 8 categories and 32 values in all",
        ));
    }
    Ok(attributes)
}

fn attributes_message(attributes: &Attributes) -> Vec<pb::AccessAttribute> {
    attributes
        .iter()
        .map(|(category, values)| pb::AccessAttribute {
            category: category.clone(),
            values: values.iter().cloned().collect(),
        })
        .collect()
}

fn view(who: &Principal, record: &Record) -> pb::Provider {
    let mut provider = decode(record).unwrap_or_default();
    provider.name = names::visible_provider_name(who, &reference(record));
    provider.resource_version = record.version;
    provider
}

fn stored_name(who: &Principal, key: &str) -> String {
    names::visible_provider_name(who, key)
}

fn check_fields(provider: &pb::Provider) -> Result<(), ApiError> {
    limits::provider(provider)?;
    if provider.credential.trim().is_empty() {
        return Err(ApiError::invalid(
            "credential: name the credential in the credentials driver that backs this provider",
        ));
    }
    if provider.r#type.trim().is_empty() {
        return Err(ApiError::invalid(
            "type: say what the provider is, e.g. openai",
        ));
    }
    Ok(())
}
