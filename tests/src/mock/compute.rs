//! An in-memory, conformant ComputeDriver with programmable faults, for gateway
//! contract tests. Sandboxes are Ready as soon as they are created.

use std::pin::Pin;
use std::sync::Arc;

use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_server::ComputeDriver;
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::Faults;
use super::held::Held;

type Reply<T> = Result<Response<T>, Status>;

/// The mock ComputeDriver.
#[derive(Clone, Debug)]
pub struct MockCompute {
    sandboxes: Arc<Mutex<Held>>,
    events: broadcast::Sender<pb::WatchSandboxesEvent>,
    faults: Faults,
}

impl MockCompute {
    /// An empty mock using `faults`.
    pub fn new(faults: Faults) -> Self {
        Self {
            sandboxes: Arc::default(),
            events: broadcast::channel(1024).0,
            faults,
        }
    }

    /// Changes a sandbox's state without any watch event, as if the change happened
    /// while a watcher was disconnected (`None` removes it). For reconcile tests.
    pub async fn change_silently(&self, id: &str, running: Option<bool>) {
        let mut sandboxes = self.sandboxes.lock().await;
        match running {
            Some(running) => {
                if let Some(sandbox) = sandboxes.remove(id) {
                    sandboxes.insert(with_state(sandbox, running));
                }
            }
            None => {
                sandboxes.remove(id);
            }
        }
    }

    /// The sandbox token the gateway handed over for `id`.
    pub async fn token_of(&self, id: &str) -> Option<String> {
        let sandboxes = self.sandboxes.lock().await;
        let spec = sandboxes.get(id)?.spec.as_ref()?;
        Some(spec.sandbox_token.clone())
    }

    /// Ids of the sandboxes the mock holds.
    pub async fn ids(&self) -> Vec<String> {
        self.sandboxes.lock().await.ids().cloned().collect()
    }
}

fn condition(kind: &str, on: bool, reason: &str) -> pb::DriverCondition {
    pb::DriverCondition {
        r#type: kind.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: reason.into(),
        ..Default::default()
    }
}

fn with_state(mut sandbox: pb::DriverSandbox, running: bool) -> pb::DriverSandbox {
    sandbox.status = Some(pb::DriverSandboxStatus {
        sandbox_name: sandbox.name.clone(),
        instance_id: format!("mock-{}", sandbox.id),
        conditions: vec![
            condition(
                "Ready",
                running,
                if running { "Running" } else { "Stopped" },
            ),
            condition(
                "Suspended",
                !running,
                if running {
                    "Running"
                } else {
                    "StoppedByRequest"
                },
            ),
        ],
        ..Default::default()
    });
    sandbox
}

fn event(sandbox: &pb::DriverSandbox) -> pb::WatchSandboxesEvent {
    pb::WatchSandboxesEvent {
        payload: Some(pb::watch_sandboxes_event::Payload::Sandbox(
            pb::WatchSandboxesSandboxEvent {
                sandbox: Some(sandbox.clone()),
            },
        )),
    }
}

fn dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

fn quantity(value: &str) -> bool {
    let number_len = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(number_len);
    number.parse::<f64>().is_ok()
        && ["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti"].contains(&suffix)
}

fn validate(sandbox: Option<&pb::DriverSandbox>) -> Result<pb::DriverSandbox, Status> {
    let sandbox = sandbox.ok_or_else(|| Status::invalid_argument("sandbox: required"))?;
    let id_ok = !sandbox.id.is_empty()
        && sandbox
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !id_ok {
        return Err(Status::invalid_argument(
            "sandbox.id: required, letters, digits, '.', '_' or '-'",
        ));
    }
    if !dns_label(&sandbox.name) {
        return Err(Status::invalid_argument(
            "sandbox.name: must be a DNS-1123 label",
        ));
    }
    let resources = sandbox
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.resources.clone())
        .unwrap_or_default();
    for (field, value) in [
        ("cpu_request", &resources.cpu_request),
        ("cpu_limit", &resources.cpu_limit),
        ("memory_request", &resources.memory_request),
        ("memory_limit", &resources.memory_limit),
    ] {
        if !value.is_empty() && !quantity(value) {
            return Err(Status::invalid_argument(format!(
                "sandbox.spec.template.resources.{field}: not a quantity"
            )));
        }
    }
    let mut clean = sandbox.clone();
    clean.status = None;
    Ok(clean)
}

impl MockCompute {
    async fn find(&self, id: &str, name: &str) -> Option<String> {
        let sandboxes = self.sandboxes.lock().await;
        if !id.is_empty() {
            return sandboxes.contains(id).then(|| id.to_owned());
        }
        sandboxes.named(name).cloned()
    }

    async fn set_running(&self, id: &str, running: bool) -> bool {
        let mut sandboxes = self.sandboxes.lock().await;
        match sandboxes.get(id) {
            Some(sandbox) => {
                let changed = with_state(sandbox.clone(), running);
                let _ = self.events.send(event(&changed));
                sandboxes.insert(changed);
                true
            }
            None => false,
        }
    }
}

#[tonic::async_trait]
impl ComputeDriver for MockCompute {
    async fn get_capabilities(
        &self,
        _: Request<pb::GetCapabilitiesRequest>,
    ) -> Reply<pb::GetCapabilitiesResponse> {
        self.faults.before("GetCapabilities").await?;
        Ok(Response::new(pb::GetCapabilitiesResponse {
            driver_name: "mock-compute-driver".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            default_image: "mock-image".into(),
            driver_reports_runtime_readiness: true,
            ..Default::default()
        }))
    }

    async fn authenticate_sandbox(
        &self,
        _: Request<pb::AuthenticateSandboxRequest>,
    ) -> Reply<pb::AuthenticateSandboxResponse> {
        Err(Status::unimplemented(
            "AuthenticateSandbox is not supported by the mock",
        ))
    }

    async fn get_gateway_listener_requirements(
        &self,
        _: Request<pb::GetGatewayListenerRequirementsRequest>,
    ) -> Reply<pb::GetGatewayListenerRequirementsResponse> {
        self.faults.before("GetGatewayListenerRequirements").await?;
        Ok(Response::new(Default::default()))
    }

    async fn validate_sandbox_create(
        &self,
        r: Request<pb::ValidateSandboxCreateRequest>,
    ) -> Reply<pb::ValidateSandboxCreateResponse> {
        self.faults.before("ValidateSandboxCreate").await?;
        validate(r.get_ref().sandbox.as_ref()).map(|_| Response::new(Default::default()))
    }

    async fn get_sandbox(
        &self,
        r: Request<pb::GetSandboxRequest>,
    ) -> Reply<pb::GetSandboxResponse> {
        self.faults.before("GetSandbox").await?;
        let r = r.get_ref();
        if r.sandbox_id.is_empty() && r.sandbox_name.is_empty() {
            return Err(Status::invalid_argument(
                "sandbox_id: required (or sandbox_name)",
            ));
        }
        let id = self
            .find(&r.sandbox_id, &r.sandbox_name)
            .await
            .ok_or_else(|| Status::not_found("no such sandbox"))?;
        let sandbox = self.sandboxes.lock().await.get(&id).cloned();
        Ok(Response::new(pb::GetSandboxResponse { sandbox }))
    }

    async fn list_sandboxes(
        &self,
        _: Request<pb::ListSandboxesRequest>,
    ) -> Reply<pb::ListSandboxesResponse> {
        self.faults.before("ListSandboxes").await?;
        let sandboxes = self.sandboxes.lock().await.values().cloned().collect();
        Ok(Response::new(pb::ListSandboxesResponse { sandboxes }))
    }

    async fn create_sandbox(
        &self,
        r: Request<pb::CreateSandboxRequest>,
    ) -> Reply<pb::CreateSandboxResponse> {
        self.faults.before("CreateSandbox").await?;
        let sandbox = validate(r.get_ref().sandbox.as_ref())?;
        let mut sandboxes = self.sandboxes.lock().await;
        if let Some(existing) = sandboxes.get(&sandbox.id) {
            let mut bare = existing.clone();
            bare.status = None;
            return if bare == sandbox {
                Ok(Response::new(Default::default()))
            } else {
                Err(Status::already_exists("sandbox exists with another spec"))
            };
        }
        if sandboxes.named(&sandbox.name).is_some() {
            return Err(Status::already_exists("a sandbox has this name"));
        }
        let created = with_state(sandbox, true);
        let _ = self.events.send(event(&created));
        sandboxes.insert(created);
        Ok(Response::new(Default::default()))
    }

    async fn stop_sandbox(
        &self,
        r: Request<pb::StopSandboxRequest>,
    ) -> Reply<pb::StopSandboxResponse> {
        self.faults.before("StopSandbox").await?;
        if let Some(id) = self
            .find(&r.get_ref().sandbox_id, &r.get_ref().sandbox_name)
            .await
        {
            self.set_running(&id, false).await;
        }
        Ok(Response::new(Default::default()))
    }

    async fn start_sandbox(
        &self,
        r: Request<pb::StartSandboxRequest>,
    ) -> Reply<pb::StartSandboxResponse> {
        self.faults.before("StartSandbox").await?;
        let id = self
            .find(&r.get_ref().sandbox_id, &r.get_ref().sandbox_name)
            .await
            .ok_or_else(|| Status::not_found("no such sandbox"))?;
        self.set_running(&id, true).await;
        Ok(Response::new(Default::default()))
    }

    async fn delete_sandbox(
        &self,
        r: Request<pb::DeleteSandboxRequest>,
    ) -> Reply<pb::DeleteSandboxResponse> {
        self.faults.before("DeleteSandbox").await?;
        let Some(id) = self
            .find(&r.get_ref().sandbox_id, &r.get_ref().sandbox_name)
            .await
        else {
            return Ok(Response::new(pb::DeleteSandboxResponse { deleted: false }));
        };
        let deleted = self.sandboxes.lock().await.remove(&id).is_some();
        if deleted {
            let _ = self.events.send(pb::WatchSandboxesEvent {
                payload: Some(pb::watch_sandboxes_event::Payload::Deleted(
                    pb::WatchSandboxesDeletedEvent { sandbox_id: id },
                )),
            });
        }
        Ok(Response::new(pb::DeleteSandboxResponse { deleted }))
    }

    type ReadSandboxLogsStream =
        Pin<Box<dyn Stream<Item = Result<pb::SandboxLogChunk, Status>> + Send>>;

    /// The mock keeps no output.
    async fn read_sandbox_logs(
        &self,
        _: Request<pb::ReadSandboxLogsRequest>,
    ) -> Reply<Self::ReadSandboxLogsStream> {
        Err(Status::unimplemented(
            "the mock compute driver keeps no logs",
        ))
    }

    type WatchSandboxesStream =
        Pin<Box<dyn Stream<Item = Result<pb::WatchSandboxesEvent, Status>> + Send>>;

    async fn watch_sandboxes(
        &self,
        request: Request<pb::WatchSandboxesRequest>,
    ) -> Reply<Self::WatchSandboxesStream> {
        self.faults.before("WatchSandboxes").await?;
        let deadline = proto::deadline::grpc_timeout(request.metadata())
            .map(|t| tokio::time::Instant::now() + t);
        let expired = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut events = self.events.subscribe();
        let mut ended = self.faults.watch_epoch();
        ended.mark_unchanged();
        let snapshot: Vec<_> = self.sandboxes.lock().await.values().map(event).collect();
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            for item in snapshot {
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            tokio::pin!(expired);
            loop {
                let next = tokio::select! {
                    () = tx.closed() => return,
                    () = &mut expired => Err(Status::deadline_exceeded("the caller's deadline passed")),
                    _ = ended.changed() => Err(Status::unavailable("watch ended by a programmed fault")),
                    event = events.recv() => event.map_err(|_| Status::unavailable("watch fell behind; reopen it")),
                };
                let last = next.is_err();
                if tx.send(next).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn ensure_workspace(
        &self,
        _: Request<pb::EnsureWorkspaceRequest>,
    ) -> Reply<pb::EnsureWorkspaceResponse> {
        self.faults.before("EnsureWorkspace").await?;
        Ok(Response::new(Default::default()))
    }

    async fn delete_workspace(
        &self,
        _: Request<pb::DeleteWorkspaceRequest>,
    ) -> Reply<pb::DeleteWorkspaceResponse> {
        self.faults.before("DeleteWorkspace").await?;
        Ok(Response::new(Default::default()))
    }
}
