//! What the driver knows of its Secrets and Pods, kept from the watch streams (sans-IO).
//!
//! Every change reports the sandbox events it causes (a sandbox's view changed, or it
//! is gone), so watchers see exactly the differences. Two rules keep it exact:
//! - a relist (the watcher's `Init` … `InitDone`, after a 410 or a reconnect) replaces
//!   what it lists: sandboxes absent from the new list are reported deleted, except
//!   ones this driver wrote itself while the relist ran (the list may predate them);
//! - objects this driver deleted are remembered by uid until the stream confirms it, so
//!   a stale event for them cannot bring them back;
//! - the API server's reply to this driver's create is the object's first version: it
//!   never replaces what the watch already delivered for the same uid.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use prost::Message as _;
use proto::pb::compute::v1 as pb;

use super::config::Placement;
use super::pod_spec::{DESIRED_STATE, RECORD_KEY, SANDBOX_ID, TOKEN_KEY};
use super::status::{pod_missing, sandbox_status};
use crate::backend::Event;

/// The two kinds of objects the cache follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Secrets: one per sandbox, its record.
    Secrets,
    /// Pods: one per running sandbox.
    Pods,
}

/// Where a change comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A watch event.
    Watch,
    /// An object of a relist in progress.
    Relist,
    /// The API server's reply to this driver's create: the object's first version.
    Created,
    /// The API server's reply to this driver's update.
    Updated,
}

/// One sandbox, from its Secret.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The record as created (token cleared, namespace filled in).
    pub(crate) record: pb::DriverSandbox,
    /// The sandbox token, to tell a repeated create from a conflicting one.
    pub(crate) token: proto::Secret,
    /// The Secret's uid: the owner of the sandbox's Pod.
    pub(crate) secret_uid: String,
    /// Where its objects live.
    pub(crate) placement: Placement,
    /// The Secret is being deleted.
    pub(crate) deleting: bool,
    /// The sandbox was stopped (its Secret's desired state).
    pub(crate) stopped: bool,
}

#[derive(Debug, Default)]
struct Relist {
    /// Sandbox ids listed.
    seen: HashSet<String>,
    /// Object uids listed (deleted ones included).
    seen_uids: HashSet<String>,
    /// Sandbox ids this driver wrote meanwhile.
    ours: HashSet<String>,
}

/// The cache.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    sandboxes: HashMap<String, Entry>,
    pods: HashMap<String, Pod>,
    gone: HashMap<String, Kind>,
    relists: HashMap<Kind, Relist>,
    synced: HashSet<Kind>,
    /// Sandboxes whose pod this driver is creating right now.
    creating: HashSet<String>,
    /// Each sandbox as callers see it, by id: derived once per change (every change
    /// to what a view reads goes through [`Cache::changing`]), so Get and the Watch
    /// snapshot only copy, and List hands over the kept encodings.
    views: BTreeMap<String, View>,
}

/// A sandbox as callers see it, and its encoding (List hands those bytes over).
#[derive(Debug)]
struct View {
    sandbox: pb::DriverSandbox,
    encoded: Bytes,
}

impl View {
    fn new(sandbox: pb::DriverSandbox) -> Self {
        let encoded = Bytes::from(sandbox.encode_to_vec());
        Self { sandbox, encoded }
    }
}

fn uid_of(meta: &ObjectMeta) -> String {
    meta.uid.clone().unwrap_or_default()
}

fn sandbox_id_of(meta: &ObjectMeta) -> String {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(SANDBOX_ID))
        .cloned()
        .unwrap_or_default()
}

/// The sandbox a Secret holds; `None` when it is not one of ours or is damaged.
pub(crate) fn entry_of(secret: &Secret) -> Option<(String, Entry)> {
    let id = sandbox_id_of(&secret.metadata);
    let data = secret.data.as_ref()?;
    let record = pb::DriverSandbox::decode(data.get(RECORD_KEY)?.0.as_slice()).ok()?;
    if id.is_empty() || record.id != id {
        return None;
    }
    let token =
        String::from_utf8(data.get(TOKEN_KEY).map(|t| t.0.clone()).unwrap_or_default()).ok()?;
    let placement = Placement {
        namespace: secret.metadata.namespace.clone().unwrap_or_default(),
        object_name: secret.metadata.name.clone().unwrap_or_default(),
    };
    Some((
        id,
        Entry {
            record,
            token: proto::Secret::new(token),
            secret_uid: uid_of(&secret.metadata),
            placement,
            deleting: secret.metadata.deletion_timestamp.is_some(),
            stopped: secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESIRED_STATE))
                .is_some_and(|state| state == "stopped"),
        },
    ))
}

impl Cache {
    /// Whether both kinds have been listed once.
    pub(crate) fn synced(&self) -> bool {
        self.synced.len() == 2
    }

    /// A sandbox by id.
    pub(crate) fn entry(&self, id: &str) -> Option<&Entry> {
        self.sandboxes.get(id)
    }

    /// A sandbox id by name.
    pub(crate) fn id_by_name(&self, name: &str) -> Option<String> {
        self.sandboxes
            .iter()
            .find(|(_, e)| e.record.name == name)
            .map(|(id, _)| id.clone())
    }

    /// The sandbox's current Pod (one owned by its current Secret).
    pub(crate) fn pod(&self, id: &str) -> Option<&Pod> {
        let entry = self.sandboxes.get(id)?;
        self.pods.get(id).filter(|pod| {
            pod.metadata
                .owner_references
                .as_ref()
                .is_some_and(|owners| owners.iter().any(|o| o.uid == entry.secret_uid))
        })
    }

    /// The sandbox `id` as callers see it.
    pub(crate) fn view(&self, id: &str) -> Option<pb::DriverSandbox> {
        self.views.get(id).map(|view| view.sandbox.clone())
    }

    /// The sandbox `id` as callers see it, derived from its Secret and Pod.
    fn derive(&self, id: &str) -> Option<pb::DriverSandbox> {
        let entry = self.sandboxes.get(id)?;
        let mut sandbox = entry.record.clone();
        sandbox.namespace = entry.placement.namespace.clone();
        let name = &entry.record.name;
        let mut status = match self.pod(id) {
            Some(pod) => sandbox_status(name, Some(pod)),
            None if entry.stopped => sandbox_status(name, None),
            None => pod_missing(name, self.creating.contains(id)),
        };
        status.deleting = entry.deleting;
        sandbox.status = Some(status);
        Some(sandbox)
    }

    /// Every sandbox, by id.
    pub(crate) fn list(&self) -> Vec<pb::DriverSandbox> {
        self.views
            .values()
            .map(|view| view.sandbox.clone())
            .collect()
    }

    /// Every sandbox encoded, by id (shared buffers: nothing is copied).
    pub(crate) fn list_encoded(&self) -> Vec<Bytes> {
        self.views
            .values()
            .map(|view| view.encoded.clone())
            .collect()
    }

    /// The sandbox whose Pod has uid `pod_uid`.
    pub(crate) fn sandbox_of_pod(&self, pod_uid: &str) -> Option<String> {
        self.pods
            .iter()
            .find(|(_, pod)| pod.metadata.uid.as_deref() == Some(pod_uid))
            .map(|(id, _)| id.clone())
    }

    /// The sandbox whose objects are `namespace`/`name` (for a Pod the watch has not
    /// delivered yet).
    pub(crate) fn sandbox_at(&self, namespace: &str, name: &str) -> Option<String> {
        self.sandboxes
            .iter()
            .find(|(_, e)| e.placement.namespace == namespace && e.placement.object_name == name)
            .map(|(id, _)| id.clone())
    }

    /// Runs `change` on sandbox `id` and reports how its view changed.
    fn changing(&mut self, id: &str, change: impl FnOnce(&mut Self)) -> Vec<Event> {
        let before = self.views.remove(id);
        change(self);
        let Some(after) = self.derive(id) else {
            return match before {
                Some(_) => vec![Event::Deleted(id.to_owned())],
                None => Vec::new(),
            };
        };
        let (view, events) = match before {
            Some(before) if before.sandbox == after => (before, Vec::new()),
            _ => (
                View::new(after.clone()),
                vec![Event::Sandbox(Box::new(after))],
            ),
        };
        self.views.insert(id.to_owned(), view);
        events
    }

    fn note(&mut self, kind: Kind, id: &str, origin: Origin) {
        if let Some(relist) = self.relists.get_mut(&kind) {
            match origin {
                Origin::Relist => relist.seen.insert(id.to_owned()),
                Origin::Created | Origin::Updated => relist.ours.insert(id.to_owned()),
                Origin::Watch => false,
            };
        }
    }

    fn note_uid(&mut self, kind: Kind, uid: &str, origin: Origin) {
        if origin == Origin::Relist
            && let Some(relist) = self.relists.get_mut(&kind)
        {
            relist.seen_uids.insert(uid.to_owned());
        }
    }

    /// A Secret was added or changed.
    pub(crate) fn apply_secret(&mut self, secret: &Secret, origin: Origin) -> Vec<Event> {
        let uid = uid_of(&secret.metadata);
        self.note_uid(Kind::Secrets, &uid, origin);
        if self.gone.contains_key(&uid) {
            return Vec::new();
        }
        let Some((id, entry)) = entry_of(secret) else {
            tracing::warn!(
                secret = secret.metadata.name.as_deref().unwrap_or_default(),
                "ignoring a labelled Secret without a readable sandbox record"
            );
            return Vec::new();
        };
        self.note(Kind::Secrets, &id, origin);
        if origin == Origin::Created
            && self
                .sandboxes
                .get(&id)
                .is_some_and(|e| e.secret_uid == entry.secret_uid)
        {
            // The watch already delivered this object, at its creation or later.
            return Vec::new();
        }
        self.changing(&id.clone(), |cache| {
            cache.sandboxes.insert(id, entry);
        })
    }

    /// A Pod was added or changed.
    pub(crate) fn apply_pod(&mut self, pod: &Pod, origin: Origin) -> Vec<Event> {
        let uid = uid_of(&pod.metadata);
        self.note_uid(Kind::Pods, &uid, origin);
        let id = sandbox_id_of(&pod.metadata);
        if id.is_empty() || self.gone.contains_key(&uid) {
            return Vec::new();
        }
        self.note(Kind::Pods, &id, origin);
        if origin == Origin::Created
            && self
                .pods
                .get(&id)
                .is_some_and(|p| p.metadata.uid.as_deref() == Some(uid.as_str()))
        {
            // The watch already delivered this object, at its creation or later.
            return Vec::new();
        }
        // Only metadata and status are read: the spec would double the memory held.
        let pod = Pod {
            metadata: ObjectMeta {
                managed_fields: None,
                annotations: None,
                ..pod.metadata.clone()
            },
            spec: None,
            status: pod.status.clone(),
        };
        self.changing(&id.clone(), |cache| {
            cache.pods.insert(id, pod);
        })
    }

    /// A Secret is gone (watch event).
    pub(crate) fn remove_secret(&mut self, secret: &Secret) -> Vec<Event> {
        let uid = uid_of(&secret.metadata);
        self.gone.remove(&uid);
        let id = sandbox_id_of(&secret.metadata);
        if self.sandboxes.get(&id).is_none_or(|e| e.secret_uid != uid) {
            return Vec::new();
        }
        self.changing(&id.clone(), |cache| {
            cache.sandboxes.remove(&id);
        })
    }

    /// A Pod is gone (watch event).
    pub(crate) fn remove_pod(&mut self, pod: &Pod) -> Vec<Event> {
        let uid = uid_of(&pod.metadata);
        self.gone.remove(&uid);
        let id = sandbox_id_of(&pod.metadata);
        if self
            .pods
            .get(&id)
            .is_none_or(|p| p.metadata.uid.as_deref() != Some(uid.as_str()))
        {
            return Vec::new();
        }
        self.changing(&id.clone(), |cache| {
            cache.pods.remove(&id);
        })
    }

    /// This driver deleted sandbox `id`'s Secret (and with it the Pod).
    pub(crate) fn forget_sandbox(&mut self, id: &str) -> Vec<Event> {
        if let Some(entry) = self.sandboxes.get(id) {
            self.gone.insert(entry.secret_uid.clone(), Kind::Secrets);
        }
        if let Some(uid) = self.pods.get(id).and_then(|p| p.metadata.uid.clone()) {
            self.gone.insert(uid, Kind::Pods);
        }
        self.changing(id, |cache| {
            cache.sandboxes.remove(id);
            cache.pods.remove(id);
        })
    }

    /// This driver deleted sandbox `id`'s Pod.
    pub(crate) fn forget_pod(&mut self, id: &str) -> Vec<Event> {
        if let Some(uid) = self.pods.get(id).and_then(|p| p.metadata.uid.clone()) {
            self.gone.insert(uid, Kind::Pods);
        }
        self.changing(id, |cache| {
            cache.pods.remove(id);
        })
    }

    /// This driver starts creating sandbox `id`'s pod: until [`Cache::created`], a
    /// missing pod is expected.
    pub(crate) fn creating(&mut self, id: &str) -> Vec<Event> {
        self.changing(id, |cache| {
            cache.creating.insert(id.to_owned());
        })
    }

    /// The pod creation for sandbox `id` is over (done or failed).
    pub(crate) fn created(&mut self, id: &str) -> Vec<Event> {
        self.changing(id, |cache| {
            cache.creating.remove(id);
        })
    }

    /// A relist of `kind` begins.
    pub(crate) fn begin_relist(&mut self, kind: Kind) {
        self.relists.insert(kind, Relist::default());
    }

    /// A relist of `kind` is complete: what it did not list is gone.
    pub(crate) fn finish_relist(&mut self, kind: Kind) -> Vec<Event> {
        let Some(relist) = self.relists.remove(&kind) else {
            return Vec::new();
        };
        self.synced.insert(kind);
        // A deleted object the new list still held will have its deletion streamed;
        // the others are gone for good.
        self.gone
            .retain(|uid, k| *k != kind || relist.seen_uids.contains(uid));
        let held: Vec<String> = match kind {
            Kind::Secrets => self.sandboxes.keys().cloned().collect(),
            Kind::Pods => self.pods.keys().cloned().collect(),
        };
        let mut events = Vec::new();
        for id in held {
            if relist.seen.contains(&id) || relist.ours.contains(&id) {
                continue;
            }
            events.extend(self.changing(&id.clone(), |cache| match kind {
                Kind::Secrets => {
                    cache.sandboxes.remove(&id);
                }
                Kind::Pods => {
                    cache.pods.remove(&id);
                }
            }));
        }
        events
    }
}

#[cfg(test)]
mod tests;
