//! Sandbox settings: a small document per sandbox (where its policy lives), stored
//! apart from the sandbox record (keyed by its id, owned by its owner) so that status
//! updates and settings writes never conflict.
//!
//! The owner (or an admin) reads it and writes `policy` and `values`; the sandbox
//! reads its own with its token and writes only `policy_status`, for the policy
//! version it applied. Another user's sandbox answers NOT_FOUND, as everywhere. Writes
//! require the sandbox to exist in the same transaction, and the sandbox's delete
//! removes its settings after the sandbox record.

use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::error::ApiError;
use super::{Core, limits, sandbox_calls, sandboxes};
use crate::auth::Principal;
use crate::store::{Kind, Record, StoreError, Write};

/// Largest encoded policy.
const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Most entries in `values`.
const MAX_VALUES: usize = 64;
/// Longest status message.
const MAX_MESSAGE: usize = 1024;
/// Tries of a write that raced another (without a version asked for): one racer wins
/// each round, so this bounds how many may write one sandbox's settings at once.
const TRIES: u32 = 32;

/// A short random pause before trying again, so racers spread out.
async fn pause(attempt: u32) {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    let ceiling = u64::from(attempt.min(8) + 1) * 2;
    let millis = u64::from(byte[0]) % ceiling;
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

fn decode(record: &Record) -> Result<pb::SandboxSettings, ApiError> {
    pb::SandboxSettings::decode(record.body.as_slice()).map_err(|_| {
        ApiError::internal(format!("settings of sandbox {:?} are corrupt", record.key))
    })
}

/// What a reader sees: the stored document (or an empty one) with its version.
fn view(sandbox: &Record, stored: Option<&Record>) -> Result<pb::SandboxSettings, ApiError> {
    let mut settings = match stored {
        Some(record) => decode(record)?,
        None => pb::SandboxSettings::default(),
    };
    settings.sandbox_id = sandbox.key.clone();
    settings.sandbox_name = sandbox.name.clone();
    settings.resource_version = stored.map_or(0, |r| r.version);
    Ok(settings)
}

/// A sandbox's settings, for its owner (or an admin).
pub(super) async fn get(
    core: &Core,
    who: &Principal,
    request: &pb::GetSandboxSettingsRequest,
) -> Result<pb::SandboxSettings, ApiError> {
    let sandbox = sandboxes::find(core, who, &reference(request.sandbox.as_ref())?).await?;
    let stored = core
        .records_of(&sandbox)
        .get(Kind::SandboxSettings, &sandbox.key)
        .await?;
    view(&sandbox, stored.as_ref())
}

fn reference(sandbox: Option<&pb::SandboxRef>) -> Result<pb::SandboxRef, ApiError> {
    sandbox
        .cloned()
        .ok_or_else(|| ApiError::invalid("sandbox: give its id or its name"))
}

fn check(request: &pb::UpdateSandboxSettingsRequest) -> Result<(), ApiError> {
    let policy = request
        .policy
        .as_ref()
        .map_or(0, prost::Message::encoded_len);
    if policy > MAX_POLICY_BYTES {
        return Err(ApiError::invalid(format!(
            "policy: {policy} bytes encoded, more than {MAX_POLICY_BYTES}"
        )));
    }
    if request.values.len() > MAX_VALUES {
        return Err(ApiError::invalid(format!(
            "values: {} entries, more than {MAX_VALUES}",
            request.values.len()
        )));
    }
    for (key, value) in &request.values {
        limits::text("values key", key, 253)?;
        if key.is_empty() {
            return Err(ApiError::invalid("values: a key is empty"));
        }
        limits::text("values value", value, 4096)?;
    }
    Ok(())
}

/// Replaces `policy` and `values` (compare-and-set when `resource_version` is given);
/// a changed policy gets the next policy version and a pending status.
pub(super) async fn update(
    core: &Core,
    who: &Principal,
    request: pb::UpdateSandboxSettingsRequest,
) -> Result<pb::SandboxSettings, ApiError> {
    check(&request)?;
    let sandbox = sandboxes::find(core, who, &reference(request.sandbox.as_ref())?).await?;
    for attempt in 0..TRIES {
        if attempt > 0 {
            pause(attempt).await;
        }
        let stored = core
            .records_of(&sandbox)
            .get(Kind::SandboxSettings, &sandbox.key)
            .await?;
        let version = stored.as_ref().map_or(0, |r| r.version);
        if request.resource_version != 0 && request.resource_version != version {
            return Err(ApiError::conflict(format!(
                "the settings are at version {version}, not {}: read them again and retry",
                request.resource_version
            )));
        }
        let mut settings = view(&sandbox, stored.as_ref())?;
        if settings.policy != request.policy {
            settings.policy_version += 1;
            settings.policy_status = Some(pb::PolicyStatus {
                state: "pending".into(),
                message: String::new(),
                policy_version: settings.policy_version,
                reported_at_ms: 0,
            });
        }
        settings.policy = request.policy.clone();
        settings.values = request.values.clone();
        match write(core, &sandbox, stored, &settings).await {
            Ok(written) => return view(&sandbox, Some(&written)),
            // Raced another write: read again, unless the caller pinned a version.
            Err(ApiError::Store(
                StoreError::Conflict { .. } | StoreError::AlreadyExists { .. },
            )) if request.resource_version == 0 => {}
            Err(other) => return Err(other),
        }
    }
    Err(ApiError::conflict(
        "the settings kept changing while being written: retry",
    ))
}

/// Writes `settings` over `stored` (or creates them) while the sandbox exists.
async fn write(
    core: &Core,
    sandbox: &Record,
    stored: Option<Record>,
    settings: &pb::SandboxSettings,
) -> Result<Record, ApiError> {
    let mut body = settings.clone();
    body.resource_version = 0;
    let (mut record, create) = match stored {
        Some(record) => (record, false),
        None => (
            Record::new(
                Kind::SandboxSettings,
                &sandbox.key,
                &sandbox.key,
                &sandbox.owner,
            ),
            true,
        ),
    };
    record.body = body.encode_to_vec();
    let write = if create {
        Write::Create(&record)
    } else {
        Write::Update(&record)
    };
    let version = core
        .records_of(sandbox)
        .write_if_present(
            write,
            &[(Kind::Sandbox, sandbox.tenant.as_str(), sandbox.key.as_str())],
        )
        .await
        .map_err(|error| match error {
            StoreError::MissingReference { .. } => {
                ApiError::not_found("the sandbox was deleted meanwhile")
            }
            other => other.into(),
        })?;
    record.version = version;
    Ok(record)
}

/// The calling sandbox's own settings.
pub(super) async fn get_own(core: &Core, who: &Principal) -> Result<pb::SandboxSettings, ApiError> {
    let sandbox = sandbox_calls::calling_sandbox_record(core, who).await?;
    let stored = core
        .records_of(&sandbox)
        .get(Kind::SandboxSettings, &sandbox.key)
        .await?;
    view(&sandbox, stored.as_ref())
}

/// The calling sandbox reports its policy's status, for the version it applied.
pub(super) async fn report(
    core: &Core,
    who: &Principal,
    request: pb::ReportPolicyStatusRequest,
) -> Result<pb::SandboxSettings, ApiError> {
    if !matches!(request.state.as_str(), "applied" | "failed") {
        return Err(ApiError::invalid(format!(
            "state: {} is not \"applied\" or \"failed\"",
            limits::shown(&request.state)
        )));
    }
    limits::text("message", &request.message, MAX_MESSAGE)?;
    let sandbox = sandbox_calls::calling_sandbox_record(core, who).await?;
    for attempt in 0..TRIES {
        if attempt > 0 {
            pause(attempt).await;
        }
        let stored = core
            .records_of(&sandbox)
            .get(Kind::SandboxSettings, &sandbox.key)
            .await?;
        let mut settings = view(&sandbox, stored.as_ref())?;
        if request.policy_version != settings.policy_version {
            return Err(ApiError::conflict(format!(
                "policy version {} is not the current one ({}): apply the current policy and report again",
                request.policy_version, settings.policy_version
            )));
        }
        settings.policy_status = Some(pb::PolicyStatus {
            state: request.state.clone(),
            message: request.message.clone(),
            policy_version: request.policy_version,
            reported_at_ms: now_ms(),
        });
        match write(core, &sandbox, stored, &settings).await {
            Ok(written) => return view(&sandbox, Some(&written)),
            // The owner wrote meanwhile: check the policy version again.
            Err(ApiError::Store(
                StoreError::Conflict { .. } | StoreError::AlreadyExists { .. },
            )) => {}
            Err(other) => return Err(other),
        }
    }
    Err(ApiError::conflict(
        "the settings kept changing while being written: retry",
    ))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
