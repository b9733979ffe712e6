//! The Kubernetes backend: sandboxes become plain Pods and Secrets, so it runs on any
//! cluster with no extra controller.
//!
//! - [`config`]: settings and where a sandbox's objects live (namespace layouts).
//! - [`platform`], [`pod_spec`], [`status`]: sans-IO `platform_config` validation, the
//!   Secret and Pod a sandbox becomes, and its status from the Pod.
//! - `cache` (sans-IO) and `informer`: what the driver knows, kept by the kube runtime
//!   watcher; Get, List and Watch read it, never the API server.
//! - `api`, `ops` and `workspaces`: the calls, each bounded by the RPC's deadline.

mod api;
mod cache;
pub mod config;
mod informer;
mod ops;
pub mod platform;
pub mod pod_spec;
pub mod status;
mod workspaces;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, Secret};
use kube::Api;
use proto::pb::compute::v1 as pb;
use tokio::sync::broadcast;

use super::{Backend, Capabilities, Deadline, Event, SandboxRef};
use crate::validate::{InvalidField, Limits};
use crate::{ComputeError as Error, Result};
pub use config::{Config, Namespaces};

/// A Kubernetes client built from `config`'s kubeconfig (or the in-cluster config),
/// without calling the API server (`--check-config`).
///
/// # Errors
/// FAILED_PRECONDITION naming the flag when no configuration loads.
pub async fn client(config: &Config) -> crate::Result<kube::Client> {
    api::client(config).await
}
use informer::Shared;

/// The Kubernetes backend.
#[derive(Clone, Debug)]
pub struct KubeBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    client: kube::Client,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeBackend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl KubeBackend {
    /// Connects, starts watching this driver's Secrets, Pods and their Events, and
    /// returns once both are listed (at most `config.call_timeout`).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad `--gateway-id`, `FailedPrecondition` when there is
    /// no usable Kubernetes configuration, `Unavailable` when the API server does not
    /// answer the first lists in time.
    pub async fn connect(config: Config) -> Result<Self> {
        config::label_value("--gateway-id", &config.gateway_id)?;
        config.namespace_of("--kube-namespace", "")?;
        let client = api::client(&config).await?;
        let shared = Arc::new(Shared::new());
        let selector = config.selector();
        let (secrets, pods, events): (Api<Secret>, Api<Pod>, Api<CoreEvent>) =
            match config.namespaces {
                Namespaces::PerWorkspace => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                ),
                Namespaces::Shared => (
                    Api::namespaced(client.clone(), &config.namespace),
                    Api::namespaced(client.clone(), &config.namespace),
                    Api::namespaced(client.clone(), &config.namespace),
                ),
            };
        let tasks = vec![
            tokio::spawn(informer::follow(
                secrets,
                selector.clone(),
                Arc::clone(&shared),
            )),
            tokio::spawn(informer::follow(pods, selector, Arc::clone(&shared))),
            tokio::spawn(informer::follow_events(events, Arc::clone(&shared))),
        ];
        let backend = Self {
            inner: Arc::new(Inner {
                config,
                client,
                shared,
                tasks,
            }),
        };
        let mut synced = backend.inner.shared.synced.subscribe();
        let limit = backend.inner.config.call_timeout;
        if tokio::time::timeout(limit, synced.wait_for(|done| *done))
            .await
            .is_err()
        {
            return Err(Error::Unavailable(format!(
                "the Kubernetes API did not list this driver's Secrets and Pods within {limit:?}: check --kubeconfig, the API server and the RBAC rules (the log shows each failed attempt)"
            )));
        }
        let count = backend.inner.shared.cache.lock().await.list().len();
        tracing::info!(
            sandboxes = count,
            namespaces = ?backend.inner.config.namespaces,
            namespace = %backend.inner.config.namespace,
            "following sandboxes on Kubernetes"
        );
        Ok(backend)
    }

    async fn resolve(&self, reference: &SandboxRef) -> Option<String> {
        let cache = self.inner.shared.cache.lock().await;
        match reference {
            SandboxRef::Id(id) => cache.entry(id).map(|_| id.clone()),
            SandboxRef::Name(name) => cache.id_by_name(name),
        }
    }
}

#[tonic::async_trait]
impl Backend for KubeBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            default_image: self.inner.config.default_image.clone(),
            reports_runtime_readiness: true,
        }
    }

    fn validate(&self, sandbox: &pb::DriverSandbox, _limits: &Limits) -> Result<()> {
        config::label_value("sandbox.id", &sandbox.id)?;
        self.inner
            .config
            .placement(&sandbox.workspace, &sandbox.name)?;
        let template = sandbox
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        platform::parse(template.platform_config.as_ref())?;
        if let Some(key) = template
            .driver_config
            .as_ref()
            .and_then(|c| c.fields.keys().next())
        {
            return Err(InvalidField {
                field: format!("sandbox.spec.template.driver_config.{key}"),
                reason: "the Kubernetes backend takes no driver_config keys; pod settings go in platform_config".into(),
            }
            .into());
        }
        if template.image.is_empty() && self.inner.config.default_image.is_empty() {
            return Err(InvalidField {
                field: "sandbox.spec.template.image".into(),
                reason: "required: this driver has no --default-image".into(),
            }
            .into());
        }
        Ok(())
    }

    async fn create(
        &self,
        sandbox: pb::DriverSandbox,
        _limits: Limits,
        deadline: Deadline,
    ) -> Result<()> {
        self.inner.create(sandbox, deadline).await
    }

    async fn get(&self, sandbox: &SandboxRef) -> Result<pb::DriverSandbox> {
        let cache = self.inner.shared.cache.lock().await;
        let id = match sandbox {
            SandboxRef::Id(id) => Some(id.clone()),
            SandboxRef::Name(name) => cache.id_by_name(name),
        };
        id.and_then(|id| cache.view(&id))
            .ok_or_else(|| Error::NotFound(sandbox.as_str().to_owned()))
    }

    async fn list(&self) -> Result<Vec<pb::DriverSandbox>> {
        Ok(self.inner.shared.cache.lock().await.list())
    }

    async fn list_encoded(&self) -> Result<Vec<bytes::Bytes>> {
        Ok(self.inner.shared.cache.lock().await.list_encoded())
    }

    async fn stop(&self, sandbox: &SandboxRef, deadline: Deadline) -> Result<()> {
        match self.resolve(sandbox).await {
            Some(id) => self.inner.stop(&id, deadline).await,
            None => Ok(()),
        }
    }

    async fn start(&self, sandbox: &SandboxRef, deadline: Deadline) -> Result<()> {
        let id = self
            .resolve(sandbox)
            .await
            .ok_or_else(|| Error::NotFound(sandbox.as_str().to_owned()))?;
        self.inner.start(&id, deadline).await
    }

    async fn delete(&self, sandbox: &SandboxRef, deadline: Deadline) -> Result<bool> {
        match self.resolve(sandbox).await {
            Some(id) => self.inner.delete(&id, deadline).await,
            None => Ok(false),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.shared.events.subscribe()
    }

    async fn ensure_workspace(&self, name: &str, deadline: Deadline) -> Result<()> {
        let namespace = self.inner.config.namespace_of("workspace", name)?;
        match self.inner.config.namespaces {
            Namespaces::PerWorkspace => {
                self.inner
                    .ensure_namespace(&namespace, name, deadline)
                    .await
            }
            Namespaces::Shared => Ok(()),
        }
    }

    async fn delete_workspace(&self, name: &str, deadline: Deadline) -> Result<()> {
        let namespace = self.inner.config.namespace_of("workspace", name)?;
        let users: Vec<String> = self
            .inner
            .shared
            .cache
            .lock()
            .await
            .list()
            .into_iter()
            .filter(|s| s.workspace == name)
            .map(|s| s.id)
            .collect();
        if !users.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "workspace {name:?} still has sandboxes ({}): delete them first",
                users.join(", ")
            )));
        }
        match self.inner.config.namespaces {
            Namespaces::PerWorkspace => self.inner.remove_namespace(&namespace, deadline).await,
            Namespaces::Shared => Ok(()),
        }
    }
}
