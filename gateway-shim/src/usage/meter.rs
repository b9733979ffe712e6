//! The meter: handlers hand it one event per metered call without waiting for the
//! store; a writer task appends whatever has queued in one transaction, so a busy
//! gateway writes in large batches (appends start at least 20 ms apart) and an idle
//! one at once. A failed append is retried (the batch kept) until it succeeds. A call
//! whose caller gives up is still recorded, as `CANCELLED`, when its handler is
//! dropped. Appends commit without waiting for the disk ([`Store::append_usage`]).
//!
//! Reads flush first ([`Meter::flush`]): every event queued before the flush is in the
//! store when it returns, so usage read back adds up to the calls made.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::auth::{Identity, Principal};
use crate::store::{Store, UsageEvent};

/// The most events one append writes.
const BATCH: usize = 2_000;
/// The least time between the starts of two appends while calls keep coming.
const SPACING: Duration = Duration::from_millis(20);
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
    /// Ends the writer's wait between appends, for a flush.
    flushing: Arc<Notify>,
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
        let flushing = Arc::new(Notify::new());
        let writer = tokio::spawn(write(store, receiver, Arc::clone(&flushing)));
        (Self { sender, flushing }, writer)
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
        self.flushing.notify_one();
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
/// written. Appends start at least [`SPACING`] apart: while calls keep coming the
/// writer sleeps out the rest of the spacing (events queue without waking it; a flush
/// does) and appends what queued meanwhile, so a busy gateway writes a few large
/// transactions a second instead of one per call or two, each a round of commands to
/// the database; an idle one writes at once.
async fn write(
    store: Store,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    flushing: Arc<Notify>,
) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    let mut last_append: Option<Instant> = None;
    while let Some(first) = receiver.recv().await {
        take(first, &mut batch, &mut flushes);
        drain(&mut receiver, &mut batch, &mut flushes);
        if let Some(last) = last_append
            && flushes.is_empty()
            && batch.len() < BATCH
        {
            tokio::select! {
                () = tokio::time::sleep_until(last + SPACING) => {}
                () = flushing.notified() => {}
            }
            drain(&mut receiver, &mut batch, &mut flushes);
        }
        last_append = Some(Instant::now());
        append(&store, &batch).await;
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Takes what has queued, up to a full batch.
fn drain(
    receiver: &mut mpsc::UnboundedReceiver<Message>,
    batch: &mut Vec<UsageEvent>,
    flushes: &mut Vec<oneshot::Sender<()>>,
) {
    while batch.len() < BATCH {
        match receiver.try_recv() {
            Ok(message) => take(message, batch, flushes),
            Err(_) => break,
        }
    }
}

/// Files one message: an event into the batch, a flush among those to answer.
fn take(message: Message, batch: &mut Vec<UsageEvent>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match message {
        Message::Event(event) => batch.push(event),
        Message::Flush(done) => flushes.push(done),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> UsageEvent {
        UsageEvent {
            at_ms: n,
            tenant: "acme".into(),
            caller: "alice".into(),
            method: "ResolveProviderCredential".into(),
            outcome: "OK".into(),
            credential: "file".into(),
            sandbox: String::new(),
        }
    }

    async fn stored(store: &Store) -> Vec<i64> {
        let mut at: Vec<i64> = store
            .recent_usage("alice", 1_000)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.at_ms)
            .collect();
        at.sort_unstable();
        at
    }

    /// Waits (without flushing) until the store holds `expected`; fails after 10 s.
    async fn until_stored(store: &Store, expected: &[i64]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stored(store).await != expected {
            assert!(
                Instant::now() < deadline,
                "never written without a flush: {:?} instead of {expected:?}",
                stored(store).await
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A meter on an in-memory store whose first event has just been appended: the
    /// writer is now spacing its next append.
    async fn right_after_an_append() -> (Store, Meter, tokio::task::JoinHandle<()>) {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let (meter, writer) = Meter::start(store.clone());
        meter.send(event(1));
        until_stored(&store, &[1]).await;
        (store, meter, writer)
    }

    #[tokio::test]
    async fn events_sent_while_the_writer_spaces_its_appends_are_written_without_a_flush() {
        let (store, meter, _writer) = right_after_an_append().await;
        // These wait out the spacing, then are written.
        meter.send(event(2));
        meter.send(event(3));
        until_stored(&store, &[1, 2, 3]).await;
    }

    #[tokio::test]
    async fn a_flush_during_the_spacing_answers_once_everything_before_it_is_written() {
        let (store, meter, _writer) = right_after_an_append().await;
        meter.send(event(2));
        meter.flush().await.unwrap();
        assert_eq!(stored(&store).await, [1, 2]);
    }

    #[tokio::test]
    async fn the_last_meter_dropped_during_the_spacing_still_writes_what_queued() {
        let (store, meter, writer) = right_after_an_append().await;
        meter.send(event(2));
        drop(meter);
        writer.await.unwrap();
        assert_eq!(stored(&store).await, [1, 2]);
    }
}
