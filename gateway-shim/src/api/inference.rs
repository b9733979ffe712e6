//! Inference routes: each user may set their own (`inference.local/<owner>`); a tenant
//! admin's is the tenant's global one; a platform admin may set the platform layer's
//! (`platform: true`), which serves every tenant that has none. Reads fall back from
//! the caller's own to the tenant's to the platform's.

use std::collections::BTreeMap;

use super::error::ApiError;
use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::names::{self, INFERENCE_ROUTE, ProviderRef};
use super::{Core, limits, providers};
use crate::auth::Principal;
use crate::authz::Action;
use crate::store::{Kind, PLATFORM_TENANT, Record, Store, StoreError, Write};

/// Header names only the gateway sets on a route.
pub(super) const GATEWAY_HEADER_PREFIX: &str = "x-gateway-inference-";
/// At most this many static headers per route.
const MAX_HEADERS: usize = 16;

/// Sets the caller's route (compare-and-set when `resource_version` is given).
pub(super) async fn set(
    core: &Core,
    who: &Principal,
    request: pb::SetInferenceRouteRequest,
) -> Result<pb::InferenceRoute, ApiError> {
    limits::text("model", &request.model, 256)?;
    if request.model.trim().is_empty() {
        return Err(ApiError::invalid("model: name the model the route serves"));
    }
    check_headers(&request.headers)?;
    let (store, key) = place(core, who, request.platform)?;
    let provider = providers::find(core, who, &request.provider, Action::Use).await?;
    if request.platform && provider.tenant != PLATFORM_TENANT {
        return Err(ApiError::invalid(format!(
            "provider: the platform route serves every tenant, so its provider must be a platform one (`{}<name>`)",
            names::PLATFORM_PREFIX
        )));
    }
    let route = pb::InferenceRoute {
        name: INFERENCE_ROUTE.into(),
        provider: providers::reference(&provider),
        model: request.model,
        owner: who.owner().to_owned(),
        resource_version: 0,
        headers: request.headers,
    };
    let required = (
        Kind::Provider,
        provider.tenant.as_str(),
        provider.key.as_str(),
    );
    let existing = store.get(Kind::InferenceRoute, &key).await?;
    let record = match existing {
        Some(mut record) => {
            if request.resource_version != 0 && request.resource_version != record.version {
                return Err(ApiError::conflict(format!(
                    "the route is at version {}, not {}: read it again and retry",
                    record.version, request.resource_version
                )));
            }
            record.body = route.encode_to_vec();
            record.version = write_naming(&store, Write::Update(&record), required).await?;
            record
        }
        None if request.resource_version != 0 => {
            return Err(ApiError::conflict(
                "the route was deleted since you read it",
            ));
        }
        None => {
            let mut record = Record::new(Kind::InferenceRoute, &key, &key, who.owner());
            record.body = route.encode_to_vec();
            record.version = write_naming(&store, Write::Create(&record), required).await?;
            record
        }
    };
    Ok(view(who, &record))
}

/// Where the caller's route (or the platform's) is stored.
fn place(core: &Core, who: &Principal, platform: bool) -> Result<(Store, String), ApiError> {
    if !platform {
        return Ok((core.records(who), names::route_key(who)));
    }
    if !who.is_platform_admin() {
        return Err(ApiError::denied(
            "the platform route is changed only by platform admins",
        ));
    }
    Ok((
        core.store.in_tenant(PLATFORM_TENANT),
        INFERENCE_ROUTE.to_owned(),
    ))
}

/// Static headers: a bounded map of HTTP header names and values, never one the
/// gateway itself sets.
fn check_headers(headers: &std::collections::HashMap<String, String>) -> Result<(), ApiError> {
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::invalid(format!(
            "headers: {} entries, more than {MAX_HEADERS}",
            headers.len()
        )));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.len() > 128 {
            return Err(ApiError::invalid(format!(
                "headers: {} is not an HTTP header name",
                limits::shown(name)
            )));
        }
        if lower.starts_with(GATEWAY_HEADER_PREFIX) || lower == "authorization" {
            return Err(ApiError::invalid(format!(
                "headers: {} is set by the gateway, not by a route",
                limits::shown(name)
            )));
        }
        if http::HeaderValue::from_str(value).is_err() || value.len() > 1024 {
            return Err(ApiError::invalid(format!(
                "headers: the value of {name} is not a valid header value (visible ASCII, at most 1024 bytes)"
            )));
        }
    }
    Ok(())
}

/// Writes a route while its provider still exists (one transaction with the check).
async fn write_naming(
    store: &Store,
    write: Write<'_>,
    provider: (Kind, &str, &str),
) -> Result<u64, ApiError> {
    store
        .write_if_present(write, &[provider])
        .await
        .map_err(|error| match error {
            StoreError::MissingReference { .. } => {
                ApiError::not_found("the route's provider was deleted meanwhile")
            }
            other => other.into(),
        })
}

/// The routes that may serve `who`, in order: their own, the tenant's, the platform's.
fn candidates(core: &Core, who: &Principal) -> Vec<(Store, String)> {
    let mut places = vec![(core.records(who), names::route_key(who))];
    if !who.is_admin() {
        places.push((core.records(who), INFERENCE_ROUTE.to_owned()));
    }
    places.push((
        core.store.in_tenant(PLATFORM_TENANT),
        INFERENCE_ROUTE.to_owned(),
    ));
    places
}

/// The routes that serve the sandboxes of `owner` in `tenant`, in order.
pub(super) fn candidates_for_owner(core: &Core, tenant: &str, owner: &str) -> Vec<(Store, String)> {
    let [own, global] = names::route_candidates_for_owner(owner);
    vec![
        (core.store.in_tenant(tenant), own),
        (core.store.in_tenant(tenant), global),
        (
            core.store.in_tenant(PLATFORM_TENANT),
            INFERENCE_ROUTE.to_owned(),
        ),
    ]
}

/// The caller's route, else the tenant's, else the platform's (only the platform's
/// with `platform`).
pub(super) async fn get(
    core: &Core,
    who: &Principal,
    request: &pb::GetInferenceRouteRequest,
) -> Result<pb::InferenceRoute, ApiError> {
    let places = if request.platform {
        vec![(
            core.store.in_tenant(PLATFORM_TENANT),
            INFERENCE_ROUTE.to_owned(),
        )]
    } else {
        candidates(core, who)
    };
    for (store, key) in places {
        if let Some(record) = store.get(Kind::InferenceRoute, &key).await? {
            return Ok(view(who, &record));
        }
    }
    Err(ApiError::not_found(
        "no inference route: set one with `gateway-shim inference set --provider <name> --model <model>` (or ask an admin for a global one)",
    ))
}

/// Deletes the caller's own route (or, for a platform admin, the platform's).
pub(super) async fn delete(
    core: &Core,
    who: &Principal,
    request: &pb::DeleteInferenceRouteRequest,
) -> Result<(), ApiError> {
    let (store, key) = place(core, who, request.platform)?;
    if store.delete(Kind::InferenceRoute, &key, None).await? {
        Ok(())
    } else if request.platform {
        Err(ApiError::not_found("there is no platform route"))
    } else {
        Err(ApiError::not_found(
            "you have no inference route of your own",
        ))
    }
}

/// Decodes a route record's body.
pub(super) fn decode(record: &Record) -> Result<pb::InferenceRoute, ApiError> {
    pb::InferenceRoute::decode(record.body.as_slice())
        .map_err(|_| ApiError::internal(format!("route record {:?} is corrupt", record.key)))
}

/// The provider a route refers to: in the route's tenant, or the platform's.
pub(super) fn provider_of(record: &Record, route: &pb::InferenceRoute) -> (String, String) {
    let place = ProviderRef::parse(&route.provider);
    (place.tenant_for(&record.tenant).to_owned(), place.key)
}

/// The route's static headers, ordered.
pub(super) fn static_headers(route: &pb::InferenceRoute) -> BTreeMap<String, String> {
    route
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect()
}

fn view(who: &Principal, record: &Record) -> pb::InferenceRoute {
    let mut route = decode(record).unwrap_or_default();
    route.name = INFERENCE_ROUTE.into();
    route.provider = names::visible_provider_name(who, &route.provider);
    route.resource_version = record.version;
    route
}
