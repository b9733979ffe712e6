//! Calls sandboxes make with their own token: resolve an attached provider's
//! credential, and fetch the inference bundle (the owner's route, else the global one,
//! always presented as `inference.local`).

use proto::pb::gateway::v1 as pb;
use tonic::Status;

use super::names::{self, INFERENCE_ROUTE};
use super::{Core, inference, providers, sandboxes};
use crate::auth::{Principal, SandboxIdentity};
use crate::store::{Kind, Record};

/// Resolves the credential of a provider attached to the calling sandbox.
pub(super) async fn resolve(
    core: &Core,
    who: &Principal,
    name: &str,
) -> Result<pb::ResolveProviderCredentialResponse, Status> {
    let (identity, sandbox) = calling_sandbox(core, who).await?;
    names::provider_name("provider", name)?;
    let key = names::owner_candidates(&identity.owner, name)
        .into_iter()
        .find(|key| sandbox.providers.contains(key))
        .ok_or_else(|| {
            Status::not_found(format!("provider {name:?} is not attached to this sandbox"))
        })?;
    let provider = load_provider(core, &key).await?;
    let token = core
        .credentials()?
        .resolve(&provider.credential, None)
        .await?;
    Ok(pb::ResolveProviderCredentialResponse {
        token: token.token,
        token_type: token.token_type,
        expires_at_ms: token.expires_at_ms,
        endpoint: provider.endpoint,
        provider_type: provider.r#type,
    })
}

/// The inference bundle of the calling sandbox (empty when no route is set).
pub(super) async fn bundle(core: &Core, who: &Principal) -> Result<pb::InferenceBundle, Status> {
    let (identity, _) = calling_sandbox(core, who).await?;
    let mut route_record = None;
    for key in names::route_candidates_for_owner(&identity.owner) {
        if let Some(record) = core.store.get(Kind::InferenceRoute, &key).await? {
            route_record = Some(record);
            break;
        }
    }
    let Some(route_record) = route_record else {
        return Ok(pb::InferenceBundle { routes: Vec::new() });
    };
    let route = inference::decode(&route_record)?;
    let provider = load_provider(core, &route.provider).await?;
    let token = core
        .credentials()?
        .resolve(&provider.credential, None)
        .await?;
    Ok(pb::InferenceBundle {
        routes: vec![pb::ResolvedRoute {
            name: INFERENCE_ROUTE.into(),
            endpoint: provider.endpoint,
            model: route.model,
            provider_type: provider.r#type,
            api_key: token.token,
            expires_at_ms: token.expires_at_ms,
        }],
    })
}

/// The sandbox the token was minted for, which must still exist with that owner.
async fn calling_sandbox(
    core: &Core,
    who: &Principal,
) -> Result<(SandboxIdentity, pb::Sandbox), Status> {
    let identity = who
        .sandbox()
        .cloned()
        .ok_or_else(|| Status::permission_denied("this call is for sandboxes"))?;
    let record: Option<Record> = core.store.get(Kind::Sandbox, &identity.id).await?;
    match record {
        Some(record) if record.owner == identity.owner => {
            Ok((identity, sandboxes::decode(&record)?))
        }
        _ => Err(Status::unauthenticated("this sandbox no longer exists")),
    }
}

async fn load_provider(core: &Core, key: &str) -> Result<pb::Provider, Status> {
    let record = core.store.get(Kind::Provider, key).await?.ok_or_else(|| {
        Status::failed_precondition(format!(
            "provider {key:?} was deleted; ask the sandbox's owner to fix it"
        ))
    })?;
    providers::decode(&record)
}
