//! Inference routes: each user may set their own (`inference.local/<owner>`); an
//! admin's is the global one. Reads fall back from the caller's own to the global.

use super::error::ApiError;
use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::names::{self, INFERENCE_ROUTE};
use super::{Core, providers};
use crate::auth::Principal;
use crate::store::{Kind, Record, StoreError, Write};

/// Sets the caller's route (compare-and-set when `resource_version` is given).
pub(super) async fn set(
    core: &Core,
    who: &Principal,
    request: pb::SetInferenceRouteRequest,
) -> Result<pb::InferenceRoute, ApiError> {
    super::limits::text("model", &request.model, 256)?;
    if request.model.trim().is_empty() {
        return Err(ApiError::invalid("model: name the model the route serves"));
    }
    let provider = providers::find(core, who, &request.provider).await?;
    let key = names::route_key(who);
    let route = pb::InferenceRoute {
        name: INFERENCE_ROUTE.into(),
        provider: provider.key,
        model: request.model,
        owner: who.owner().to_owned(),
        resource_version: 0,
    };
    let existing = core.store.get(Kind::InferenceRoute, &key).await?;
    let record = match existing {
        Some(mut record) => {
            if request.resource_version != 0 && request.resource_version != record.version {
                return Err(ApiError::conflict(format!(
                    "the route is at version {}, not {}: read it again and retry",
                    record.version, request.resource_version
                )));
            }
            record.body = route.encode_to_vec();
            record.version = write_naming(core, Write::Update(&record), &route.provider).await?;
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
            record.version = write_naming(core, Write::Create(&record), &route.provider).await?;
            record
        }
    };
    Ok(view(who, &record))
}

/// Writes a route while its provider still exists (one transaction with the check).
async fn write_naming(core: &Core, write: Write<'_>, provider: &str) -> Result<u64, ApiError> {
    core.store
        .write_if_present(write, &[(Kind::Provider, provider)])
        .await
        .map_err(|error| match error {
            StoreError::MissingReference { .. } => {
                ApiError::not_found("the route's provider was deleted meanwhile")
            }
            other => other.into(),
        })
}

/// The caller's route, else the global one.
pub(super) async fn get(core: &Core, who: &Principal) -> Result<pb::InferenceRoute, ApiError> {
    let mut keys = vec![names::route_key(who)];
    if !who.is_admin() {
        keys.push(INFERENCE_ROUTE.to_owned());
    }
    for key in keys {
        if let Some(record) = core.store.get(Kind::InferenceRoute, &key).await? {
            return Ok(view(who, &record));
        }
    }
    Err(ApiError::not_found(
        "no inference route: set one with `gateway-shim inference set --provider <name> --model <model>` (or ask an admin for a global one)",
    ))
}

/// Deletes the caller's own route.
pub(super) async fn delete(core: &Core, who: &Principal) -> Result<(), ApiError> {
    if core
        .store
        .delete(Kind::InferenceRoute, &names::route_key(who), None)
        .await?
    {
        Ok(())
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

fn view(who: &Principal, record: &Record) -> pb::InferenceRoute {
    let mut route = decode(record).unwrap_or_default();
    route.name = INFERENCE_ROUTE.into();
    route.provider = names::visible_provider_name(who, &route.provider);
    route.resource_version = record.version;
    route
}
