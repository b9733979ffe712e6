//! The state-changing operations: each is a few API calls, every one bounded by the
//! RPC's deadline, whose results go straight into the cache (so a Get right after a
//! Create sees it) before the watch confirms them.
//!
//! - Create: the Secret (token + record), then the Pod owned by it; if the Pod cannot
//!   be created the Secret is removed again, so nothing is left half-made. A repeated
//!   Create whose first reply was lost finds its own objects and succeeds.
//! - Stop records the desired state `stopped` on the Secret, then deletes the Pod;
//!   Start records `running` and recreates the Pod from the Secret's record (replacing
//!   a finished one); Delete removes the Secret (the Pod is garbage-collected, and
//!   deleted directly to be prompt).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use prost::Message as _;
use proto::pb::compute::v1 as pb;

use super::Inner;
use super::api::{self, Answer};
use super::cache::{Entry, Origin, entry_of};
use super::config::{Namespaces, Placement};
use super::platform;
use super::pod_spec::{self, DESIRED_STATE, RenderOptions};
use crate::backend::Deadline;
use crate::{ComputeError as Error, Result};

/// How long a clean-up after a failed Create may take, even past the caller's deadline.
const CLEANUP: Duration = Duration::from_secs(5);

impl Inner {
    fn secrets(&self, namespace: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn options<'a>(&'a self, placement: &'a Placement) -> RenderOptions<'a> {
        RenderOptions {
            namespace: &placement.namespace,
            object_name: &placement.object_name,
            default_image: &self.config.default_image,
            gateway_id: &self.config.gateway_id,
            image_pull_policy: &self.config.image_pull_policy,
            supervisor: self.config.supervisor.as_ref(),
        }
    }

    async fn publish_ours(
        &self,
        f: impl FnOnce(&mut super::cache::Cache) -> Vec<crate::backend::Event>,
    ) {
        let events = f(&mut *self.shared.cache.lock().await);
        self.shared.publish(events);
    }

    pub(super) async fn create(
        &self,
        sandbox: pb::DriverSandbox,
        deadline: Deadline,
    ) -> Result<()> {
        let placement = self.config.placement(&sandbox.workspace, &sandbox.name)?;
        let (record, token) = crate::backend::split_token(&sandbox, &placement.namespace);
        {
            let cache = self.shared.cache.lock().await;
            if let Some(existing) = cache.entry(&record.id) {
                return same_or_conflict(existing, &record, &token);
            }
            if cache.id_by_name(&record.name).is_some() {
                return Err(Error::AlreadyExists(record.name));
            }
        }
        self.publish_ours(|cache| cache.creating(&record.id)).await;
        let result = self
            .create_objects(&sandbox, &record, &token, &placement, deadline)
            .await;
        self.publish_ours(|cache| cache.created(&record.id)).await;
        result?;
        tracing::info!(sandbox = %record.id, namespace = %placement.namespace, "sandbox created");
        Ok(())
    }

    /// The namespace if needed, the Secret, then the Pod; the Secret is removed again
    /// when the Pod cannot be created.
    async fn create_objects(
        &self,
        sandbox: &pb::DriverSandbox,
        record: &pb::DriverSandbox,
        token: &proto::Secret,
        placement: &Placement,
        deadline: Deadline,
    ) -> Result<()> {
        if self.config.namespaces == Namespaces::PerWorkspace {
            self.ensure_namespace(&placement.namespace, &record.workspace, deadline)
                .await?;
        }
        let options = self.options(placement);
        let rendered = pod_spec::secret(sandbox, &options, &record.encode_to_vec());
        let secrets = self.secrets(&placement.namespace);
        let cap = self.config.call_timeout;
        let action = "create the sandbox's Secret";
        let secret = match api::call(
            deadline,
            cap,
            action,
            secrets.create(&PostParams::default(), &rendered),
        )
        .await?
        {
            Answer::Done(secret) => secret,
            Answer::Conflict(_) => {
                let existing = api::must(
                    deadline,
                    cap,
                    "read the sandbox's Secret",
                    secrets.get(&placement.object_name),
                )
                .await?;
                match entry_of(&existing) {
                    Some((id, entry)) if id == record.id => {
                        same_or_conflict(&entry, record, token)?;
                        existing
                    }
                    _ => return Err(Error::AlreadyExists(record.name.clone())),
                }
            }
            Answer::Missing(_) => {
                return Err(Error::FailedPrecondition(format!(
                    "namespace {:?} does not exist: create it (or run the driver with --kube-namespaces per-workspace)",
                    placement.namespace
                )));
            }
        };
        self.publish_ours(|cache| cache.apply_secret(&secret, Origin::Created))
            .await;
        let secret_uid = secret.metadata.uid.clone().unwrap_or_default();
        if let Err(error) = self
            .create_pod(record, placement, &secret_uid, deadline)
            .await
        {
            let background = DeleteParams::background();
            let cleanup = secrets.delete(&placement.object_name, &background);
            if let Err(cleanup) = api::call(
                Deadline::after(CLEANUP),
                CLEANUP,
                "remove the Secret of a failed create",
                cleanup,
            )
            .await
            {
                tracing::warn!(sandbox = %record.id, error = %cleanup, "could not remove the Secret of a failed create; the next Create or Delete will");
            }
            self.publish_ours(|cache| cache.forget_sandbox(&record.id))
                .await;
            return Err(error);
        }
        Ok(())
    }

    /// Creates the sandbox's Pod (owned by Secret `secret_uid`) from its record.
    async fn create_pod(
        &self,
        record: &pb::DriverSandbox,
        placement: &Placement,
        secret_uid: &str,
        deadline: Deadline,
    ) -> Result<()> {
        let template = record.spec.as_ref().and_then(|s| s.template.as_ref());
        let platform = platform::parse(template.and_then(|t| t.platform_config.as_ref()))?;
        let rendered = pod_spec::pod(record, &self.options(placement), secret_uid, &platform);
        let pods = self.pods(&placement.namespace);
        let cap = self.config.call_timeout;
        let pod = match api::call(
            deadline,
            cap,
            "create the sandbox's Pod",
            pods.create(&PostParams::default(), &rendered),
        )
        .await?
        {
            Answer::Done(pod) => pod,
            Answer::Conflict(_) => {
                let existing = api::must(
                    deadline,
                    cap,
                    "read the sandbox's Pod",
                    pods.get(&placement.object_name),
                )
                .await?;
                let owned = existing
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == secret_uid);
                if !owned || existing.metadata.deletion_timestamp.is_some() {
                    return Err(Error::Unavailable(format!(
                        "an earlier pod {}/{} is still terminating; retry",
                        placement.namespace, placement.object_name
                    )));
                }
                existing
            }
            Answer::Missing(status) => {
                return Err(Error::FailedPrecondition(format!(
                    "cannot create the sandbox's Pod: {}",
                    status.message
                )));
            }
        };
        self.publish_ours(|cache| cache.apply_pod(&pod, Origin::Created))
            .await;
        Ok(())
    }

    /// Deletes the sandbox's Pod (`grace`: seconds, `None` for the pod's own).
    async fn delete_pod(
        &self,
        id: &str,
        placement: &Placement,
        uid: Option<String>,
        grace: Option<u32>,
        deadline: Deadline,
    ) -> Result<()> {
        let params = DeleteParams {
            grace_period_seconds: grace,
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let pods = self.pods(&placement.namespace);
        match api::call(
            deadline,
            self.config.call_timeout,
            "delete the sandbox's Pod",
            pods.delete(&placement.object_name, &params),
        )
        .await?
        {
            Answer::Done(_) | Answer::Missing(_) | Answer::Conflict(_) => {}
        }
        self.publish_ours(|cache| cache.forget_pod(id)).await;
        Ok(())
    }

    /// Records in the Secret whether the sandbox should run (`running`/`stopped`).
    async fn set_desired(&self, entry: &Entry, state: &str, deadline: Deadline) -> Result<()> {
        let patch = serde_json::json!({"metadata": {"annotations": {DESIRED_STATE: state}}});
        let secrets = self.secrets(&entry.placement.namespace);
        let secret = api::must(
            deadline,
            self.config.call_timeout,
            "record the sandbox's desired state",
            secrets.patch(
                &entry.placement.object_name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            ),
        )
        .await?;
        self.publish_ours(|cache| cache.apply_secret(&secret, Origin::Updated))
            .await;
        Ok(())
    }

    pub(super) async fn stop(&self, id: &str, deadline: Deadline) -> Result<()> {
        let Some((entry, pod_uid)) = self.entry_and_pod(id).await else {
            return Ok(());
        };
        if !entry.stopped {
            self.set_desired(&entry, "stopped", deadline).await?;
        }
        self.delete_pod(id, &entry.placement, pod_uid, None, deadline)
            .await?;
        tracing::info!(sandbox = %id, "sandbox stopped");
        Ok(())
    }

    pub(super) async fn start(&self, id: &str, deadline: Deadline) -> Result<()> {
        let (entry, pod) = {
            let cache = self.shared.cache.lock().await;
            let entry = cache
                .entry(id)
                .cloned()
                .ok_or_else(|| Error::NotFound(id.to_owned()))?;
            (entry, cache.pod(id).cloned())
        };
        if !entry.stopped && pod.as_ref().is_some_and(|p| !finished(p)) {
            return Ok(());
        }
        self.publish_ours(|cache| cache.creating(id)).await;
        let result = self.restart(&entry, pod.as_ref(), deadline).await;
        self.publish_ours(|cache| cache.created(id)).await;
        result?;
        tracing::info!(sandbox = %id, "sandbox started");
        Ok(())
    }

    /// Marks the sandbox running and gives it a Pod; a finished one is removed first,
    /// at once (it runs no container), to free its name.
    async fn restart(&self, entry: &Entry, pod: Option<&Pod>, deadline: Deadline) -> Result<()> {
        if entry.stopped {
            self.set_desired(entry, "running", deadline).await?;
        }
        if let Some(pod) = pod {
            if !finished(pod) {
                return Ok(());
            }
            let uid = pod.metadata.uid.clone();
            self.delete_pod(&entry.record.id, &entry.placement, uid, Some(0), deadline)
                .await?;
        }
        self.create_pod(&entry.record, &entry.placement, &entry.secret_uid, deadline)
            .await
    }

    pub(super) async fn delete(&self, id: &str, deadline: Deadline) -> Result<bool> {
        let Some((entry, pod_uid)) = self.entry_and_pod(id).await else {
            return Ok(false);
        };
        let placement = entry.placement;
        let cap = self.config.call_timeout;
        let secrets = self.secrets(&placement.namespace);
        let removed = api::call(
            deadline,
            cap,
            "delete the sandbox's Secret",
            secrets.delete(&placement.object_name, &DeleteParams::background()),
        )
        .await?;
        if let Answer::Conflict(status) = removed {
            return Err(Error::Unavailable(status.message));
        }
        if pod_uid.is_some() {
            let params = DeleteParams::default();
            let pods = self.pods(&placement.namespace);
            if let Err(error) = api::call(
                deadline,
                cap,
                "delete the sandbox's Pod",
                pods.delete(&placement.object_name, &params),
            )
            .await
            {
                tracing::debug!(sandbox = %id, %error, "pod left to the garbage collector");
            }
        }
        self.publish_ours(|cache| cache.forget_sandbox(id)).await;
        tracing::info!(sandbox = %id, "sandbox deleted");
        Ok(true)
    }

    async fn entry_and_pod(&self, id: &str) -> Option<(Entry, Option<String>)> {
        let cache = self.shared.cache.lock().await;
        let entry = cache.entry(id)?.clone();
        let pod_uid = cache.pod(id).and_then(|p| p.metadata.uid.clone());
        Some((entry, pod_uid))
    }
}

/// Whether the pod's containers have ended for good.
fn finished(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Failed" | "Succeeded"))
}

/// A repeated Create succeeds; a different one for the same id conflicts.
fn same_or_conflict(
    existing: &Entry,
    record: &pb::DriverSandbox,
    token: &proto::Secret,
) -> Result<()> {
    if existing.record == *record && existing.token == *token {
        Ok(())
    } else {
        Err(Error::AlreadyExists(record.id.clone()))
    }
}
