//! Keeping up with the compute driver: the last status it reported for each sandbox,
//! fed by its watch stream (reopened with backoff; each new stream's snapshot and a
//! `ListSandboxes` reconcile replace what a broken stream may have missed) and by a
//! periodic reconcile. Every change is broadcast so the gateway's own watchers follow.

use std::collections::{HashMap, HashSet};
// A short lock around a map, never held across an await.
#[allow(clippy::disallowed_types)]
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proto::WatchEvent;
use proto::pb::compute::v1 as pb;
use tokio::sync::broadcast;
use tokio_stream::StreamExt as _;

use super::compute::ComputeClient;

/// What changed, by sandbox id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The record or its status changed.
    Updated(String),
    /// The record is gone.
    Deleted(String),
}

/// The driver's view of every sandbox, as last reported.
#[derive(Debug)]
pub struct Statuses {
    #[allow(clippy::disallowed_types)]
    inner: Mutex<Inner>,
    synced: AtomicBool,
    changes: broadcast::Sender<Change>,
}

#[derive(Debug, Default)]
struct Inner {
    statuses: HashMap<String, pb::DriverSandboxStatus>,
    /// Creates in flight: a reconcile must not drop them before the driver has them.
    pending: HashSet<String>,
    /// Records the driver has not reported, since when (first asked about).
    missing_since: HashMap<String, tokio::time::Instant>,
}

/// How long a record the driver does not report is shown as still provisioning
/// before it is called missing: another replica's fresh sandbox reaches this
/// replica's driver a moment later (its cache follows the cluster).
pub const MISSING_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Default for Statuses {
    #[allow(clippy::disallowed_types)]
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            synced: AtomicBool::new(false),
            changes: broadcast::channel(1024).0,
        }
    }
}

impl Statuses {
    /// Whether a full listing from the driver has been applied (so a missing status
    /// means the driver does not have the sandbox).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// What is known of `id`: its reported status; or, once synced, provisioning for
    /// [`MISSING_GRACE`] after it was first found unreported, then missing.
    pub fn lookup(&self, id: &str) -> Lookup {
        let mut inner = self.lock();
        if let Some(status) = inner.statuses.get(id) {
            return Lookup::Reported(status.clone());
        }
        if !self.synced() {
            return Lookup::Unknown;
        }
        let since = *inner
            .missing_since
            .entry(id.to_owned())
            .or_insert_with(tokio::time::Instant::now);
        if since.elapsed() < MISSING_GRACE {
            Lookup::Reported(not_reported_yet())
        } else {
            Lookup::Missing
        }
    }

    /// Follows changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Announces a change (also used by the API for record changes).
    pub fn announce(&self, change: Change) {
        let _ = self.changes.send(change);
    }

    /// Marks `id` as being created, with a Provisioning status until the driver
    /// reports one.
    pub fn begin_create(&self, id: &str) {
        let mut inner = self.lock();
        inner.pending.insert(id.to_owned());
        inner.statuses.insert(id.to_owned(), provisioning());
    }

    /// The create of `id` finished (either way).
    pub fn end_create(&self, id: &str, created: bool) {
        let mut inner = self.lock();
        inner.pending.remove(id);
        if !created {
            inner.statuses.remove(id);
        }
    }

    /// Whether a create of `id` is in flight in this process.
    pub fn is_creating(&self, id: &str) -> bool {
        self.lock().pending.contains(id)
    }

    /// Applies one watch event.
    pub fn apply(&self, event: pb::WatchSandboxesEvent) {
        use pb::watch_sandboxes_event::Payload;
        match event.payload {
            Some(Payload::Sandbox(pb::WatchSandboxesSandboxEvent {
                sandbox: Some(sandbox),
            })) => {
                self.set(sandbox);
            }
            Some(Payload::Deleted(deleted))
                if self.lock().statuses.remove(&deleted.sandbox_id).is_some() =>
            {
                self.announce(Change::Updated(deleted.sandbox_id));
            }
            Some(Payload::PlatformEvent(event)) => {
                if let Some(e) = event.event {
                    tracing::debug!(sandbox = %event.sandbox_id, reason = %e.reason, message = %e.message, "platform event");
                }
            }
            _ => {}
        }
    }

    /// Replaces everything with a full listing.
    pub fn reconcile(&self, sandboxes: Vec<pb::DriverSandbox>) {
        let listed: HashSet<String> = sandboxes.iter().map(|s| s.id.clone()).collect();
        let dropped: Vec<String> = {
            let mut inner = self.lock();
            // Records asked about long ago and never reported (deleted since, or
            // missing for good) need no clock any more.
            inner
                .missing_since
                .retain(|_, since| since.elapsed() < MISSING_GRACE * 60);
            let Inner {
                statuses, pending, ..
            } = &mut *inner;
            let dropped = statuses
                .keys()
                .filter(|id| !listed.contains(*id) && !pending.contains(*id))
                .cloned()
                .collect::<Vec<_>>();
            for id in &dropped {
                statuses.remove(id);
            }
            dropped
        };
        for sandbox in sandboxes {
            self.set(sandbox);
        }
        for id in dropped {
            self.announce(Change::Updated(id));
        }
        self.synced.store(true, Ordering::Relaxed);
    }

    fn set(&self, sandbox: pb::DriverSandbox) {
        let status = sandbox.status.unwrap_or_default();
        let changed = {
            let mut inner = self.lock();
            inner.missing_since.remove(&sandbox.id);
            inner.statuses.insert(sandbox.id.clone(), status.clone()) != Some(status)
        };
        if changed {
            self.announce(Change::Updated(sandbox.id));
        }
    }

    #[allow(clippy::disallowed_types)]
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What [`Statuses::lookup`] knows of a sandbox.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// A status (reported, or provisioning while a create is in flight or the driver
    /// has not caught up yet).
    Reported(pb::DriverSandboxStatus),
    /// The driver has not been listed yet.
    Unknown,
    /// The driver does not have it.
    Missing,
}

fn not_reported_yet() -> pb::DriverSandboxStatus {
    pb::DriverSandboxStatus {
        conditions: vec![pb::DriverCondition {
            r#type: "Ready".into(),
            status: "False".into(),
            reason: "DependenciesNotReady".into(),
            message: "the compute driver has not reported this sandbox yet".into(),
            last_transition_time: String::new(),
        }],
        ..Default::default()
    }
}

fn provisioning() -> pb::DriverSandboxStatus {
    pb::DriverSandboxStatus {
        conditions: vec![pb::DriverCondition {
            r#type: "Ready".into(),
            status: "False".into(),
            reason: "Starting".into(),
            message: "the gateway is creating the sandbox".into(),
            last_transition_time: String::new(),
        }],
        ..Default::default()
    }
}

/// Follows the compute driver until the task is dropped: watch (reconnecting), a
/// reconcile on every new stream, and one every `reconcile_every`.
pub async fn follow(
    compute: ComputeClient,
    statuses: std::sync::Arc<Statuses>,
    reconcile_every: Duration,
) {
    let mut events = compute.watch();
    let mut tick = tokio::time::interval(reconcile_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut announced = false;
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(WatchEvent::Connected) => {
                    compute.link().set_available(true);
                    if !announced {
                        announced = describe(&compute).await;
                    }
                    reconcile(&compute, &statuses).await;
                }
                Some(WatchEvent::Item(event)) => statuses.apply(event),
                Some(WatchEvent::Disconnected(status)) => {
                    tracing::debug!(error = %proto::describe_status(&status), "compute driver watch ended; reopening");
                    if status.code() == tonic::Code::Unavailable {
                        compute.link().set_available(false);
                    }
                }
                None => return,
            },
            _ = tick.tick() => {
                if compute.link().is_available() {
                    reconcile(&compute, &statuses).await;
                }
            }
        }
    }
}

async fn reconcile(compute: &ComputeClient, statuses: &Statuses) {
    match compute.list().await {
        Ok(sandboxes) => statuses.reconcile(sandboxes),
        Err(error) => tracing::warn!(%error, "reconcile: ListSandboxes failed"),
    }
}

async fn describe(compute: &ComputeClient) -> bool {
    match compute.capabilities().await {
        Ok(caps) => {
            tracing::info!(
                socket = %compute.link().socket().display(),
                driver = %caps.driver_name,
                version = %caps.driver_version,
                default_image = %caps.default_image,
                "compute driver answered"
            );
            true
        }
        Err(error) => {
            tracing::warn!(%error, "compute driver: GetCapabilities failed");
            false
        }
    }
}

/// Probes an optional driver every `every`, so readiness reflects it.
pub async fn monitor(link: super::link::DriverLink, every: Duration) {
    loop {
        let ready = matches!(
            proto::uds::health_probe(link.channel(), super::link::PROBE_TIMEOUT).await,
            proto::Readiness::Ready
        );
        link.set_available(ready);
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod missing_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unreported_record_is_pending_for_the_grace_then_missing() {
        let statuses = Statuses::default();
        assert_eq!(
            statuses.lookup("a"),
            Lookup::Unknown,
            "before the first listing"
        );
        statuses.reconcile(Vec::new());
        let Lookup::Reported(pending) = statuses.lookup("a") else {
            panic!("not pending at first");
        };
        assert_eq!(pending.conditions[0].reason, "DependenciesNotReady");
        tokio::time::advance(MISSING_GRACE / 2).await;
        assert!(matches!(statuses.lookup("a"), Lookup::Reported(_)));
        tokio::time::advance(MISSING_GRACE).await;
        assert_eq!(statuses.lookup("a"), Lookup::Missing);
        // Reported after all: its status, and the clock starts over if it goes again.
        statuses.reconcile(vec![pb::DriverSandbox {
            id: "a".into(),
            status: Some(pb::DriverSandboxStatus::default()),
            ..Default::default()
        }]);
        assert!(matches!(statuses.lookup("a"), Lookup::Reported(ref s) if s.conditions.is_empty()));
        statuses.reconcile(Vec::new());
        assert!(matches!(
            statuses.lookup("a"),
            Lookup::Reported(ref s) if s.conditions[0].reason == "DependenciesNotReady"
        ));
    }
}
