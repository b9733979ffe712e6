//! Calls sandboxes make with their own token (resolving also open to users): resolve
//! a provider's credential, and fetch the inference bundle (the owner's route, else the
//! tenant's, else the platform's, always presented as `inference.local`, with the
//! headers the inference client must send: the route's static ones and the gateway's
//! fairness and objective headers, see [`super::fairness`]).

use super::error::ApiError;
use proto::pb::gateway::v1 as pb;

use super::names::{self, INFERENCE_ROUTE};
use super::provider_token::{self, CredentialSource};
use super::{Core, credential_access, inference, providers, sandboxes};
use crate::auth::{Principal, SandboxIdentity, owner};
use crate::authz::{Access, Action};
use crate::drivers::DriverError;
use crate::store::{Kind, Record};

/// Resolves a provider's credential: for a sandbox, one attached to it (no subject
/// token: a sandbox holds none of its owner's); for a user, one they may use, with
/// their own bearer token as the subject token of a token exchange.
pub(super) async fn resolve(
    core: &Core,
    who: &Principal,
    name: &str,
) -> Result<(pb::ResolveProviderCredentialResponse, CredentialSource), ApiError> {
    let (record, subject) = match who.user() {
        Some(user) => (
            providers::find(core, who, name, Action::Use).await?,
            user.bearer.as_ref(),
        ),
        None => {
            // `name`, `owner/name` or `platform:name`, as attached.
            let key = names::ProviderRef::parse(name).key;
            names::provider_name("provider", key.rsplit('/').next().unwrap_or(&key))?;
            let (identity, sandbox) = calling_sandbox(core, who).await?;
            let reference = names::owner_candidates(&identity.owner, name)
                .into_iter()
                .find(|key| sandbox.0.providers.contains(key))
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "provider {} is not attached to this sandbox",
                        super::limits::shown(name)
                    ))
                })?;
            let place = names::ProviderRef::parse(&reference);
            let tenant = place.tenant_for(&who.tenant);
            let provider = load_provider(core, tenant, &place.key).await?;
            still_usable(core, &sandbox.1, &provider, name)?;
            (provider, None)
        }
    };
    let provider = authorized(core, &record).await?;
    let token = match provider_token::tenant_token(core, &who.tenant, &record).await {
        Some(token) => token,
        None => provider_token::driver_token(core.credentials()?, &provider, subject)
            .await
            .map_err(|error| explain_missing_subject(error, &provider, subject.is_none()))?,
    };
    let source = token.source;
    Ok((
        pb::ResolveProviderCredentialResponse {
            token: token.token.expose().to_owned(),
            token_type: token.token_type,
            expires_at_ms: token.expires_at_ms,
            endpoint: provider.endpoint,
            provider_type: provider.r#type,
        },
        source,
    ))
}

/// A token-exchange credential resolved without a subject token (the driver says so by
/// its machine-readable reason, not by message text): the caller cannot fix the
/// request, the set-up is wrong for this caller.
fn explain_missing_subject(
    error: DriverError,
    provider: &pb::Provider,
    no_subject: bool,
) -> ApiError {
    if no_subject && error.reason() == Some(proto::reason::SUBJECT_TOKEN_REQUIRED) {
        return ApiError::precondition(format!(
            "provider {:?} uses credential {:?}, a token exchange that needs its owner's own token; \
             a sandbox (or the local token) holds none: resolve it as the user with an OIDC token, \
             or back the provider with a static or client_credentials credential",
            provider.name, provider.credential
        ));
    }
    error.into()
}

/// The inference bundle of the calling sandbox (empty when no route is set).
pub(super) async fn bundle(
    core: &Core,
    who: &Principal,
) -> Result<(pb::InferenceBundle, Option<CredentialSource>), ApiError> {
    let (identity, sandbox) = calling_sandbox(core, who).await?;
    let mut route_record = None;
    for (store, key) in inference::candidates_for_owner(core, &who.tenant, &identity.owner) {
        if let Some(record) = store.get_cached(Kind::InferenceRoute, &key).await? {
            route_record = Some(record);
            break;
        }
    }
    let Some(route_record) = route_record else {
        return Ok((pb::InferenceBundle { routes: Vec::new() }, None));
    };
    let route = inference::decode(&route_record)?;
    let (tenant, key) = inference::provider_of(&route_record, &route);
    let provider_record = load_provider(core, &tenant, &key).await?;
    still_usable(core, &sandbox.1, &provider_record, INFERENCE_ROUTE)?;
    let provider = authorized(core, &provider_record).await?;
    let token = match provider_token::tenant_token(core, &who.tenant, &provider_record).await {
        Some(token) => token,
        None => provider_token::driver_token(core.credentials()?, &provider, None).await?,
    };
    let mut headers = inference::static_headers(&route);
    headers.extend(core.fairness.headers(&who.tenant, &sandbox.1));
    Ok((
        pb::InferenceBundle {
            routes: vec![pb::ResolvedRoute {
                name: INFERENCE_ROUTE.into(),
                endpoint: provider.endpoint,
                model: route.model,
                provider_type: provider.r#type,
                api_key: token.token.expose().to_owned(),
                expires_at_ms: token.expires_at_ms,
                headers: headers.into_iter().collect(),
            }],
        },
        Some(token.source),
    ))
}

/// The sandbox the token was minted for, which must still exist with that owner (a
/// token minted before owner keys were namespaced carries the owner's old key); the
/// identity returned carries the record's owner key.
async fn calling_sandbox(
    core: &Core,
    who: &Principal,
) -> Result<(SandboxIdentity, (pb::Sandbox, Record)), ApiError> {
    let mut identity = who
        .sandbox()
        .cloned()
        .ok_or_else(|| ApiError::denied("this call is for sandboxes"))?;
    let record = calling_sandbox_record(core, who).await?;
    identity.owner = record.owner.clone();
    Ok((identity, (sandboxes::decode(&record)?, record)))
}

/// The record of the sandbox whose token made the call: it must exist, still belong to
/// the owner the token names and not be stopped.
pub(super) async fn calling_sandbox_record(
    core: &Core,
    who: &Principal,
) -> Result<Record, ApiError> {
    let identity = who
        .sandbox()
        .ok_or_else(|| ApiError::denied("this call is for sandboxes"))?;
    let record: Option<Record> = core
        .records(who)
        .get_cached(Kind::Sandbox, &identity.id)
        .await?;
    match record {
        Some(record) if sandboxes::is_stopped(&record) => Err(ApiError::unauthenticated(
            "this sandbox is stopped: its token works again once it is started",
        )),
        Some(record)
            if record.owner == identity.owner
                || owner::legacy_form(&record.owner).as_deref() == Some(&identity.owner) =>
        {
            Ok(record)
        }
        _ => Err(ApiError::unauthenticated("this sandbox no longer exists")),
    }
}

/// Whether the sandbox `sandbox`'s owner may still use `provider` (their own, the
/// tenant's or the platform's; another user's only while the attribute rules admit
/// the owner's attributes as stamped at create); NOT_FOUND otherwise.
fn still_usable(
    core: &Core,
    sandbox: &Record,
    provider: &Record,
    name: &str,
) -> Result<(), ApiError> {
    if provider.tenant == crate::store::PLATFORM_TENANT {
        return Ok(());
    }
    let attributes = sandboxes::owner_attributes(sandbox);
    let access = Access::user(&sandbox.owner).having(&attributes, &core.access_rules);
    if access.may(Action::Use, &provider.key, &provider.labels) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "provider {} is no longer shared with this sandbox's owner",
            super::limits::shown(name)
        )))
    }
}

async fn load_provider(core: &Core, tenant: &str, key: &str) -> Result<Record, ApiError> {
    core.store
        .in_tenant(tenant)
        .get_cached(Kind::Provider, key)
        .await?
        .ok_or_else(|| {
            ApiError::precondition(format!(
                "provider {key:?} was deleted; ask the sandbox's owner to fix it"
            ))
        })
}

/// The provider in `record`, once its credential is checked against the policy.
async fn authorized(core: &Core, record: &Record) -> Result<pb::Provider, ApiError> {
    let provider = providers::decode(record)?;
    credential_access::check_at_resolve(
        core,
        credential_access::holder_of(&record.key, &record.owner),
        &names::visible_provider_name_of_owner(&record.owner, &record.key),
        &provider.credential,
    )
    .await?;
    Ok(provider)
}
