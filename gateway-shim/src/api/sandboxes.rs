//! Sandboxes: records in the store, lifecycle on the compute driver.
//!
//! Create writes the record first (must-create), then asks the driver to validate and
//! create; if the driver refuses, the record is removed and the driver's answer
//! returned. Status is what the driver last reported ([`crate::drivers::Statuses`]).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::ApiError;
use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::driver_spec::{driver_sandbox, status};
use super::names::{self, ProviderRef, client_labels, dns_label};
use super::{Core, limits, providers, sandbox_saga};
use crate::auth::{Claims, Principal};
use crate::authz::{Access, Action};
use crate::drivers::Change;
use crate::store::{Durability, Kind, Record, StoreError, Write};

/// Creates a sandbox: the record (marked pending), then the driver, in a saga that
/// finishes or rolls back whatever the caller does ([`super::sandbox_saga`]).
pub(super) async fn create(
    core: &Arc<Core>,
    who: &Principal,
    request: pb::CreateSandboxRequest,
    deadline: Option<tokio::time::Instant>,
) -> Result<pb::Sandbox, ApiError> {
    dns_label("name", &request.name, 63)?;
    limits::create(&request)?;
    let max = core.limits.max_sandboxes_per_owner;
    limits::owner_count(
        &core.records(who),
        Kind::Sandbox,
        who.owner(),
        "sandboxes",
        max,
    )
    .await?;
    let spec = request.spec.unwrap_or_default();
    let workspace = names::workspace(&who.tenant, who.owner(), &spec.workspace)?;
    let mut keys = Vec::new();
    for name in &request.providers {
        let key = providers::reference(&providers::find(core, who, name, Action::Use).await?);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let id = new_id()?;
    let sandbox = pb::Sandbox {
        id: id.clone(),
        name: request.name.clone(),
        owner: who.owner().to_owned(),
        labels: client_labels(request.labels).into_iter().collect(),
        spec: Some(spec),
        status: None,
        providers: keys,
        resource_version: 0,
        created_at_ms: now_ms(),
    };
    let mut record = Record::new(Kind::Sandbox, &id, &request.name, who.owner());
    record.tenant = who.tenant.clone();
    record.labels = sandbox.labels.clone().into_iter().collect();
    record
        .labels
        .insert(sandbox_saga::PENDING.to_owned(), "create".to_owned());
    // What the attribute rules see of the owner when the sandbox uses another's
    // provider later (a sandbox holds no identity of its owner's).
    if !who.attributes.is_empty() {
        record.labels.insert(
            OWNER_ATTRIBUTES.to_owned(),
            serde_json::to_string(&who.attributes).unwrap_or_default(),
        );
    }
    if let Some(id) = core.fairness.stamp_for(who) {
        record
            .labels
            .insert(super::fairness::FAIRNESS_LABEL.to_owned(), id);
    }
    record.body = sandbox.encode_to_vec();
    let places: Vec<ProviderRef> = sandbox
        .providers
        .iter()
        .map(|reference| ProviderRef::parse(reference))
        .collect();
    let requires: Vec<(Kind, &str, &str)> = places
        .iter()
        .map(|place| {
            (
                Kind::Provider,
                place.tenant_for(&who.tenant),
                place.key.as_str(),
            )
        })
        .collect();
    record.version = core
        .records(who)
        // Deferred: the saga's synced write clearing the mark confirms it before the
        // caller hears of the sandbox; lost with the machine, repair deletes the
        // driver's orphan.
        .write_if_present_with(Write::Create(&record), &requires, Durability::Deferred)
        .await
        .map_err(|error| match error {
            StoreError::AlreadyExists { .. } => ApiError::already_exists(format!(
                "you already have a sandbox named {:?}",
                request.name
            )),
            StoreError::MissingReference { .. } => {
                ApiError::not_found("a provider named in `providers` was deleted meanwhile")
            }
            other => other.into(),
        })?;
    let driver = driver_request(core, &sandbox, &who.tenant, &workspace);
    let record = sandbox_saga::create(core, record, driver, deadline).await?;
    tracing::info!(sandbox = %id, name = %request.name, owner = %who.owner(), "sandbox created");
    Ok(view(core, who, &record))
}

/// What the driver is asked to create: the sandbox with its freshly minted token.
fn driver_request(
    core: &Core,
    sandbox: &pb::Sandbox,
    tenant: &str,
    workspace: &str,
) -> proto::pb::compute::v1::DriverSandbox {
    let expires = SystemTime::now() + core.sandbox_token_ttl;
    let token = core.signer.mint(&Claims {
        sid: sandbox.id.clone(),
        own: sandbox.owner.clone(),
        exp: expires
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        // The default tenant's tokens look as they did before tenants.
        tnt: (tenant != crate::store::DEFAULT_TENANT).then(|| tenant.to_owned()),
    });
    driver_sandbox(sandbox, workspace, &token, &core.sandbox_endpoint)
}

/// One sandbox the caller may see.
pub(super) async fn get(
    core: &Core,
    who: &Principal,
    reference: &pb::SandboxRef,
) -> Result<pb::Sandbox, ApiError> {
    Ok(view(core, who, &find(core, who, reference).await?))
}

/// The caller's sandboxes (everyone's for admins).
pub(super) async fn list(core: &Core, who: &Principal) -> Result<Vec<pb::Sandbox>, ApiError> {
    let records = core
        .records(who)
        .list(Kind::Sandbox, &Access::of(who).sandbox_filter())
        .await?;
    Ok(records
        .iter()
        .map(|record| view(core, who, record))
        .collect())
}

/// Stops a sandbox (the driver keeps its state). Its token is refused from the moment
/// the stop is recorded, before the driver is asked.
pub(super) async fn stop(
    core: &Core,
    who: &Principal,
    reference: &pb::SandboxRef,
    deadline: Option<tokio::time::Instant>,
) -> Result<pb::Sandbox, ApiError> {
    let record = find(core, who, reference).await?;
    let record = mark_stopped(core, record, true).await?;
    core.compute.within(deadline).stop(&record.key).await?;
    Ok(view(core, who, &record))
}

/// Starts a stopped sandbox; its token is accepted again.
pub(super) async fn start(
    core: &Core,
    who: &Principal,
    reference: &pb::SandboxRef,
    deadline: Option<tokio::time::Instant>,
) -> Result<pb::Sandbox, ApiError> {
    let record = find(core, who, reference).await?;
    let record = mark_stopped(core, record, false).await?;
    core.compute.within(deadline).start(&record.key).await?;
    Ok(view(core, who, &record))
}

/// Whether the sandbox of `record` was stopped by its owner (its token is refused).
pub(super) fn is_stopped(record: &Record) -> bool {
    record.labels.contains_key(STOPPED)
}

/// Record-level label holding the owner's attributes at create (JSON).
pub(super) const OWNER_ATTRIBUTES: &str = "openshell.io/owner-attributes";

/// The owner's attributes stamped on the sandbox `record` (none when unreadable).
pub(super) fn owner_attributes(record: &Record) -> crate::authz::access_rules::Attributes {
    record
        .labels
        .get(OWNER_ATTRIBUTES)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Record-level label (never in the sandbox's own labels) marking a stopped sandbox.
const STOPPED: &str = "openshell.io/stopped";

/// Sets or clears the stopped mark.
async fn mark_stopped(core: &Core, record: Record, stopped: bool) -> Result<Record, ApiError> {
    sandbox_saga::set_mark(core, record, STOPPED, stopped.then_some("true")).await
}

/// Deletes a sandbox from the driver, then its record, in a saga that completes even
/// if the caller stops waiting ([`super::sandbox_saga`]).
pub(super) async fn delete(
    core: &Arc<Core>,
    who: &Principal,
    reference: &pb::SandboxRef,
) -> Result<bool, ApiError> {
    let task = tokio::spawn({
        let (core, who, reference) = (Arc::clone(core), who.clone(), reference.clone());
        async move {
            let record = find(&core, &who, &reference).await?;
            sandbox_saga::delete(&core, record).await
        }
    });
    task.await
        .map_err(|_| ApiError::internal("the sandbox delete task failed"))?
}

/// Attaches a provider the caller may use.
pub(super) async fn attach(
    core: &Core,
    who: &Principal,
    request: pb::AttachmentRequest,
) -> Result<pb::Sandbox, ApiError> {
    let mut record = find(core, who, &request.sandbox.unwrap_or_default()).await?;
    let provider = providers::find(core, who, &request.provider, Action::Use).await?;
    let key = providers::reference(&provider);
    let mut sandbox = decode(&record)?;
    if !sandbox.providers.contains(&key) {
        sandbox.providers.push(key.clone());
        record.body = sandbox.encode_to_vec();
        // Written only while the provider still exists (one transaction with the check).
        let required = (
            Kind::Provider,
            provider.tenant.as_str(),
            provider.key.as_str(),
        );
        record.version = core
            .records(who)
            .write_if_present(Write::Update(&record), &[required])
            .await
            .map_err(|error| match error {
                StoreError::MissingReference { .. } => ApiError::not_found(format!(
                    "provider {} not found",
                    limits::shown(&request.provider)
                )),
                other => other.into(),
            })?;
        core.statuses.announce(Change::Updated(record.key.clone()));
    }
    Ok(view(core, who, &record))
}

/// Detaches the provider the caller's name means among those attached (their own
/// first, then a shared one); NOT_FOUND when none of them is attached.
pub(super) async fn detach(
    core: &Core,
    who: &Principal,
    request: pb::AttachmentRequest,
) -> Result<pb::Sandbox, ApiError> {
    let mut record = find(core, who, &request.sandbox.unwrap_or_default()).await?;
    let mut sandbox = decode(&record)?;
    let candidates: Vec<String> = names::provider_candidates(who, &request.provider)?
        .iter()
        .map(ProviderRef::reference)
        .collect();
    let Some(key) = candidates
        .iter()
        .find(|key| sandbox.providers.contains(key))
    else {
        return Err(ApiError::not_found(format!(
            "provider {:?} is not attached to sandbox {:?}",
            request.provider, sandbox.name
        )));
    };
    sandbox.providers.retain(|attached| attached != key);
    save(core, &mut record, &sandbox).await?;
    Ok(view(core, who, &record))
}

/// The sandbox record `reference` names, if the caller may see it (NOT_FOUND
/// otherwise: another user's sandbox does not exist for the caller).
pub(super) async fn find(
    core: &Core,
    who: &Principal,
    reference: &pb::SandboxRef,
) -> Result<Record, ApiError> {
    let found = if !reference.id.is_empty() {
        core.records(who)
            .get(Kind::Sandbox, &reference.id)
            .await?
            .filter(|record| Access::of(who).owns(&record.owner))
    } else if !reference.name.is_empty() {
        core.records(who)
            .get_by_name(Kind::Sandbox, who.owner(), &reference.name)
            .await?
    } else {
        return Err(ApiError::invalid("sandbox: give its id or its name"));
    };
    found.ok_or_else(|| {
        let given = if reference.id.is_empty() {
            &reference.name
        } else {
            &reference.id
        };
        ApiError::not_found(format!("sandbox {} not found", limits::shown(given)))
    })
}

/// Decodes a sandbox record's body.
pub(super) fn decode(record: &Record) -> Result<pb::Sandbox, ApiError> {
    pb::Sandbox::decode(record.body.as_slice())
        .map_err(|_| ApiError::internal(format!("sandbox record {:?} is corrupt", record.key)))
}

async fn save(core: &Core, record: &mut Record, sandbox: &pb::Sandbox) -> Result<(), ApiError> {
    record.body = sandbox.encode_to_vec();
    record.version = core.records_of(record).update(record).await?;
    core.statuses.announce(Change::Updated(record.key.clone()));
    Ok(())
}

/// What `who` sees of a record: current status, providers by the names they use.
pub(super) fn view(core: &Core, who: &Principal, record: &Record) -> pb::Sandbox {
    let Ok(mut sandbox) = decode(record) else {
        return corrupt(record);
    };
    sandbox.resource_version = record.version;
    sandbox.providers = sandbox
        .providers
        .iter()
        .map(|key| names::visible_provider_name(who, key))
        .collect();
    sandbox.status = Some(status(core.statuses.lookup(&record.key)));
    sandbox
}

/// A record whose body does not decode, shown as such (what the store knows of it and
/// an Error phase), never as an empty sandbox; lists and watches carry on around it.
fn corrupt(record: &Record) -> pb::Sandbox {
    tracing::error!(sandbox = %record.key, "sandbox record is corrupt");
    pb::Sandbox {
        id: record.key.clone(),
        name: record.name.clone(),
        owner: record.owner.clone(),
        resource_version: record.version,
        status: Some(pb::SandboxStatus {
            phase: "Error".into(),
            conditions: vec![pb::Condition {
                r#type: "Ready".into(),
                status: "False".into(),
                reason: "CorruptRecord".into(),
                message: "the gateway's record of this sandbox cannot be read; delete it".into(),
                last_transition_time: String::new(),
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|_| ApiError::internal("no randomness for a sandbox id"))?;
    Ok(format!(
        "sb-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What the sandbox's main process wrote, from its compute driver (see
/// `ReadSandboxLogs`); another user's sandbox is NOT_FOUND.
pub(super) async fn logs(
    core: &Core,
    who: &Principal,
    request: pb::ReadSandboxLogsRequest,
) -> Result<tonic::Streaming<proto::pb::compute::v1::SandboxLogChunk>, ApiError> {
    let reference = request.sandbox.unwrap_or_default();
    let record = find(core, who, &reference).await?;
    core.compute
        .logs(&record.key, request.follow, request.tail_bytes)
        .await
        .map_err(|error| match error.code() {
            tonic::Code::Unimplemented => ApiError::precondition(
                "the compute driver does not serve sandbox logs (ReadSandboxLogs)",
            ),
            _ => error.into(),
        })
}
