//! The meter: handlers hand it one event per metered call without waiting for the
//! store; a writer task appends whatever has queued in one transaction, so a busy
//! gateway writes in large batches and an idle one at once. A failed append is retried
//! (the batch kept) until it succeeds. A call whose caller gives up is still recorded,
//! as `CANCELLED`, when its handler is dropped.
//!
//! Reads flush first ([`Meter::flush`]): every event queued before the flush is in the
//! store when it returns, so usage read back adds up to the calls made.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::auth::{Identity, Principal};
use crate::store::{Store, UsageEvent};

/// The most events one append writes.
const BATCH: usize = 2_000;
/// The longest wait between two attempts at a failed append.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

enum Message {
    Event(UsageEvent),
    Flush(oneshot::Sender<()>),
}

/// Records usage (cheap to clone; every clone feeds one writer).
#[derive(Clone, Debug)]
pub struct Meter {
    sender: mpsc::UnboundedSender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Event(_) => "Event",
            Self::Flush(_) => "Flush",
        })
    }
}

/// The meter stopped (the gateway is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the usage meter has stopped")]
pub struct Stopped;

impl Meter {
    /// A meter writing to `store`, and its writer task (which ends once every clone of
    /// the meter is dropped and the queue is written).
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write(store, receiver));
        (Self { sender }, writer)
    }

    /// Starts metering `method` called by `who`: the returned guard records the call
    /// when finished, or as `CANCELLED` when dropped unfinished.
    pub fn begin(&self, who: &Principal, method: &'static str) -> Metered {
        let (caller, sandbox) = match &who.identity {
            Identity::User(user) => (user.owner.clone(), String::new()),
            Identity::Sandbox(sandbox) => (sandbox.owner.clone(), sandbox.id.clone()),
        };
        Metered {
            meter: self.clone(),
            event: Some(UsageEvent {
                at_ms: now_ms(),
                tenant: who.tenant.clone(),
                caller,
                method: method.to_owned(),
                outcome: String::new(),
                credential: String::new(),
                sandbox,
            }),
        }
    }

    /// Waits until every event recorded before this call is in the store.
    ///
    /// # Errors
    /// [`Stopped`] when the writer is gone.
    pub async fn flush(&self) -> Result<(), Stopped> {
        let (done, written) = oneshot::channel();
        self.sender
            .send(Message::Flush(done))
            .map_err(|_| Stopped)?;
        written.await.map_err(|_| Stopped)
    }

    fn send(&self, event: UsageEvent) {
        if self.sender.send(Message::Event(event)).is_err() {
            tracing::warn!("usage meter stopped: a call went unmetered");
        }
    }
}

/// One metered call in progress.
#[derive(Debug)]
pub struct Metered {
    meter: Meter,
    event: Option<UsageEvent>,
}

impl Metered {
    /// The call is about (or was made by) sandbox `id`.
    pub fn sandbox(&mut self, id: &str) {
        if let Some(event) = &mut self.event
            && event.sandbox.is_empty()
        {
            id.clone_into(&mut event.sandbox);
        }
    }

    /// The call's credential came from `source`.
    pub fn credential(&mut self, source: &str) {
        if let Some(event) = &mut self.event {
            source.clone_into(&mut event.credential);
        }
    }

    /// Records the call with its status `code`.
    pub fn finish(mut self, code: tonic::Code) {
        self.record(code);
    }

    fn record(&mut self, code: tonic::Code) {
        if let Some(mut event) = self.event.take() {
            proto::admin::code_name(code).clone_into(&mut event.outcome);
            self.meter.send(event);
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.record(tonic::Code::Cancelled);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The writer: appends what has queued, answers flushes once what preceded them is
/// written.
async fn write(store: Store, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Event(event) => batch.push(event),
                Message::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        append(&store, &batch).await;
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Appends `batch`, retrying with backoff until the store takes it.
async fn append(store: &Store, batch: &[UsageEvent]) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    while let Err(error) = store.append_usage(batch).await {
        tracing::warn!(%error, events = batch.len(), retry_in = ?delay, "usage not written yet");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}
