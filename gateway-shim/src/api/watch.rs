//! `WatchSandboxes` of the public API: the caller's sandboxes as a snapshot (ended by
//! `snapshot_done`), then every change. A watcher that falls behind gets a fresh
//! snapshot instead of a gap.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use proto::pb::gateway::v1 as pb;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{Core, sandboxes};
use crate::auth::Principal;
use crate::authz::Access;
use crate::drivers::Change;
use crate::store::Kind;

/// The stream handed to tonic.
pub type SandboxEvents = ReceiverStream<Result<pb::SandboxEvent, Status>>;

type Sender = mpsc::Sender<Result<pb::SandboxEvent, Status>>;

/// Starts a watch for `who`, ended with DEADLINE_EXCEEDED when the caller's
/// `grpc-timeout` passes (tonic bounds only the headers of a stream).
pub(super) fn start(core: Arc<Core>, who: Principal, deadline: Option<Duration>) -> SandboxEvents {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let Some(deadline) = deadline else {
            return follow(core, who, tx).await;
        };
        let ended = tx.clone();
        if tokio::time::timeout(deadline, follow(core, who, tx))
            .await
            .is_err()
        {
            let _ = ended
                .send(Err(Status::deadline_exceeded(
                    "the watch reached the caller's deadline",
                )))
                .await;
        }
    });
    ReceiverStream::new(rx)
}

async fn follow(core: Arc<Core>, who: Principal, tx: Sender) {
    {
        let mut changes = core.statuses.subscribe();
        let mut seen = HashSet::new();
        if snapshot(&core, &who, &tx, &mut seen).await.is_err() {
            return;
        }
        loop {
            let change = tokio::select! {
                () = tx.closed() => return,
                () = core.closing.cancelled() => return,
                change = changes.recv() => change,
            };
            let sent = match change {
                Ok(Change::Updated(id)) => updated(&core, &who, &tx, &mut seen, &id).await,
                Ok(Change::Deleted(id)) if seen.remove(&id) => {
                    send(&tx, pb::sandbox_event::Payload::DeletedId(id)).await
                }
                Ok(Change::Deleted(_)) => Ok(()),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    snapshot(&core, &who, &tx, &mut seen).await
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

async fn snapshot(
    core: &Core,
    who: &Principal,
    tx: &Sender,
    seen: &mut HashSet<String>,
) -> Result<(), ()> {
    let records = match core
        .records(who)
        .list(Kind::Sandbox, &Access::of(who).sandbox_filter())
        .await
    {
        Ok(records) => records,
        Err(error) => {
            let _ = tx
                .send(Err(super::error::ApiError::from(error).into()))
                .await;
            return Err(());
        }
    };
    seen.clear();
    for record in &records {
        seen.insert(record.key.clone());
        send(
            tx,
            pb::sandbox_event::Payload::Sandbox(sandboxes::view(core, who, record)),
        )
        .await?;
    }
    send(tx, pb::sandbox_event::Payload::SnapshotDone(true)).await
}

async fn updated(
    core: &Core,
    who: &Principal,
    tx: &Sender,
    seen: &mut HashSet<String>,
    id: &str,
) -> Result<(), ()> {
    let Ok(Some(record)) = core.records(who).get(Kind::Sandbox, id).await else {
        return Ok(());
    };
    if !Access::of(who).owns(&record.owner) {
        return Ok(());
    }
    seen.insert(record.key.clone());
    send(
        tx,
        pb::sandbox_event::Payload::Sandbox(sandboxes::view(core, who, &record)),
    )
    .await
}

async fn send(tx: &Sender, payload: pb::sandbox_event::Payload) -> Result<(), ()> {
    tx.send(Ok(pb::SandboxEvent {
        payload: Some(payload),
    }))
    .await
    .map_err(|_| ())
}
