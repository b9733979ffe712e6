//! The harness reports a deliberately non-conformant compute driver: wrong code for an
//! unknown id, a delete that always says `deleted=true`, a watch without a snapshot,
//! a world-accessible socket (and, through its endless watch, an ignored deadline).
//! Each failure says what the contract requires.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::pin::Pin;
use std::sync::Arc;

use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_server::{ComputeDriver, ComputeDriverServer};
use proto::testing::short_dir;
use tokio::sync::Mutex;
use tonic::codegen::tokio_stream::Stream;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// An in-memory driver with four deliberate contract violations.
#[derive(Default)]
struct Broken {
    sandboxes: Arc<Mutex<HashMap<String, pb::DriverSandbox>>>,
}

fn with_condition(mut sandbox: pb::DriverSandbox, kind: &str) -> pb::DriverSandbox {
    sandbox.status = Some(pb::DriverSandboxStatus {
        conditions: vec![pb::DriverCondition {
            r#type: kind.into(),
            status: "True".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    sandbox
}

fn check(sandbox: Option<&pb::DriverSandbox>) -> Result<pb::DriverSandbox, Status> {
    let sandbox = sandbox.ok_or_else(|| Status::invalid_argument("sandbox: required"))?;
    let bad_quantity = sandbox
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.resources.as_ref())
        .is_some_and(|r| r.memory_limit == "lots");
    if sandbox.id.is_empty() || sandbox.name.contains('\n') || bad_quantity {
        return Err(Status::invalid_argument("bad field"));
    }
    Ok(sandbox.clone())
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ComputeDriver for Broken {
    async fn get_capabilities(
        &self,
        _: Request<pb::GetCapabilitiesRequest>,
    ) -> Reply<pb::GetCapabilitiesResponse> {
        Ok(Response::new(pb::GetCapabilitiesResponse {
            driver_name: "broken".into(),
            driver_version: "0".into(),
            ..Default::default()
        }))
    }
    async fn authenticate_sandbox(
        &self,
        _: Request<pb::AuthenticateSandboxRequest>,
    ) -> Reply<pb::AuthenticateSandboxResponse> {
        Err(Status::unimplemented("no"))
    }
    async fn get_gateway_listener_requirements(
        &self,
        _: Request<pb::GetGatewayListenerRequirementsRequest>,
    ) -> Reply<pb::GetGatewayListenerRequirementsResponse> {
        Ok(Response::new(Default::default()))
    }
    async fn validate_sandbox_create(
        &self,
        r: Request<pb::ValidateSandboxCreateRequest>,
    ) -> Reply<pb::ValidateSandboxCreateResponse> {
        check(r.get_ref().sandbox.as_ref()).map(|_| Response::new(Default::default()))
    }
    async fn get_sandbox(
        &self,
        r: Request<pb::GetSandboxRequest>,
    ) -> Reply<pb::GetSandboxResponse> {
        let sandboxes = self.sandboxes.lock().await;
        match sandboxes.get(&r.get_ref().sandbox_id) {
            Some(s) => Ok(Response::new(pb::GetSandboxResponse {
                sandbox: Some(s.clone()),
            })),
            None => Err(Status::internal("lookup failed")), // violation: not NOT_FOUND
        }
    }
    async fn list_sandboxes(
        &self,
        _: Request<pb::ListSandboxesRequest>,
    ) -> Reply<pb::ListSandboxesResponse> {
        let sandboxes = self.sandboxes.lock().await.values().cloned().collect();
        Ok(Response::new(pb::ListSandboxesResponse { sandboxes }))
    }
    async fn create_sandbox(
        &self,
        r: Request<pb::CreateSandboxRequest>,
    ) -> Reply<pb::CreateSandboxResponse> {
        let sandbox = check(r.get_ref().sandbox.as_ref())?;
        let mut sandboxes = self.sandboxes.lock().await;
        if let Some(existing) = sandboxes.get(&sandbox.id)
            && existing.spec != sandbox.spec
        {
            return Err(Status::already_exists("exists"));
        }
        sandboxes.insert(sandbox.id.clone(), with_condition(sandbox, "Ready"));
        Ok(Response::new(Default::default()))
    }
    async fn stop_sandbox(
        &self,
        r: Request<pb::StopSandboxRequest>,
    ) -> Reply<pb::StopSandboxResponse> {
        if let Some(s) = self.sandboxes.lock().await.get_mut(&r.get_ref().sandbox_id) {
            *s = with_condition(s.clone(), "Suspended");
        }
        Ok(Response::new(Default::default()))
    }
    async fn start_sandbox(
        &self,
        r: Request<pb::StartSandboxRequest>,
    ) -> Reply<pb::StartSandboxResponse> {
        if let Some(s) = self.sandboxes.lock().await.get_mut(&r.get_ref().sandbox_id) {
            *s = with_condition(s.clone(), "Ready");
        }
        Ok(Response::new(Default::default()))
    }
    async fn delete_sandbox(
        &self,
        r: Request<pb::DeleteSandboxRequest>,
    ) -> Reply<pb::DeleteSandboxResponse> {
        self.sandboxes.lock().await.remove(&r.get_ref().sandbox_id);
        Ok(Response::new(pb::DeleteSandboxResponse { deleted: true })) // violation: not truthful
    }
    type ReadSandboxLogsStream =
        Pin<Box<dyn Stream<Item = Result<pb::SandboxLogChunk, Status>> + Send>>;
    async fn read_sandbox_logs(
        &self,
        _: Request<pb::ReadSandboxLogsRequest>,
    ) -> Reply<Self::ReadSandboxLogsStream> {
        Err(Status::unimplemented("no"))
    }
    type WatchSandboxesStream =
        Pin<Box<dyn Stream<Item = Result<pb::WatchSandboxesEvent, Status>> + Send>>;
    async fn watch_sandboxes(
        &self,
        _: Request<pb::WatchSandboxesRequest>,
    ) -> Reply<Self::WatchSandboxesStream> {
        // Violation: no snapshot, and no events either.
        Ok(Response::new(Box::pin(
            tonic::codegen::tokio_stream::pending(),
        )))
    }
    async fn ensure_workspace(
        &self,
        _: Request<pb::EnsureWorkspaceRequest>,
    ) -> Reply<pb::EnsureWorkspaceResponse> {
        Err(Status::unimplemented("no"))
    }
    async fn delete_workspace(
        &self,
        _: Request<pb::DeleteWorkspaceRequest>,
    ) -> Reply<pb::DeleteWorkspaceResponse> {
        Err(Status::unimplemented("no"))
    }
}

#[tokio::test]
async fn each_violation_is_reported_with_what_the_contract_requires() {
    let dir = short_dir();
    let socket_path = dir.path().join("broken.sock");
    let socket = proto::bind(&proto::SocketConfig {
        path: socket_path.clone(),
        ..Default::default()
    })
    .unwrap();
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666)).unwrap(); // violation
    let (health, health_service) = proto::Health::new(Vec::<String>::new()).await;
    let routes =
        Routes::new(ComputeDriverServer::new(Broken::default())).add_service(health_service);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(proto::serve(
        socket,
        routes,
        health,
        proto::ServeOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let config = conformance::Config {
        compute_socket: Some(socket_path),
        repeat: 3,
        ..conformance::Config::default()
    };
    let report = conformance::run(&config).await;
    let failures = report.failures();
    let failed = |case: &str, requirement: &str| {
        failures
            .iter()
            .any(|f| f.starts_with(&format!("compute/{case}:")) && f.contains(requirement))
    };
    assert!(
        failed("unknown_id_is_not_found", "requires NotFound"),
        "{failures:#?}"
    );
    // Its first violation met is the Get after Delete.
    assert!(
        failed("create_get_list_delete", "requires NotFound"),
        "{failures:#?}"
    );
    assert!(
        failed(
            "idempotent_rpcs_repeat_with_identical_results",
            "must answer deleted=false"
        ),
        "{failures:#?}"
    );
    assert!(
        failed(
            "watch_opens_with_a_snapshot_then_reports_changes",
            "must open with a snapshot"
        ),
        "{failures:#?}"
    );
    assert!(
        failed(
            "socket_not_world_accessible",
            "must not be accessible to other users"
        ),
        "{failures:#?}"
    );
    // Its endless watch also ignores the caller's deadline.
    assert!(
        failed("deadlines_are_honoured", "must honour grpc-timeout"),
        "{failures:#?}"
    );
    assert!(!report.passed());
    assert!(
        report.summary().contains("6 failed"),
        "{}",
        report.summary()
    );

    let _ = stop.send(());
    let _ = server.await;
}
