//! Shared helpers for the transport tests: short socket dirs and a scripted server.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::disallowed_types,
    clippy::unwrap_used
)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_server::{
    CredentialsDriver, CredentialsDriverServer,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};

/// A temp dir with a short path (socket paths must fit in 108 bytes).
pub fn short_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("uds")
        .tempdir_in("/tmp")
        .unwrap()
}

/// A CredentialsDriver whose resolve answers come from a script; records the
/// `grpc-timeout` header of every call.
#[derive(Clone, Default)]
pub struct Scripted {
    pub script: Arc<StdMutex<VecDeque<Code>>>,
    pub timeouts: Arc<StdMutex<Vec<Option<String>>>>,
}

impl Scripted {
    pub fn with_script(codes: impl IntoIterator<Item = Code>) -> Self {
        let scripted = Self::default();
        scripted.script.lock().unwrap().extend(codes);
        scripted
    }

    pub fn calls(&self) -> usize {
        self.timeouts.lock().unwrap().len()
    }
}

#[tonic::async_trait]
impl CredentialsDriver for Scripted {
    async fn resolve_credential(
        &self,
        request: Request<pb::ResolveCredentialRequest>,
    ) -> Result<Response<pb::ResolveCredentialResponse>, Status> {
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .map(|v| v.to_str().unwrap().to_owned());
        self.timeouts.lock().unwrap().push(timeout);
        match self.script.lock().unwrap().pop_front() {
            None | Some(Code::Ok) => Ok(Response::new(pb::ResolveCredentialResponse {
                token: "scripted-token".into(),
                token_type: "Bearer".into(),
                ..Default::default()
            })),
            Some(code) => Err(Status::new(code, "scripted failure")),
        }
    }

    async fn list_credentials(
        &self,
        _request: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        Ok(Response::new(pb::ListCredentialsResponse::default()))
    }

    async fn get_capabilities(
        &self,
        _request: Request<pb::GetCapabilitiesRequest>,
    ) -> Result<Response<pb::GetCapabilitiesResponse>, Status> {
        Ok(Response::new(pb::GetCapabilitiesResponse {
            driver_name: "scripted".into(),
            ..Default::default()
        }))
    }
}

/// A server running on a socket until `stop` is sent.
pub struct Running {
    pub stop: oneshot::Sender<()>,
    pub task: JoinHandle<Result<(), proto::ServeError>>,
    pub health: proto::Health,
}

impl Running {
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Binds `config` and serves `service` plus health on it.
pub async fn serve(config: proto::SocketConfig, service: Scripted) -> Running {
    let socket = proto::bind(&config).unwrap();
    let (health, health_service) =
        proto::Health::new([proto::pb::credentials::v1::credentials_driver_server::SERVICE_NAME])
            .await;
    let routes = Routes::new(CredentialsDriverServer::new(service)).add_service(health_service);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(proto::serve(
        socket,
        routes,
        health.clone(),
        proto::ServeOptions {
            shutdown_grace: std::time::Duration::from_millis(500),
            ..Default::default()
        },
        async {
            let _ = stopped.await;
        },
    ));
    Running { stop, task, health }
}

/// Serves `service` without the health service (like some deployed drivers).
pub async fn serve_without_health(config: proto::SocketConfig, service: Scripted) -> Running {
    let socket = proto::bind(&config).unwrap();
    let (health, _unused) = proto::Health::new(Vec::<String>::new()).await;
    let routes = Routes::new(CredentialsDriverServer::new(service));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(proto::serve(
        socket,
        routes,
        health.clone(),
        proto::ServeOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    Running { stop, task, health }
}

/// Socket config with defaults for `path`.
pub fn config(path: &Path) -> proto::SocketConfig {
    proto::SocketConfig {
        path: path.to_path_buf(),
        ..Default::default()
    }
}

pub fn sock(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("d.sock")
}
