//! The tonic adapter for `openshell.compute.v1.ComputeDriver`: unpack, validate, call
//! the backend, convert. Errors become gRPC codes in exactly one place, [`status`].

use std::pin::Pin;
use std::sync::Arc;

use prost::Message as _;
use proto::pb::compute::encoded::compute_driver_server::ComputeDriver;
use proto::pb::compute::encoded::{ListSandboxesReply, WatchEvent};
use proto::pb::compute::v1 as pb;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::backend::{Backend, Deadline, Event, LogRequest, LogSource, SandboxRef};
use crate::metrics::Metrics;
use crate::{ComputeError as Error, validate};

type Reply<T> = Result<Response<T>, Status>;

/// The ComputeDriver service over one backend.
#[derive(Clone)]
pub struct ComputeDriverService {
    backend: Arc<dyn Backend>,
    metrics: Metrics,
    closing: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for ComputeDriverService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeDriverService")
            .finish_non_exhaustive()
    }
}

/// The one mapping from domain errors to gRPC codes (DESIGN.md's table). Internal
/// causes are logged; the caller gets generic text.
pub fn status(error: Error) -> Status {
    match error {
        Error::InvalidArgument(field) => Status::invalid_argument(field.to_string()),
        Error::NotFound(_) => Status::not_found(error.to_string()),
        Error::AlreadyExists(_) => Status::already_exists(error.to_string()),
        Error::FailedPrecondition(message) => Status::failed_precondition(message),
        Error::PermissionDenied(message) => Status::permission_denied(message),
        Error::Unavailable(message) => Status::unavailable(message),
        Error::Unimplemented(message) => Status::unimplemented(message),
        Error::DeadlineExceeded(message) => Status::deadline_exceeded(message),
        Error::Storage { .. } | Error::Process { .. } | Error::StateDirInUse(_) => {
            tracing::error!(%error, "compute backend failure");
            Status::internal("the compute driver failed to carry out the request; see its log")
        }
    }
}

impl ComputeDriverService {
    /// A service over `backend`, counting RPCs in `metrics`.
    pub fn new(backend: Arc<dyn Backend>, metrics: Metrics) -> Self {
        Self {
            backend,
            metrics,
            closing: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Ends open watches with UNAVAILABLE when `closing` is cancelled (the server's
    /// shutdown: see `proto::ServeOptions::closing`), so callers reconnect elsewhere
    /// at once instead of holding this instance for its whole grace.
    #[must_use]
    pub fn closing_with(mut self, closing: tokio_util::sync::CancellationToken) -> Self {
        self.closing = closing;
        self
    }

    fn finish<T>(&self, rpc: &'static str, result: crate::Result<T>) -> Reply<T> {
        let reply = result.map(Response::new).map_err(status);
        self.metrics.record_rpc(
            rpc,
            reply.as_ref().err().map_or(tonic::Code::Ok, Status::code),
        );
        reply
    }

    fn check_create(
        &self,
        sandbox: Option<&pb::DriverSandbox>,
    ) -> crate::Result<(pb::DriverSandbox, validate::Limits)> {
        let sandbox = sandbox.ok_or_else(|| {
            Error::InvalidArgument(validate::InvalidField {
                field: "sandbox".into(),
                reason: "required".into(),
            })
        })?;
        let mut sandbox = sandbox.clone();
        if let Some(spec) = sandbox.spec.as_mut() {
            crate::supervisor::default_process(spec);
        }
        let limits = validate::sandbox(&sandbox)?;
        self.backend.validate(&sandbox, &limits)?;
        Ok((sandbox, limits))
    }
}

fn reference(id: &str, name: &str) -> crate::Result<SandboxRef> {
    validate::reference(id, name)?;
    Ok(SandboxRef::from_request(id, name))
}

/// Runs a state-changing backend call on its own task: when a caller's deadline passes,
/// tonic drops the handler, and the operation must still finish (a Stop that was cut
/// after SIGTERM would never send SIGKILL). The caller gets DEADLINE_EXCEEDED; the
/// outcome shows up in Get, List and Watch.
async fn detached<T, F, Fut>(backend: &Arc<dyn Backend>, op: F) -> crate::Result<T>
where
    T: Send + 'static,
    F: FnOnce(Arc<dyn Backend>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<T>> + Send + 'static,
{
    tokio::spawn(op(Arc::clone(backend)))
        .await
        .unwrap_or_else(|join| {
            Err(Error::Process {
                action: "run a backend operation".into(),
                source: std::io::Error::other(join.to_string()),
            })
        })
}

fn not_supported(rpc: &str, why: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not supported by this driver ({why})"))
}

#[tonic::async_trait]
impl ComputeDriver for ComputeDriverService {
    async fn get_capabilities(
        &self,
        _: Request<pb::GetCapabilitiesRequest>,
    ) -> Reply<pb::GetCapabilitiesResponse> {
        let caps = self.backend.capabilities();
        self.finish(
            "GetCapabilities",
            Ok(pb::GetCapabilitiesResponse {
                driver_name: crate::DRIVER_NAME.to_owned(),
                driver_version: env!("CARGO_PKG_VERSION").to_owned(),
                default_image: caps.default_image,
                gateway_manages_lifecycle: false,
                supports_sandbox_authentication: false,
                driver_reports_runtime_readiness: caps.reports_runtime_readiness,
            }),
        )
    }

    async fn authenticate_sandbox(
        &self,
        _: Request<pb::AuthenticateSandboxRequest>,
    ) -> Reply<pb::AuthenticateSandboxResponse> {
        self.metrics
            .record_rpc("AuthenticateSandbox", tonic::Code::Unimplemented);
        Err(not_supported(
            "AuthenticateSandbox",
            "supports_sandbox_authentication is false",
        ))
    }

    async fn get_gateway_listener_requirements(
        &self,
        _: Request<pb::GetGatewayListenerRequirementsRequest>,
    ) -> Reply<pb::GetGatewayListenerRequirementsResponse> {
        self.finish("GetGatewayListenerRequirements", Ok(Default::default()))
    }

    async fn validate_sandbox_create(
        &self,
        request: Request<pb::ValidateSandboxCreateRequest>,
    ) -> Reply<pb::ValidateSandboxCreateResponse> {
        let result = self
            .check_create(request.get_ref().sandbox.as_ref())
            .map(|_| Default::default());
        self.finish("ValidateSandboxCreate", result)
    }

    async fn get_sandbox(
        &self,
        request: Request<pb::GetSandboxRequest>,
    ) -> Reply<pb::GetSandboxResponse> {
        let r = request.get_ref();
        let result = match reference(&r.sandbox_id, &r.sandbox_name) {
            Ok(sandbox) => self
                .backend
                .get(&sandbox)
                .await
                .map(|s| pb::GetSandboxResponse { sandbox: Some(s) }),
            Err(e) => Err(e),
        };
        self.finish("GetSandbox", result)
    }

    async fn list_sandboxes(
        &self,
        _: Request<pb::ListSandboxesRequest>,
    ) -> Reply<ListSandboxesReply> {
        let result = self
            .backend
            .list_encoded()
            .await
            .map(|sandboxes| ListSandboxesReply { sandboxes });
        self.finish("ListSandboxes", result)
    }

    async fn create_sandbox(
        &self,
        request: Request<pb::CreateSandboxRequest>,
    ) -> Reply<pb::CreateSandboxResponse> {
        let deadline = Deadline::of(&request);
        let result = match self.check_create(request.get_ref().sandbox.as_ref()) {
            Ok((sandbox, limits)) => {
                detached(&self.backend, |b| async move {
                    b.create(sandbox, limits, deadline).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        self.finish("CreateSandbox", result.map(|()| Default::default()))
    }

    async fn stop_sandbox(
        &self,
        request: Request<pb::StopSandboxRequest>,
    ) -> Reply<pb::StopSandboxResponse> {
        let deadline = Deadline::of(&request);
        let r = request.get_ref();
        let result = match reference(&r.sandbox_id, &r.sandbox_name) {
            Ok(sandbox) => {
                detached(&self.backend, |b| async move {
                    b.stop(&sandbox, deadline).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        self.finish("StopSandbox", result.map(|()| Default::default()))
    }

    async fn start_sandbox(
        &self,
        request: Request<pb::StartSandboxRequest>,
    ) -> Reply<pb::StartSandboxResponse> {
        let deadline = Deadline::of(&request);
        let r = request.get_ref();
        let result = match reference(&r.sandbox_id, &r.sandbox_name) {
            Ok(sandbox) => {
                detached(&self.backend, |b| async move {
                    b.start(&sandbox, deadline).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        self.finish("StartSandbox", result.map(|()| Default::default()))
    }

    async fn delete_sandbox(
        &self,
        request: Request<pb::DeleteSandboxRequest>,
    ) -> Reply<pb::DeleteSandboxResponse> {
        let deadline = Deadline::of(&request);
        let r = request.get_ref();
        let result = match reference(&r.sandbox_id, &r.sandbox_name) {
            Ok(sandbox) => {
                detached(&self.backend, |b| async move {
                    b.delete(&sandbox, deadline).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        self.finish(
            "DeleteSandbox",
            result.map(|deleted| pb::DeleteSandboxResponse { deleted }),
        )
    }

    type ReadSandboxLogsStream =
        Pin<Box<dyn Stream<Item = Result<pb::SandboxLogChunk, Status>> + Send + 'static>>;

    async fn read_sandbox_logs(
        &self,
        request: Request<pb::ReadSandboxLogsRequest>,
    ) -> Reply<Self::ReadSandboxLogsStream> {
        let message = request.into_inner();
        let result = match SandboxRef::from_request(&message.sandbox_id, &message.sandbox_name) {
            SandboxRef::Name(name) if name.is_empty() => {
                Err(Error::InvalidArgument(validate::InvalidField {
                    field: "sandbox_id".into(),
                    reason: "give the sandbox's id or name".into(),
                }))
            }
            reference => {
                self.backend
                    .logs(
                        &reference,
                        LogRequest {
                            follow: message.follow,
                            tail_bytes: message.tail_bytes,
                        },
                    )
                    .await
            }
        };
        let stream = match result {
            Ok(stream) => stream,
            Err(error) => return self.finish("ReadSandboxLogs", Err(error)),
        };
        self.metrics.record_rpc("ReadSandboxLogs", tonic::Code::Ok);
        Ok(Response::new(Box::pin(stream.map(|item| {
            item.map(|chunk| pb::SandboxLogChunk {
                stream: match chunk.source {
                    LogSource::Stdout => pb::LogStream::Stdout,
                    LogSource::Stderr => pb::LogStream::Stderr,
                }
                .into(),
                data: chunk.data,
            })
            .map_err(status)
        }))))
    }

    type WatchSandboxesStream =
        Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send + 'static>>;

    async fn watch_sandboxes(
        &self,
        request: Request<pb::WatchSandboxesRequest>,
    ) -> Reply<Self::WatchSandboxesStream> {
        // Subscribe before the snapshot so no change falls between them.
        let deadline = Deadline::of(&request).instant();
        let events = self.backend.subscribe();
        let snapshot = match self.backend.list_encoded().await {
            Ok(snapshot) => snapshot,
            Err(error) => return self.finish("WatchSandboxes", Err(error)),
        };
        self.metrics.record_rpc("WatchSandboxes", tonic::Code::Ok);
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(forward(events, tx, deadline, self.closing.clone()));
        // The snapshot goes straight from its kept encodings to the response body;
        // changes follow from the forwarding task, in order, once it is sent.
        let snapshot = tokio_stream::iter(
            snapshot
                .into_iter()
                .map(|sandbox| Ok(WatchEvent::sandbox(sandbox))),
        );
        Ok(Response::new(Box::pin(
            snapshot.chain(ReceiverStream::new(rx)),
        )))
    }

    async fn ensure_workspace(
        &self,
        request: Request<pb::EnsureWorkspaceRequest>,
    ) -> Reply<pb::EnsureWorkspaceResponse> {
        let deadline = Deadline::of(&request);
        let name = &request.get_ref().workspace;
        let result = match validate::workspace(name) {
            Ok(()) => self
                .backend
                .ensure_workspace(name, deadline)
                .await
                .map(|()| Default::default()),
            Err(e) => Err(e.into()),
        };
        self.finish("EnsureWorkspace", result)
    }

    async fn delete_workspace(
        &self,
        request: Request<pb::DeleteWorkspaceRequest>,
    ) -> Reply<pb::DeleteWorkspaceResponse> {
        let deadline = Deadline::of(&request);
        let name = &request.get_ref().workspace;
        let result = match validate::workspace(name) {
            Ok(()) => self
                .backend
                .delete_workspace(name, deadline)
                .await
                .map(|()| Default::default()),
            Err(e) => Err(e.into()),
        };
        self.finish("DeleteWorkspace", result)
    }
}

type EventSender = mpsc::Sender<Result<WatchEvent, Status>>;

/// Sends every change, until the watcher goes away or its deadline passes
/// (DEADLINE_EXCEEDED). A watcher that falls behind gets UNAVAILABLE and reconnects
/// for a fresh snapshot.
async fn forward(
    mut events: broadcast::Receiver<Event>,
    tx: EventSender,
    deadline: Option<tokio::time::Instant>,
    closing: tokio_util::sync::CancellationToken,
) {
    let expired = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    loop {
        let event = tokio::select! {
            () = tx.closed() => return,
            () = closing.cancelled() => {
                let _ = tx
                    .send(Err(Status::unavailable(
                        "the driver is shutting down; reconnect (to the next instance)",
                    )))
                    .await;
                return;
            }
            () = &mut expired => {
                let _ = tx.send(Err(Status::deadline_exceeded("the caller's deadline passed"))).await;
                return;
            }
            event = events.recv() => event,
        };
        let message = match event {
            Ok(event) => Ok(wire_event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(Status::unavailable(format!(
                "watch fell {missed} events behind; reopen it for a fresh snapshot"
            ))),
            Err(broadcast::error::RecvError::Closed) => {
                Err(Status::unavailable("the driver is shutting down"))
            }
        };
        let last = message.is_err();
        if tx.send(message).await.is_err() || last {
            return;
        }
    }
}

fn wire_event(event: Event) -> WatchEvent {
    match event {
        Event::Sandbox(sandbox) => WatchEvent::sandbox(sandbox.encode_to_vec().into()),
        Event::Deleted(sandbox_id) => WatchEvent::deleted(sandbox_id),
        Event::Platform { sandbox_id, event } => WatchEvent::platform(sandbox_id, event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_table_row() {
        let rows = [
            (
                Error::InvalidArgument(validate::InvalidField {
                    field: "sandbox.id".into(),
                    reason: "required".into(),
                }),
                tonic::Code::InvalidArgument,
            ),
            (Error::NotFound("x".into()), tonic::Code::NotFound),
            (Error::AlreadyExists("x".into()), tonic::Code::AlreadyExists),
            (
                Error::FailedPrecondition("no gpu".into()),
                tonic::Code::FailedPrecondition,
            ),
            (
                Error::PermissionDenied("rbac".into()),
                tonic::Code::PermissionDenied,
            ),
            (Error::Unavailable("down".into()), tonic::Code::Unavailable),
            (
                Error::DeadlineExceeded("late".into()),
                tonic::Code::DeadlineExceeded,
            ),
            (
                Error::Storage {
                    action: "write",
                    path: "/secret/path".into(),
                    source: std::io::Error::other("disk full"),
                },
                tonic::Code::Internal,
            ),
        ];
        for (error, code) in rows {
            let status = status(error);
            assert_eq!(status.code(), code);
            assert!(
                !status.message().contains("/secret/path"),
                "internal details stay in the log"
            );
        }
    }
}
