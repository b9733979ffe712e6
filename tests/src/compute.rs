//! The ComputeDriver suite: capabilities, validation, lifecycle, idempotency,
//! ALREADY_EXISTS and NOT_FOUND, truthful `deleted`, Watch snapshot and events,
//! Stop/Start when supported, optional RPCs, health, socket permissions.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::phase::{Phase, phase_of};
use tokio::sync::Mutex;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

use crate::case::{Case, CaseError, CaseResult, call_failed, ensure, expect_code};

/// The label every sandbox the harness creates carries (value: the run's prefix).
pub const RUN_LABEL: &str = "conformance.openshell.io/run";

/// Driver-specific inputs for the compute suite.
#[derive(Clone, Debug)]
pub struct ComputeInputs {
    /// The argv sandboxes run (default `sleep 300`).
    pub command: Vec<String>,
    /// The image (default: the driver's default image).
    pub image: String,
    /// How long a sandbox may take to become Ready.
    pub ready_timeout: Duration,
}

impl Default for ComputeInputs {
    fn default() -> Self {
        Self {
            command: vec!["sleep".into(), "300".into()],
            image: String::new(),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// What the compute cases share.
#[derive(Debug)]
pub struct ComputeCtx {
    /// Client over the socket.
    pub client: ComputeDriverClient<Channel>,
    /// The raw channel (for health).
    pub channel: Channel,
    /// The socket path.
    pub socket: PathBuf,
    /// The driver's capabilities.
    pub caps: pb::GetCapabilitiesResponse,
    /// Inputs.
    pub inputs: ComputeInputs,
    /// Unique prefix of this run's sandbox names.
    pub prefix: String,
    /// How often idempotent RPCs are repeated.
    pub repeat: usize,
    /// Every sandbox id created, for cleanup in reverse order.
    pub created: Mutex<Vec<String>>,
}

impl ComputeCtx {
    fn client(&self) -> ComputeDriverClient<Channel> {
        self.client.clone()
    }

    /// A sandbox named `<prefix>-<suffix>`, labelled with the run.
    pub fn sandbox(&self, suffix: &str) -> pb::DriverSandbox {
        let id = format!("{}-{suffix}", self.prefix);
        pb::DriverSandbox {
            id: id.clone(),
            name: id,
            spec: Some(pb::DriverSandboxSpec {
                command: self.inputs.command.clone(),
                template: Some(pb::DriverSandboxTemplate {
                    image: self.inputs.image.clone(),
                    labels: [(RUN_LABEL.to_owned(), self.prefix.clone())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn create(&self, sandbox: &pb::DriverSandbox) -> CaseResult {
        self.created.lock().await.push(sandbox.id.clone());
        self.client()
            .create_sandbox(pb::CreateSandboxRequest {
                sandbox: Some(sandbox.clone()),
            })
            .await
            .map(drop)
            .map_err(|s| call_failed("CreateSandbox", &s))
    }

    async fn delete(&self, id: &str) -> Result<bool, CaseError> {
        self.client()
            .delete_sandbox(pb::DeleteSandboxRequest {
                sandbox_id: id.into(),
                sandbox_name: String::new(),
            })
            .await
            .map(|r| r.into_inner().deleted)
            .map_err(|s| call_failed("DeleteSandbox", &s))
    }

    async fn get(&self, id: &str) -> Result<pb::DriverSandbox, tonic::Status> {
        self.client()
            .get_sandbox(pb::GetSandboxRequest {
                sandbox_id: id.into(),
                sandbox_name: String::new(),
            })
            .await
            .map(|r| r.into_inner().sandbox.unwrap_or_default())
    }

    /// Polls Get until `id` reaches `phase` (or the ready timeout passes).
    async fn wait_phase(&self, id: &str, phase: Phase) -> CaseResult {
        let deadline = tokio::time::Instant::now() + self.inputs.ready_timeout;
        let mut last = Phase::Unknown;
        while tokio::time::Instant::now() < deadline {
            if let Ok(sandbox) = self.get(id).await {
                last = phase_of(&sandbox);
                if last == phase {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(CaseError::Fail(format!(
            "sandbox {id} never reached {phase:?} (last phase {last:?})"
        )))
    }

    /// Deletes everything this run created, newest first, then its workspace.
    /// NOT_FOUND is fine.
    pub async fn cleanup(&self) -> CaseResult {
        let ids: Vec<String> = self.created.lock().await.drain(..).rev().collect();
        let mut problems = Vec::new();
        for id in ids {
            let reply = self
                .client()
                .delete_sandbox(pb::DeleteSandboxRequest {
                    sandbox_id: id.clone(),
                    sandbox_name: String::new(),
                })
                .await;
            if let Err(status) = reply
                && status.code() != Code::NotFound
            {
                problems.push(format!("{id}: {:?} {}", status.code(), status.message()));
            }
        }
        ensure(problems.is_empty(), || {
            format!("cleanup: DeleteSandbox failed for {}", problems.join("; "))
        })
    }
}

/// Every compute case, in run order.
pub fn cases() -> Vec<Case<ComputeCtx>> {
    crate::cases![ComputeCtx:
        capabilities_shape,
        health_serving,
        socket_not_world_accessible,
        validation_rejects_malformed_fields,
        unknown_id_is_not_found,
        create_get_list_delete,
        create_is_idempotent,
        conflicting_create_is_already_exists,
        idempotent_rpcs_repeat_with_identical_results,
        watch_opens_with_a_snapshot_then_reports_changes,
        stop_then_start,
        optional_rpcs_answer_unimplemented_when_not_advertised,
        deadlines_are_honoured,
    ]
}

async fn capabilities_shape(ctx: &ComputeCtx) -> CaseResult {
    ensure(!ctx.caps.driver_name.is_empty(), || {
        "GetCapabilities must name the driver (driver_name)".into()
    })?;
    ensure(!ctx.caps.driver_version.is_empty(), || {
        "GetCapabilities must give driver_version".into()
    })?;
    ensure(
        !ctx.inputs.command.is_empty()
            || !ctx.caps.default_image.is_empty()
            || !ctx.inputs.image.is_empty(),
        || {
            "with no default_image the harness needs a command to run (config: compute.command)"
                .into()
        },
    )
}

async fn health_serving(ctx: &ComputeCtx) -> CaseResult {
    use proto::pb::health::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut health = HealthClient::new(ctx.channel.clone());
    match health.check(HealthCheckRequest::default()).await {
        Ok(reply) => ensure(reply.get_ref().status() == ServingStatus::Serving, || {
            format!(
                "grpc.health.v1 Check must answer SERVING while the driver serves, got {:?}",
                reply.get_ref().status()
            )
        })?,
        Err(status) if status.code() == Code::Unimplemented => {
            return Err(CaseError::Skip(
                "the driver serves no grpc.health.v1 (readiness falls back to GetCapabilities)"
                    .into(),
            ));
        }
        Err(status) => return Err(call_failed("grpc.health.v1 Check", &status)),
    }
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .map_err(|s| call_failed("grpc.health.v1 Watch", &s))?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .map_err(|_| {
            CaseError::Fail("grpc.health.v1 Watch must send the current status at once".into())
        })?;
    match first {
        Some(Ok(reply)) => ensure(reply.status() == ServingStatus::Serving, || {
            format!(
                "grpc.health.v1 Watch must report SERVING, got {:?}",
                reply.status()
            )
        }),
        Some(Err(status)) => Err(call_failed("grpc.health.v1 Watch", &status)),
        None => Err(CaseError::Fail(
            "grpc.health.v1 Watch ended without a status".into(),
        )),
    }
}

async fn socket_not_world_accessible(ctx: &ComputeCtx) -> CaseResult {
    let mode = std::fs::metadata(&ctx.socket)
        .map_err(|e| CaseError::Fail(format!("cannot stat {}: {e}", ctx.socket.display())))?
        .permissions()
        .mode();
    ensure(mode & 0o007 == 0, || {
        format!(
            "the socket must not be accessible to other users (mode {:o}); use 0600 or 0660",
            mode & 0o777
        )
    })
}

async fn validation_rejects_malformed_fields(ctx: &ComputeCtx) -> CaseResult {
    let mut empty_id = ctx.sandbox("invalid");
    empty_id.id.clear();
    let mut bad_name = ctx.sandbox("invalid");
    bad_name.name = "bad\nname".into();
    let mut bad_quantity = ctx.sandbox("invalid");
    if let Some(template) = bad_quantity.spec.as_mut().and_then(|s| s.template.as_mut()) {
        template.resources = Some(pb::DriverResourceRequirements {
            memory_limit: "lots".into(),
            ..Default::default()
        });
    }
    for (why, sandbox) in [
        ("with an empty id", empty_id),
        ("with a newline in the name", bad_name),
        ("with a malformed quantity", bad_quantity),
    ] {
        let reply = ctx
            .client()
            .validate_sandbox_create(pb::ValidateSandboxCreateRequest {
                sandbox: Some(sandbox),
            })
            .await;
        expect_code(
            "ValidateSandboxCreate",
            reply.map(drop),
            Code::InvalidArgument,
            why,
        )?;
    }
    Ok(())
}

async fn unknown_id_is_not_found(ctx: &ComputeCtx) -> CaseResult {
    let id = format!("{}-never-created", ctx.prefix);
    expect_code(
        "GetSandbox",
        ctx.get(&id).await.map(drop),
        Code::NotFound,
        "for an unknown id",
    )
}

async fn create_get_list_delete(ctx: &ComputeCtx) -> CaseResult {
    let sandbox = ctx.sandbox("lifecycle");
    ctx.client()
        .validate_sandbox_create(pb::ValidateSandboxCreateRequest {
            sandbox: Some(sandbox.clone()),
        })
        .await
        .map_err(|s| call_failed("ValidateSandboxCreate", &s))?;
    ctx.create(&sandbox).await?;
    let got = ctx
        .get(&sandbox.id)
        .await
        .map_err(|s| call_failed("GetSandbox", &s))?;
    ensure(got.id == sandbox.id && got.name == sandbox.name, || {
        format!(
            "GetSandbox must return the created sandbox, got id {:?}",
            got.id
        )
    })?;
    let listed = ctx
        .client()
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .map_err(|s| call_failed("ListSandboxes", &s))?;
    ensure(
        listed
            .get_ref()
            .sandboxes
            .iter()
            .any(|s| s.id == sandbox.id),
        || "ListSandboxes must include a created sandbox".into(),
    )?;
    ensure(ctx.delete(&sandbox.id).await?, || {
        "DeleteSandbox of an existing sandbox must answer deleted=true".into()
    })?;
    expect_code(
        "GetSandbox",
        ctx.get(&sandbox.id).await.map(drop),
        Code::NotFound,
        "after DeleteSandbox",
    )?;
    ensure(!ctx.delete(&sandbox.id).await?, || {
        "a second DeleteSandbox must answer deleted=false (nothing was removed)".into()
    })
}

async fn create_is_idempotent(ctx: &ComputeCtx) -> CaseResult {
    let sandbox = ctx.sandbox("idem-create");
    for _ in 0..ctx.repeat {
        ctx.create(&sandbox).await?;
    }
    let listed = ctx
        .client()
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .map_err(|s| call_failed("ListSandboxes", &s))?;
    let copies = listed
        .get_ref()
        .sandboxes
        .iter()
        .filter(|s| s.id == sandbox.id)
        .count();
    ensure(copies == 1, || {
        format!("CreateSandbox repeated with the same spec must leave one sandbox, found {copies}")
    })?;
    ctx.delete(&sandbox.id).await.map(drop)
}

async fn conflicting_create_is_already_exists(ctx: &ComputeCtx) -> CaseResult {
    let sandbox = ctx.sandbox("conflict");
    ctx.create(&sandbox).await?;
    let mut other = sandbox.clone();
    if let Some(spec) = other.spec.as_mut() {
        spec.environment
            .insert("CONFORMANCE_DIFFERENT".into(), "1".into());
    }
    let reply = ctx
        .client()
        .create_sandbox(pb::CreateSandboxRequest {
            sandbox: Some(other),
        })
        .await;
    expect_code(
        "CreateSandbox",
        reply.map(drop),
        Code::AlreadyExists,
        "of an existing id with a different spec",
    )?;
    ctx.delete(&sandbox.id).await.map(drop)
}

async fn idempotent_rpcs_repeat_with_identical_results(ctx: &ComputeCtx) -> CaseResult {
    let sandbox = ctx.sandbox("idem");
    ctx.create(&sandbox).await?;
    for _ in 0..ctx.repeat {
        let caps = ctx
            .client()
            .get_capabilities(pb::GetCapabilitiesRequest {})
            .await
            .map_err(|s| call_failed("GetCapabilities", &s))?
            .into_inner();
        ensure(caps == ctx.caps, || {
            "GetCapabilities repeated must answer the same".into()
        })?;
        let listed = ctx
            .client()
            .list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .map_err(|s| call_failed("ListSandboxes", &s))?;
        ensure(
            listed
                .get_ref()
                .sandboxes
                .iter()
                .filter(|s| s.id == sandbox.id)
                .count()
                == 1,
            || "ListSandboxes repeated must list the sandbox exactly once each time".into(),
        )?;
        let started = ctx
            .client()
            .start_sandbox(pb::StartSandboxRequest {
                sandbox_id: sandbox.id.clone(),
                sandbox_name: String::new(),
            })
            .await;
        match started {
            Ok(_) => {}
            Err(status) if status.code() == Code::Unimplemented => {}
            Err(status) => {
                return Err(call_failed(
                    "StartSandbox of a running sandbox (it is idempotent)",
                    &status,
                ));
            }
        }
        let workspace = format!("{}-ws", ctx.prefix);
        match ctx
            .client()
            .ensure_workspace(pb::EnsureWorkspaceRequest { workspace })
            .await
        {
            Ok(_) => {}
            Err(status) if status.code() == Code::Unimplemented => {}
            Err(status) => {
                return Err(call_failed(
                    "EnsureWorkspace (repeated; it is idempotent)",
                    &status,
                ));
            }
        }
    }
    let first = ctx
        .get(&sandbox.id)
        .await
        .map_err(|s| call_failed("GetSandbox", &s))?;
    for _ in 0..ctx.repeat {
        let again = ctx
            .get(&sandbox.id)
            .await
            .map_err(|s| call_failed("GetSandbox", &s))?;
        ensure(again.id == first.id && again.spec == first.spec, || {
            "GetSandbox repeated must return the same sandbox".into()
        })?;
    }
    for _ in 0..ctx.repeat {
        ctx.client()
            .stop_sandbox(pb::StopSandboxRequest {
                sandbox_id: sandbox.id.clone(),
                sandbox_name: String::new(),
            })
            .await
            .map_err(|s| call_failed("StopSandbox (repeated; it is idempotent)", &s))?;
    }
    ensure(ctx.delete(&sandbox.id).await?, || {
        "the first DeleteSandbox must answer deleted=true".into()
    })?;
    for _ in 0..ctx.repeat {
        ensure(!ctx.delete(&sandbox.id).await?, || {
            "repeated DeleteSandbox must answer deleted=false".into()
        })?;
        // The contract lets Stop of a deleted sandbox answer OK (idempotent) or
        // NOT_FOUND (upstream's drivers do): both say "nothing runs".
        match ctx
            .client()
            .stop_sandbox(pb::StopSandboxRequest {
                sandbox_id: sandbox.id.clone(),
                sandbox_name: String::new(),
            })
            .await
        {
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => {
                return Err(call_failed(
                    "StopSandbox of a deleted sandbox (OK or NOT_FOUND)",
                    &status,
                ));
            }
        }
    }
    Ok(())
}

async fn watch_opens_with_a_snapshot_then_reports_changes(ctx: &ComputeCtx) -> CaseResult {
    use pb::watch_sandboxes_event::Payload;
    let before = ctx.sandbox("watch-before");
    ctx.create(&before).await?;
    let mut events = ctx
        .client()
        .watch_sandboxes(pb::WatchSandboxesRequest {})
        .await
        .map_err(|s| call_failed("WatchSandboxes", &s))?
        .into_inner();
    let after = ctx.sandbox("watch-after");
    let (mut seen_before, mut created_after, mut delete_sent) = (false, false, false);
    let mut ready_after = !ctx.caps.driver_reports_runtime_readiness;
    let mut deleted_after = false;
    let snapshot_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let deadline = tokio::time::Instant::now() + ctx.inputs.ready_timeout;
    while !(ready_after && deleted_after) {
        let until = if seen_before {
            deadline
        } else {
            snapshot_deadline
        };
        let event = tokio::time::timeout_at(until, events.next())
            .await
            .map_err(|_| {
                CaseError::Fail(if seen_before {
                    format!("WatchSandboxes must report changes: new sandbox Ready seen: {ready_after}; its deleted event seen: {deleted_after}")
                } else {
                    "WatchSandboxes must open with a snapshot of the current sandboxes; an existing sandbox was not in it".into()
                })
            })?
            .ok_or_else(|| CaseError::Fail("WatchSandboxes ended early".into()))?
            .map_err(|s| call_failed("WatchSandboxes", &s))?;
        match event.payload {
            Some(Payload::Sandbox(s)) => {
                let sandbox = s.sandbox.unwrap_or_default();
                if sandbox.id == before.id {
                    seen_before = true;
                } else if sandbox.id == after.id && phase_of(&sandbox) == Phase::Ready {
                    ready_after = true;
                }
            }
            Some(Payload::Deleted(d)) if d.sandbox_id == after.id => deleted_after = true,
            _ => {}
        }
        if seen_before && !created_after {
            ctx.create(&after).await?;
            created_after = true;
        }
        if created_after && ready_after && !delete_sent {
            ctx.delete(&after.id).await?;
            delete_sent = true;
        }
    }
    ctx.delete(&before.id).await.map(drop)
}

async fn stop_then_start(ctx: &ComputeCtx) -> CaseResult {
    let sandbox = ctx.sandbox("stop-start");
    ctx.create(&sandbox).await?;
    if ctx.caps.driver_reports_runtime_readiness {
        ctx.wait_phase(&sandbox.id, Phase::Ready).await?;
    }
    ctx.client()
        .stop_sandbox(pb::StopSandboxRequest {
            sandbox_id: sandbox.id.clone(),
            sandbox_name: String::new(),
        })
        .await
        .map_err(|s| call_failed("StopSandbox", &s))?;
    ctx.wait_phase(&sandbox.id, Phase::Stopped).await?;
    let started = ctx
        .client()
        .start_sandbox(pb::StartSandboxRequest {
            sandbox_id: sandbox.id.clone(),
            sandbox_name: String::new(),
        })
        .await;
    match started {
        Err(status) if status.code() == Code::Unimplemented => {
            ctx.delete(&sandbox.id).await?;
            return Err(CaseError::Skip(
                "StartSandbox is not supported (UNIMPLEMENTED)".into(),
            ));
        }
        Err(status) => return Err(call_failed("StartSandbox", &status)),
        Ok(_) => {}
    }
    if ctx.caps.driver_reports_runtime_readiness {
        ctx.wait_phase(&sandbox.id, Phase::Ready).await?;
    }
    ctx.delete(&sandbox.id).await.map(drop)
}

async fn optional_rpcs_answer_unimplemented_when_not_advertised(ctx: &ComputeCtx) -> CaseResult {
    if ctx.caps.supports_sandbox_authentication {
        return Err(CaseError::Skip("AuthenticateSandbox is advertised".into()));
    }
    let reply = ctx
        .client()
        .authenticate_sandbox(pb::AuthenticateSandboxRequest {
            credential: "conformance".into(),
        })
        .await;
    expect_code(
        "AuthenticateSandbox",
        reply.map(drop),
        Code::Unimplemented,
        "when supports_sandbox_authentication is false",
    )
}

async fn deadlines_are_honoured(ctx: &ComputeCtx) -> CaseResult {
    // A watch never ends by itself, so only the caller's deadline (grpc-timeout) can
    // end it: the driver must stop the call when it passes.
    // Over a client that only sends the header: tonic's Channel would cancel the call
    // at the deadline itself and hide what the driver does.
    let mut request = tonic::Request::new(pb::WatchSandboxesRequest {});
    request.set_timeout(Duration::from_millis(300));
    let mut raw = ComputeDriverClient::with_origin(
        crate::raw_client::channel(&ctx.socket),
        crate::raw_client::origin(),
    );
    let started = tokio::time::Instant::now();
    let mut events = match raw.watch_sandboxes(request).await {
        Ok(reply) => reply.into_inner(),
        Err(status) if status.code() == Code::DeadlineExceeded => return Ok(()),
        Err(status) => return Err(call_failed("WatchSandboxes", &status)),
    };
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(Ok(_)) => {}
                Some(Err(status)) => return Some(status),
                None => return None,
            }
        }
    })
    .await
    .map_err(|_| CaseError::Fail("WatchSandboxes with a 300 ms deadline was still open after 5 s: the driver must honour grpc-timeout".into()))?;
    match ended {
        Some(status) if matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled) => Ok(()),
        Some(status) => Err(CaseError::Fail(format!(
            "a call past its deadline must end with DEADLINE_EXCEEDED, got {:?} after {:?}",
            status.code(),
            started.elapsed()
        ))),
        None => Err(CaseError::Fail(
            "WatchSandboxes ended cleanly at the deadline; it must end with DEADLINE_EXCEEDED"
                .into(),
        )),
    }
}
