//! Driving the real `compute-driver` binary over its socket.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::phase::{Phase, phase_of};
use proto::testing::SpawnedDriver;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

pub mod kube;

pub const BINARY: &str = env!("CARGO_BIN_EXE_compute-driver");

/// A driver with its own short temp dir (socket, state dir, log).
pub struct Driver {
    pub process: SpawnedDriver,
    pub client: ComputeDriverClient<Channel>,
    pub dir: PathBuf,
}

impl Driver {
    pub async fn start(dir: &Path) -> Self {
        let state = dir.join("state");
        Self::start_with(
            dir,
            &["--state-dir", state.to_str().unwrap(), "--stop-grace", "2s"],
        )
        .await
    }

    /// The binary with `args` (plus debug logging).
    pub async fn start_with(dir: &Path, args: &[&str]) -> Self {
        let mut args = args.to_vec();
        args.extend(["--log-level", "debug"]);
        let process = SpawnedDriver::spawn_in(BINARY.as_ref(), dir, &args);
        let client = ComputeDriverClient::new(process.channel().await.unwrap());
        Self {
            process,
            client,
            dir: dir.to_path_buf(),
        }
    }

    pub fn stdout_of(&self, id: &str) -> PathBuf {
        self.dir.join("state/sandboxes").join(id).join("stdout.log")
    }

    pub async fn create(&mut self, sandbox: pb::DriverSandbox) -> Result<(), tonic::Status> {
        self.client
            .create_sandbox(pb::CreateSandboxRequest {
                sandbox: Some(sandbox),
            })
            .await
            .map(drop)
    }

    pub async fn get(&mut self, id: &str) -> Result<pb::DriverSandbox, tonic::Status> {
        let reply = self
            .client
            .get_sandbox(pb::GetSandboxRequest {
                sandbox_id: id.into(),
                sandbox_name: String::new(),
            })
            .await?;
        Ok(reply.into_inner().sandbox.unwrap())
    }

    pub async fn list_ids(&mut self) -> Vec<String> {
        let reply = self
            .client
            .list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .unwrap();
        reply
            .into_inner()
            .sandboxes
            .into_iter()
            .map(|s| s.id)
            .collect()
    }

    pub async fn watch(&mut self) -> tonic::Streaming<pb::WatchSandboxesEvent> {
        self.client
            .watch_sandboxes(pb::WatchSandboxesRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn stop(&mut self, id: &str) {
        self.client
            .stop_sandbox(pb::StopSandboxRequest {
                sandbox_id: id.into(),
                sandbox_name: String::new(),
            })
            .await
            .unwrap();
    }

    pub async fn start_sandbox(&mut self, id: &str) {
        self.client
            .start_sandbox(pb::StartSandboxRequest {
                sandbox_id: id.into(),
                sandbox_name: String::new(),
            })
            .await
            .unwrap();
    }

    pub async fn delete(&mut self, id: &str) -> bool {
        self.client
            .delete_sandbox(pb::DeleteSandboxRequest {
                sandbox_id: id.into(),
                sandbox_name: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .deleted
    }
}

/// A sandbox running `argv`.
pub fn sandbox(id: &str, argv: &[&str]) -> pb::DriverSandbox {
    pb::DriverSandbox {
        id: id.into(),
        name: id.into(),
        spec: Some(pb::DriverSandboxSpec {
            command: argv.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Reads watch events until `id` reaches `phase`; returns that sandbox.
pub async fn wait_phase(
    events: &mut tonic::Streaming<pb::WatchSandboxesEvent>,
    id: &str,
    phase: Phase,
) -> pb::DriverSandbox {
    use pb::watch_sandboxes_event::Payload;
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.next().await {
            if let Some(Payload::Sandbox(s)) = event.unwrap().payload {
                let sandbox = s.sandbox.unwrap();
                if sandbox.id == id && phase_of(&sandbox) == phase {
                    return sandbox;
                }
            }
        }
        panic!("watch ended before {id} reached {phase:?}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("{id} did not reach {phase:?} in time"))
}

/// Reads watch events until every id has been seen in `phase` (in any order).
pub async fn wait_all(
    events: &mut tonic::Streaming<pb::WatchSandboxesEvent>,
    ids: &[&str],
    phase: Phase,
) {
    use pb::watch_sandboxes_event::Payload;
    let mut missing: std::collections::BTreeSet<String> =
        ids.iter().map(|id| (*id).to_owned()).collect();
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.next().await {
            if let Some(Payload::Sandbox(s)) = event.unwrap().payload {
                let sandbox = s.sandbox.unwrap();
                if phase_of(&sandbox) == phase {
                    missing.remove(&sandbox.id);
                }
                if missing.is_empty() {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{missing:?} did not reach {phase:?} in time"));
}

/// Reads watch events until `id` is reported deleted.
pub async fn wait_deleted(events: &mut tonic::Streaming<pb::WatchSandboxesEvent>, id: &str) {
    use pb::watch_sandboxes_event::Payload;
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.next().await {
            if let Some(Payload::Deleted(d)) = event.unwrap().payload
                && d.sandbox_id == id
            {
                return;
            }
        }
        panic!("watch ended before {id} was deleted");
    })
    .await
    .expect("deleted event in time");
}

pub fn condition<'a>(
    sandbox: &'a pb::DriverSandbox,
    kind: &str,
) -> Option<&'a pb::DriverCondition> {
    sandbox
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
}

/// Polls until `path` contains `text`.
pub async fn wait_for_file(path: &Path, text: &str) -> String {
    for _ in 0..300 {
        if let Ok(content) = std::fs::read_to_string(path)
            && content.contains(text)
        {
            return content;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never contained {text:?}", path.display());
}
