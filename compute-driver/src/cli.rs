//! Command-line flags (every flag also reads a `COMPUTE_DRIVER_*` env var).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use proto::cli::{CheckArgs, LogArgs, SocketArgs, parse_duration};

/// Serves the ComputeDriver gRPC contract (and grpc.health.v1) on a Unix socket.
#[derive(Parser, Clone, Debug)]
#[command(name = "compute-driver", version, about, long_about = None)]
pub struct Args {
    /// Socket flags.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Where sandboxes run.
    #[arg(long, value_enum, default_value_t = BackendKind::Process)]
    pub backend: BackendKind,
    /// Directory for sandbox records, tokens, logs and working directories
    /// (default: /tmp/compute-driver-<uid>). Sandboxes survive driver restarts through it.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// After SIGTERM to a sandbox's processes on Stop/Delete, how long before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub stop_grace: Duration,
    /// Process backend flags.
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Kubernetes backend flags.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Supervisor flags (for upstream OpenShell gateways).
    #[command(flatten)]
    pub supervisor: SupervisorArgs,
    /// Serve /healthz, /readyz and /metrics over HTTP on this address (off when unset).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// `--check-config`.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// Flags of the process backend (`--backend process`).
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Process backend")]
pub struct ProcessArgs {
    /// Host paths no sandbox may see (a directory or a file; repeat or separate with
    /// commas): the gateway's store and token files, other services' sockets. The
    /// driver's own socket and state directory are always hidden.
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub hide_path: Vec<PathBuf>,
    /// Let sandboxes share the host's /tmp (default: each gets a private one).
    #[arg(long)]
    pub shared_tmp: bool,
}

/// Flags of the supervisor option: what upstream OpenShell gateways need to see a
/// sandbox Ready (their supervisor runs as the entrypoint and is handed the user's
/// process). Off by default.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Upstream gateway supervisor")]
pub struct SupervisorArgs {
    /// Process backend: start this supervisor binary (upstream's `openshell-sandbox`)
    /// as each sandbox's entrypoint, handing it the user's command.
    #[arg(long, value_name = "PATH")]
    pub supervisor: Option<PathBuf>,
    /// Kubernetes backend: side-load the supervisor from this image (an init container
    /// copies it into the pod) and run it as each sandbox's command.
    #[arg(long, value_name = "IMAGE")]
    pub supervisor_image: Option<String>,
    /// The gateway's gRPC endpoint as sandboxes reach it (required with the supervisor),
    /// e.g. http://openshell-gateway.openshell.svc:8080.
    #[arg(long, value_name = "URL")]
    pub supervisor_endpoint: Option<String>,
}

impl SupervisorArgs {
    /// The supervisor option for `backend`, if on.
    ///
    /// # Errors
    /// A message naming the flag when the flags do not fit together or the backend.
    pub fn supervisor(
        &self,
        backend: BackendKind,
    ) -> Result<Option<crate::supervisor::Supervisor>, String> {
        let source = match (backend, &self.supervisor, &self.supervisor_image) {
            (_, None, None) => {
                return match &self.supervisor_endpoint {
                    Some(_) => Err("--supervisor-endpoint: only used with --supervisor (process backend) or --supervisor-image (kubernetes backend); give one or drop it".into()),
                    None => Ok(None),
                };
            }
            (BackendKind::Process, Some(path), None) => supervisor_binary(path)?,
            (BackendKind::Kubernetes, None, Some(image)) if !image.trim().is_empty() => {
                image.clone()
            }
            (BackendKind::Kubernetes, None, Some(_)) => {
                return Err("--supervisor-image: must name an image".into());
            }
            (BackendKind::Process, _, Some(_)) => {
                return Err("--supervisor-image: is for --backend kubernetes; with the process backend give the binary's path as --supervisor".into());
            }
            (BackendKind::Kubernetes, Some(_), _) => {
                return Err("--supervisor: is a host path for the process backend; with --backend kubernetes give the supervisor's image as --supervisor-image".into());
            }
        };
        let endpoint = self.supervisor_endpoint.clone().unwrap_or_default();
        if endpoint.trim().is_empty() {
            return Err("--supervisor-endpoint: required with the supervisor (the gateway's gRPC endpoint as sandboxes reach it, e.g. http://10.0.0.5:8080)".into());
        }
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(format!(
                "--supervisor-endpoint {endpoint:?}: must be an http:// or https:// URL"
            ));
        }
        Ok(Some(crate::supervisor::Supervisor { source, endpoint }))
    }
}

/// `--supervisor PATH`: an absolute path to an executable file.
fn supervisor_binary(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!(
            "--supervisor {shown}: must be an absolute path (sandboxes start in their own directory)"
        ));
    }
    let metadata = std::fs::metadata(path).map_err(|e| format!("--supervisor {shown}: {e}"))?;
    if !metadata.is_file() || metadata.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "--supervisor {shown}: not an executable file (chmod +x it, or point at upstream's openshell-sandbox binary)"
        ));
    }
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("--supervisor {shown}: must be valid UTF-8"))
}

/// A compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Local process groups on this machine (the embedded default).
    Process,
    /// Pods and Secrets on a Kubernetes cluster.
    Kubernetes,
}

/// How the Kubernetes backend spreads sandboxes over namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NamespaceLayout {
    /// `<kube-namespace>-<workspace>` per workspace, created by EnsureWorkspace (needs a
    /// ClusterRole).
    PerWorkspace,
    /// Everything in `<kube-namespace>`, objects named `<workspace>--<name>` (a Role in
    /// that namespace is enough).
    Shared,
}

/// `imagePullPolicy` of sandbox containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull when the node does not have the image.
    IfNotPresent,
    /// Pull every time a pod starts.
    Always,
    /// Never pull (the image must be on the node).
    Never,
}

/// Flags of the Kubernetes backend (`--backend kubernetes`).
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Kubernetes backend")]
pub struct KubeArgs {
    /// Kubeconfig file (default: in-cluster config, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace layout of sandboxes.
    #[arg(long, value_enum, default_value_t = NamespaceLayout::PerWorkspace)]
    pub kube_namespaces: NamespaceLayout,
    /// The shared namespace, or the prefix of per-workspace namespaces (and the
    /// namespace of sandboxes without a workspace).
    #[arg(long, value_name = "NAME", default_value = "openshell")]
    pub kube_namespace: String,
    /// Label on everything this driver creates; drivers with different ids on one
    /// cluster never touch each other's sandboxes.
    #[arg(long, value_name = "ID", default_value = "default")]
    pub gateway_id: String,
    /// Image of sandboxes that name none (unset: every sandbox must name one).
    #[arg(long, value_name = "IMAGE", default_value = "")]
    pub default_image: String,
    /// imagePullPolicy of sandbox containers.
    #[arg(long, value_enum, default_value_t = PullPolicy::IfNotPresent)]
    pub image_pull_policy: PullPolicy,
    /// Bound of each Kubernetes API call when the RPC carries no deadline (and of the
    /// first list at start-up).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub kube_call_timeout: Duration,
}

impl KubeArgs {
    /// The backend's settings.
    pub fn config(&self) -> crate::backend::kubernetes::Config {
        use crate::backend::kubernetes::{Config, Namespaces};
        Config {
            kubeconfig: self.kubeconfig.clone(),
            namespaces: match self.kube_namespaces {
                NamespaceLayout::PerWorkspace => Namespaces::PerWorkspace,
                NamespaceLayout::Shared => Namespaces::Shared,
            },
            namespace: self.kube_namespace.clone(),
            gateway_id: self.gateway_id.clone(),
            default_image: self.default_image.clone(),
            image_pull_policy: match self.image_pull_policy {
                PullPolicy::IfNotPresent => "IfNotPresent",
                PullPolicy::Always => "Always",
                PullPolicy::Never => "Never",
            }
            .to_owned(),
            call_timeout: self.kube_call_timeout,
            supervisor: None,
        }
    }
}

impl Args {
    /// The state directory, defaulted per user.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "/tmp/compute-driver-{}",
                nix::unistd::Uid::effective()
            ))
        })
    }
}
