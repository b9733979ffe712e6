//! The watch tasks that keep the cache: Secrets and Pods selected by this driver's
//! labels, with the kube runtime watcher (list first, then watch, relist after a 410 or
//! a broken stream, with backoff), and the Pods' Kubernetes Events turned into platform
//! events.

use std::sync::Arc;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, Secret};
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event as Watched};
use proto::pb::compute::v1 as pb;
use tokio::sync::{Mutex, broadcast, watch};

use super::cache::{Cache, Kind, Origin};
use crate::backend::Event;

/// What the watch tasks and the operations share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The cache.
    pub(crate) cache: Mutex<Cache>,
    /// Where sandbox events go.
    pub(crate) events: broadcast::Sender<Event>,
    /// True once both kinds were listed.
    pub(crate) synced: watch::Sender<bool>,
}

impl Shared {
    /// A fresh, unsynced state.
    pub(crate) fn new() -> Self {
        Self {
            cache: Mutex::new(Cache::default()),
            events: broadcast::channel(4096).0,
            synced: watch::channel(false).0,
        }
    }

    /// Sends `events` to watchers (none listening is fine).
    pub(crate) fn publish(&self, events: Vec<Event>) {
        for event in events {
            let _ = self.events.send(event);
        }
    }
}

/// A kind of object the cache follows.
pub(crate) trait Followed:
    kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned
{
    const KIND: Kind;
    fn apply(cache: &mut Cache, object: &Self, origin: Origin) -> Vec<Event>;
    fn remove(cache: &mut Cache, object: &Self) -> Vec<Event>;
}

impl Followed for Secret {
    const KIND: Kind = Kind::Secrets;
    fn apply(cache: &mut Cache, object: &Self, origin: Origin) -> Vec<Event> {
        cache.apply_secret(object, origin)
    }
    fn remove(cache: &mut Cache, object: &Self) -> Vec<Event> {
        cache.remove_secret(object)
    }
}

impl Followed for Pod {
    const KIND: Kind = Kind::Pods;
    fn apply(cache: &mut Cache, object: &Self, origin: Origin) -> Vec<Event> {
        cache.apply_pod(object, origin)
    }
    fn remove(cache: &mut Cache, object: &Self) -> Vec<Event> {
        cache.remove_pod(object)
    }
}

/// Follows `api` (label-selected by `selector`) into the cache until aborted.
pub(crate) async fn follow<K>(api: Api<K>, selector: String, shared: Arc<Shared>)
where
    K: Followed + kube::Resource<DynamicType = ()> + Send + Sync + 'static,
{
    let config = watcher::Config::default().labels(&selector);
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(item) = stream.next().await {
        let mut cache = shared.cache.lock().await;
        let events = match item {
            Ok(Watched::Init) => {
                cache.begin_relist(K::KIND);
                Vec::new()
            }
            Ok(Watched::InitApply(object)) => K::apply(&mut cache, &object, Origin::Relist),
            Ok(Watched::InitDone) => {
                let events = cache.finish_relist(K::KIND);
                tracing::debug!(kind = ?K::KIND, changes = events.len(), "listed");
                if cache.synced() {
                    shared.synced.send_replace(true);
                }
                events
            }
            Ok(Watched::Apply(object)) => K::apply(&mut cache, &object, Origin::Watch),
            Ok(Watched::Delete(object)) => K::remove(&mut cache, &object),
            Err(error) => {
                tracing::warn!(kind = ?K::KIND, %error, "watch failed; relisting after a backoff");
                Vec::new()
            }
        };
        drop(cache);
        shared.publish(events);
    }
}

/// Follows Kubernetes Events about Pods and reports those of sandbox pods as platform
/// events. Events already there when a (re)list starts are history and not reported.
pub(crate) async fn follow_events(api: Api<CoreEvent>, shared: Arc<Shared>) {
    let config = watcher::Config::default().fields("involvedObject.kind=Pod");
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(Watched::Apply(event)) => event,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(%error, "event watch failed; relisting after a backoff");
                continue;
            }
        };
        let involved = &event.involved_object;
        let sandbox_id = {
            let cache = shared.cache.lock().await;
            cache
                .sandbox_of_pod(involved.uid.as_deref().unwrap_or_default())
                .or_else(|| {
                    cache.sandbox_at(
                        involved.namespace.as_deref().unwrap_or_default(),
                        involved.name.as_deref().unwrap_or_default(),
                    )
                })
        };
        let Some(sandbox_id) = sandbox_id else {
            continue;
        };
        shared.publish(vec![Event::Platform {
            sandbox_id,
            event: platform_event(&event),
        }]);
    }
}

/// A Kubernetes Event as the contract's platform event.
pub(crate) fn platform_event(event: &CoreEvent) -> pb::DriverPlatformEvent {
    let timestamp_ms = event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .map_or(0, |t| t.as_millisecond());
    let involved = &event.involved_object;
    let mut metadata = std::collections::HashMap::new();
    for (key, value) in [
        ("pod", involved.name.clone()),
        ("namespace", involved.namespace.clone()),
        ("count", event.count.map(|c| c.to_string())),
    ] {
        if let Some(value) = value {
            metadata.insert(key.to_owned(), value);
        }
    }
    pb::DriverPlatformEvent {
        timestamp_ms,
        source: "kubernetes".into(),
        r#type: event.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason: event.reason.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        metadata,
    }
}
