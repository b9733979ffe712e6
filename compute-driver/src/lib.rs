//! The ComputeDriver sidecar: turns "run this sandbox" into platform resources.
//!
//! - [`service`]: the thin tonic adapter (validation, the status-code mapping, Watch).
//! - [`validate`] and [`quantity`]: request checks shared by every backend.
//! - [`backend`]: the `Backend` trait, the `process` and `kubernetes` backends.
//! - [`launcher`]: how the process backend starts a sandbox (limits, then `exec`).
//! - [`supervisor`]: starting an upstream gateway's supervisor as the entrypoint.

pub mod backend;
mod check;
mod cli;
mod error;
pub mod launcher;
mod metrics;
pub mod quantity;
pub mod service;
pub mod supervisor;
pub mod validate;

use std::sync::Arc;

pub use check::check;
pub use cli::{
    Args, BackendKind, KubeArgs, NamespaceLayout, ProcessArgs, PullPolicy, SupervisorArgs,
};
pub use error::{Error as ComputeError, Result};
pub use metrics::{Metrics, PhaseCollector};
pub use service::ComputeDriverService;

use backend::Backend;
use backend::kubernetes::KubeBackend;
use backend::process::{Config as ProcessConfig, ProcessBackend};
use proto::pb::compute::encoded::compute_driver_server::{ComputeDriverServer, SERVICE_NAME};
use tonic::service::Routes;

/// The name this driver reports in `GetCapabilities`.
pub const DRIVER_NAME: &str = "compute-driver";

/// Prefix of every environment variable this binary reads.
pub const ENV_PREFIX: &str = "COMPUTE_DRIVER";

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend could not start.
    #[error("backend: {0}")]
    Backend(#[from] ComputeError),
    /// The server could not start or failed.
    #[error(transparent)]
    Server(#[from] proto::cli::ServerError),
    /// The admin HTTP endpoint failed.
    #[error("metrics endpoint: {0}")]
    Admin(#[from] std::io::Error),
}

/// Serves the driver on the configured socket until SIGTERM or SIGINT.
///
/// # Errors
/// See [`Error`].
pub async fn run(args: Args) -> Result<(), Error> {
    run_until(args, proto::shutdown_signal()).await
}

/// Serves the driver on the configured socket until `shutdown` completes.
///
/// # Errors
/// See [`Error`].
pub async fn run_until<F>(args: Args, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()>,
{
    let supervisor = args
        .supervisor
        .supervisor(args.backend)
        .map_err(ComputeError::FailedPrecondition)?;
    // Bind first: a second instance pointed at a live socket stops here, before it
    // touches the state directory.
    let socket =
        proto::bind(&args.socket.socket_config()).map_err(proto::cli::ServerError::from)?;
    let backend: Arc<dyn Backend> = match args.backend {
        BackendKind::Process => Arc::new(
            ProcessBackend::open(ProcessConfig {
                state_dir: args.state_dir(),
                stop_grace: args.stop_grace,
                launcher: std::env::current_exe().map_err(|e| {
                    Error::Backend(ComputeError::FailedPrecondition(format!(
                        "the process backend re-runs this binary as its launcher but cannot find it ({e}); is /proc mounted?"
                    )))
                })?,
                hide: args
                    .process
                    .hide_path
                    .iter()
                    .cloned()
                    .chain([std::path::absolute(&args.socket.socket)?])
                    .collect(),
                private_tmp: !args.process.shared_tmp,
                supervisor,
            })
            .await?,
        ),
        BackendKind::Kubernetes => Arc::new(
            KubeBackend::connect(backend::kubernetes::Config {
                supervisor,
                ..args.kube.config()
            })
            .await?,
        ),
    };
    let metrics = Metrics::new("compute_driver")
        .with_collector(Arc::new(PhaseCollector::new(Arc::clone(&backend))));
    let (health, health_service) = proto::Health::new([SERVICE_NAME]).await;
    let options = args.socket.serve_options();
    let routes = Routes::new(ComputeDriverServer::new(
        ComputeDriverService::new(backend, metrics.clone()).closing_with(options.closing.clone()),
    ))
    .add_service(health_service);

    let admin =
        proto::admin::AdminServer::start(args.metrics_addr, metrics, health.clone()).await?;
    let served = proto::serve(socket, routes, health, options, shutdown)
        .await
        .map_err(proto::cli::ServerError::from);
    admin.stop().await;
    served?;
    Ok(())
}
