//! Local API keys and the kill switch, managed by admins: a tenant's admins manage the
//! keys and consumers of their tenant; platform admins any tenant's, and block whole
//! tenants. A key is generated here, shown once, and stored only as its SHA-256 (in the
//! platform's partition, owned by the key's tenant); another tenant's key answers
//! NOT_FOUND. Blocks are settings records read by [`crate::auth::api_key`] on every
//! API-key call.

use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::Core;
use super::error::ApiError;
use crate::auth::Principal;
use crate::auth::api_key::{PREFIX, blocked_key, key_id};
use crate::store::{Filter, Kind, PLATFORM_TENANT, Record, Store, StoreError};

fn keys(core: &Core) -> Store {
    core.store.in_tenant(PLATFORM_TENANT)
}

/// The tenant a request names: the caller's when empty; another only for platform
/// admins (NOT_FOUND otherwise, as if it did not exist).
fn tenant_of(who: &Principal, named: &str) -> Result<String, ApiError> {
    if named.is_empty() || named == who.tenant {
        return Ok(who.tenant.clone());
    }
    if !crate::auth::is_label_value(named) {
        return Err(ApiError::invalid(format!(
            "tenant {} is not a tenant name",
            super::limits::shown(named)
        )));
    }
    if who.is_platform_admin() {
        Ok(named.to_owned())
    } else {
        Err(ApiError::not_found(format!(
            "tenant {} not found",
            super::limits::shown(named)
        )))
    }
}

fn check_consumer(consumer: &str) -> Result<(), ApiError> {
    super::limits::text("consumer", consumer, 253)?;
    if consumer.trim().is_empty() || consumer.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "consumer: name who calls with the key (e.g. ci-bot)",
        ));
    }
    Ok(())
}

/// Creates a key for `consumer` of the request's tenant; returns it once.
pub(super) async fn create(
    core: &Core,
    who: &Principal,
    request: pb::CreateApiKeyRequest,
) -> Result<pb::CreatedApiKey, ApiError> {
    check_consumer(&request.consumer)?;
    let tenant = tenant_of(who, &request.tenant)?;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|_| ApiError::internal("no randomness for a key"))?;
    let key = format!(
        "{PREFIX}{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let (digest, id) = key_id(&key);
    let info = pb::ApiKey {
        id: id.clone(),
        consumer: request.consumer,
        tenant: tenant.clone(),
        active: true,
        rate_per_min: request.rate_per_min,
        burst: request.burst,
        created_at_ms: now_ms(),
    };
    let mut record = Record::new(Kind::ApiKey, &digest, &id, &tenant);
    record.body = info.encode_to_vec();
    keys(core).create(&record).await?;
    tracing::info!(key = %id, consumer = %info.consumer, %tenant, by = %who.owner(), "API key created");
    Ok(pb::CreatedApiKey {
        info: Some(info),
        key,
    })
}

/// The keys of the caller's tenant (every tenant's for platform admins).
pub(super) async fn list(core: &Core, who: &Principal) -> Result<Vec<pb::ApiKey>, ApiError> {
    let filter = Filter {
        owners: (!who.is_platform_admin()).then(|| vec![who.tenant.clone()]),
        ..Filter::default()
    };
    let records = keys(core).list(Kind::ApiKey, &filter).await?;
    records.iter().map(decode).collect()
}

/// Revokes the key `id` (kept, inactive, so it is never asked about again).
pub(super) async fn revoke(
    core: &Core,
    who: &Principal,
    reference: &pb::ApiKeyRef,
) -> Result<pb::ApiKey, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "API key {} not found",
            super::limits::shown(&reference.id)
        ))
    };
    let found = list(core, who)
        .await?
        .into_iter()
        .find(|key| key.id == reference.id)
        .ok_or_else(not_found)?;
    let store = keys(core);
    // Idempotent: a key already revoked (by a concurrent revoke too) answers as revoked;
    // a revoke that lost a race to another write of the key reads it again.
    for _ in 0..REVOKE_ATTEMPTS {
        let mut record = store
            .get_by_name(Kind::ApiKey, &found.tenant, &found.id)
            .await?
            .ok_or_else(not_found)?;
        let mut info = decode(&record)?;
        if !info.active {
            return Ok(info);
        }
        info.active = false;
        record.body = info.encode_to_vec();
        match store.update(&record).await {
            Ok(_) => {
                tracing::info!(key = %info.id, by = %who.owner(), "API key revoked");
                return Ok(info);
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::conflict(format!(
        "API key {}: changed by others while revoking; retry",
        found.id
    )))
}

/// How often a revoke reads the key again after losing a race.
const REVOKE_ATTEMPTS: usize = 5;

/// Sets or clears a block on a tenant's (or one consumer's) API keys.
pub(super) async fn set_blocked(
    core: &Core,
    who: &Principal,
    request: pb::SetCallerBlockedRequest,
) -> Result<(), ApiError> {
    let tenant = tenant_of(who, &request.tenant)?;
    let consumer = (!request.consumer.is_empty()).then_some(request.consumer.as_str());
    if let Some(consumer) = consumer {
        check_consumer(consumer)?;
    } else if !who.is_platform_admin() {
        // The method's declared role is satisfied; what is missing is an argument
        // this caller may give.
        return Err(ApiError::invalid(
            "consumer: name one (blocking a whole tenant needs the platform admin role)",
        ));
    }
    let key = blocked_key(&tenant, consumer);
    let store = keys(core);
    if request.blocked {
        let record = Record::new(Kind::Setting, &key, &key, &tenant);
        match store.create(&record).await {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    } else {
        store.delete(Kind::Setting, &key, None).await?;
    }
    tracing::info!(%tenant, consumer = consumer.unwrap_or("*"), blocked = request.blocked, by = %who.owner(), "API-key block changed");
    Ok(())
}

fn decode(record: &Record) -> Result<pb::ApiKey, ApiError> {
    pb::ApiKey::decode(record.body.as_slice())
        .map_err(|_| ApiError::internal(format!("API key record {:?} is corrupt", record.name)))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
