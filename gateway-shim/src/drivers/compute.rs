//! The compute driver client: each contract RPC the gateway uses, with its deadline
//! and idempotency, through [`DriverLink`].

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
// A short lock around a set, never held across an await.
#[allow(clippy::disallowed_types)]
use std::sync::Mutex;

use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::uds::DirectChannel;
use proto::{Backoff, Idempotency, RetryPolicy, WatchEvent};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use super::link::{DriverError, DriverLink};

/// The compute driver, as the gateway calls it.
#[derive(Clone, Debug)]
pub struct ComputeClient {
    link: DriverLink,
    client: ComputeDriverClient<DirectChannel>,
    /// Workspaces the driver confirmed (shared by clones): each is ensured once.
    #[allow(clippy::disallowed_types)]
    ensured: Arc<Mutex<HashSet<String>>>,
}

macro_rules! rpc {
    ($self:ident, $idempotency:expr, $method:ident, $message:expr) => {{
        let client = $self.client.clone();
        $self
            .link
            .call(
                $idempotency,
                || $message,
                |request| {
                    let mut client = client.clone();
                    async move { client.$method(request).await }
                },
            )
            .await
    }};
}

/// Largest ListSandboxes reply (and any other) the gateway accepts from the driver.
const LIST_REPLY_MAX: usize = 256 * 1024 * 1024;

impl ComputeClient {
    /// A client of the driver at `socket`.
    pub fn new(socket: &Path, policy: RetryPolicy) -> Self {
        let link = DriverLink::new("compute driver", socket, policy);
        // A full listing of many sandboxes is large: far above tonic's 4 MiB default.
        let client =
            ComputeDriverClient::new(link.channel()).max_decoding_message_size(LIST_REPLY_MAX);
        Self {
            link,
            client,
            ensured: Arc::default(),
        }
    }

    /// The connection state.
    pub fn link(&self) -> &DriverLink {
        &self.link
    }

    /// This client with every call also bounded by the caller's `deadline`.
    pub fn within(&self, deadline: Option<tokio::time::Instant>) -> Self {
        Self {
            link: self.link.within(deadline),
            client: self.client.clone(),
            ensured: Arc::clone(&self.ensured),
        }
    }

    /// `GetCapabilities`.
    ///
    /// # Errors
    /// The driver's status.
    pub async fn capabilities(&self) -> Result<pb::GetCapabilitiesResponse, DriverError> {
        rpc!(
            self,
            Idempotency::Idempotent,
            get_capabilities,
            pb::GetCapabilitiesRequest {}
        )
    }

    /// `EnsureWorkspace`; UNIMPLEMENTED (an optional RPC) counts as done.
    ///
    /// # Errors
    /// The driver's status.
    pub async fn ensure_workspace(&self, workspace: &str) -> Result<(), DriverError> {
        let result = rpc!(
            self,
            Idempotency::Idempotent,
            ensure_workspace,
            pb::EnsureWorkspaceRequest {
                workspace: workspace.to_owned()
            }
        );
        match result {
            Err(error) if error.code() == Code::Unimplemented => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// [`ComputeClient::ensure_workspace`] unless this gateway already did it for
    /// `workspace` (the gateway never deletes workspaces; a create that fails makes
    /// the next one ensure again, see [`ComputeClient::forget_workspace`]).
    ///
    /// # Errors
    /// The driver's status.
    pub async fn ensure_workspace_once(&self, workspace: &str) -> Result<(), DriverError> {
        if self.ensured_set().contains(workspace) {
            return Ok(());
        }
        self.ensure_workspace(workspace).await?;
        self.ensured_set().insert(workspace.to_owned());
        Ok(())
    }

    /// Makes the next create in `workspace` ensure it again (after a failed create:
    /// the workspace may have been removed behind the gateway's back).
    pub fn forget_workspace(&self, workspace: &str) {
        self.ensured_set().remove(workspace);
    }

    fn ensured_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // Only a record of calls already made: after a panic, start over.
        self.ensured.lock().unwrap_or_else(|poisoned| {
            let mut set = poisoned.into_inner();
            set.clear();
            self.ensured.clear_poison();
            set
        })
    }

    /// `CreateSandbox` (idempotent for the same spec, per the contract).
    ///
    /// # Errors
    /// The driver's status.
    pub async fn create(&self, sandbox: &pb::DriverSandbox) -> Result<(), DriverError> {
        rpc!(
            self,
            Idempotency::Idempotent,
            create_sandbox,
            pb::CreateSandboxRequest {
                sandbox: Some(sandbox.clone())
            }
        )
        .map(|_| ())
    }

    /// `StopSandbox`.
    ///
    /// # Errors
    /// The driver's status.
    pub async fn stop(&self, id: &str) -> Result<(), DriverError> {
        rpc!(
            self,
            Idempotency::Idempotent,
            stop_sandbox,
            pb::StopSandboxRequest {
                sandbox_id: id.to_owned(),
                sandbox_name: String::new()
            }
        )
        .map(|_| ())
    }

    /// `StartSandbox`.
    ///
    /// # Errors
    /// The driver's status (UNIMPLEMENTED when the driver cannot restart sandboxes).
    pub async fn start(&self, id: &str) -> Result<(), DriverError> {
        rpc!(
            self,
            Idempotency::Idempotent,
            start_sandbox,
            pb::StartSandboxRequest {
                sandbox_id: id.to_owned(),
                sandbox_name: String::new()
            }
        )
        .map(|_| ())
    }

    /// `DeleteSandbox`: whether the driver removed something.
    ///
    /// # Errors
    /// The driver's status.
    pub async fn delete(&self, id: &str) -> Result<bool, DriverError> {
        rpc!(
            self,
            Idempotency::Idempotent,
            delete_sandbox,
            pb::DeleteSandboxRequest {
                sandbox_id: id.to_owned(),
                sandbox_name: String::new()
            }
        )
        .map(|response| response.deleted)
    }

    /// `ListSandboxes`.
    ///
    /// # Errors
    /// The driver's status.
    pub async fn list(&self) -> Result<Vec<pb::DriverSandbox>, DriverError> {
        rpc!(
            self,
            Idempotency::Idempotent,
            list_sandboxes,
            pb::ListSandboxesRequest {}
        )
        .map(|response| response.sandboxes)
    }

    /// `ReadSandboxLogs` (an extension drivers may not serve: UNIMPLEMENTED).
    ///
    /// # Errors
    /// The driver's status.
    pub async fn logs(
        &self,
        id: &str,
        follow: bool,
        tail_bytes: u64,
    ) -> Result<tonic::Streaming<pb::SandboxLogChunk>, DriverError> {
        rpc!(
            self,
            Idempotency::Idempotent,
            read_sandbox_logs,
            pb::ReadSandboxLogsRequest {
                sandbox_id: id.to_owned(),
                sandbox_name: String::new(),
                follow,
                tail_bytes,
            }
        )
    }

    /// `WatchSandboxes`, reopened with backoff whenever it ends.
    pub fn watch(&self) -> ReceiverStream<WatchEvent<pb::WatchSandboxesEvent>> {
        let client = self.client.clone();
        proto::reconnecting(Backoff::CONNECT, move || {
            let mut client = client.clone();
            async move { client.watch_sandboxes(pb::WatchSandboxesRequest {}).await }
        })
    }
}
