//! Workspaces as namespaces (the per-workspace layout): created labelled as this
//! driver's, and removed only when this driver created them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use super::Inner;
use super::api::{self, Answer};
use super::pod_spec::{GATEWAY_ID, MANAGED_BY, MANAGER, WORKSPACE};
use crate::backend::Deadline;
use crate::{ComputeError as Error, Result};

impl Inner {
    /// Creates the namespace (labelled as ours) if it is missing.
    pub(super) async fn ensure_namespace(
        &self,
        namespace: &str,
        workspace: &str,
        deadline: Deadline,
    ) -> Result<()> {
        let labels: BTreeMap<String, String> = [
            (MANAGED_BY, MANAGER),
            (GATEWAY_ID, self.config.gateway_id.as_str()),
            (WORKSPACE, workspace),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut object = Namespace::default();
        object.metadata.name = Some(namespace.to_owned());
        object.metadata.labels = Some(labels);
        let api: Api<Namespace> = Api::all(self.client.clone());
        let action = format!("create namespace {namespace}");
        match api::call(
            deadline,
            self.config.call_timeout,
            &action,
            api.create(&PostParams::default(), &object),
        )
        .await?
        {
            Answer::Done(_) => {
                tracing::info!(%namespace, "namespace created");
                Ok(())
            }
            Answer::Conflict(_) => Ok(()),
            Answer::Missing(status) => Err(Error::FailedPrecondition(format!(
                "cannot {action}: {}",
                status.message
            ))),
        }
    }

    /// Removes the namespace of a workspace if this driver created it.
    pub(super) async fn remove_namespace(&self, namespace: &str, deadline: Deadline) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let cap = self.config.call_timeout;
        let found = match api::call(deadline, cap, "read a namespace", api.get(namespace)).await? {
            Answer::Done(found) => found,
            Answer::Missing(_) => return Ok(()),
            Answer::Conflict(status) => return Err(Error::Unavailable(status.message)),
        };
        let labels = found.metadata.labels.unwrap_or_default();
        let ours = labels.get(MANAGED_BY).map(String::as_str) == Some(MANAGER)
            && labels.get(GATEWAY_ID) == Some(&self.config.gateway_id);
        if !ours {
            tracing::info!(%namespace, "namespace not created by this driver: left in place");
            return Ok(());
        }
        let action = format!("delete namespace {namespace}");
        match api::call(
            deadline,
            cap,
            &action,
            api.delete(namespace, &DeleteParams::background()),
        )
        .await?
        {
            Answer::Done(_) | Answer::Missing(_) => Ok(()),
            Answer::Conflict(status) => Err(Error::Unavailable(status.message)),
        }
    }
}
