//! The simulator's object store, sans-IO: core/v1 objects by resource, namespace and
//! name; one resourceVersion counter for everything (as etcd's revision); a bounded
//! history of changes for watches (older resourceVersions are 410 Gone); ownerReference
//! garbage collection; errors as Kubernetes `Status` bodies.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};

use super::selector::Selector;

/// Resources the simulator serves, with whether they live in a namespace.
pub const RESOURCES: &[(&str, &str, bool)] = &[
    ("namespaces", "Namespace", false),
    ("pods", "Pod", true),
    ("secrets", "Secret", true),
    ("events", "Event", true),
];

/// An API error, rendered as a `Status` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `reason` (NotFound, AlreadyExists, Conflict, Invalid, Expired, BadRequest).
    pub reason: &'static str,
    /// Human message.
    pub message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        Self {
            code,
            reason,
            message,
        }
    }

    /// The `Status` object the API server sends.
    pub fn status(&self) -> Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        })
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

impl Change {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One recorded change.
#[derive(Clone, Debug)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub version: u64,
    /// Its resource ("pods").
    pub resource: &'static str,
    /// What happened.
    pub change: Change,
    /// The object after the change (before it, for deletions).
    pub object: Value,
}

type Key = (&'static str, String, String);

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The objects.
    pub items: Vec<Value>,
    /// Whether a next page would return more.
    pub more: bool,
    /// How many more, when the list has no selector (the API server leaves
    /// `remainingItemCount` unset for a selected list: counting would mean matching
    /// every remaining object on every page).
    pub remaining: Option<usize>,
}

/// All objects and their history.
#[derive(Debug)]
pub struct Store {
    version: u64,
    uid: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Event>,
    window: usize,
    /// Versions below this are expired (after a compaction).
    floor: u64,
}

impl Store {
    /// An empty store keeping the last `window` changes for watches.
    pub fn new(window: usize) -> Self {
        Self {
            version: 0,
            uid: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            window,
            floor: 0,
        }
    }

    /// The current resourceVersion.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Creates an object; the server assigns uid, resourceVersion, creationTimestamp,
    /// and a name from `generateName` when needed.
    ///
    /// # Errors
    /// 404 (namespace missing), 409 AlreadyExists, 422 Invalid.
    pub fn create(
        &mut self,
        resource: &str,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let (resource, kind, namespaced) = resource_info(resource)?;
        let metadata = metadata_mut(&mut object)?;
        let mut name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            let prefix = metadata
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if prefix.is_empty() {
                return Err(invalid(
                    kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
            name = format!("{prefix}{:05x}", self.uid + 1);
        }
        if !is_dns_subdomain(&name) {
            return Err(invalid(
                kind,
                &name,
                "metadata.name: Invalid value: must be a lowercase RFC 1123 subdomain",
            ));
        }
        let namespace = if namespaced {
            namespace.to_owned()
        } else {
            String::new()
        };
        if namespaced
            && !self
                .objects
                .contains_key(&("namespaces", String::new(), namespace.clone()))
        {
            return Err(not_found("namespaces", &namespace));
        }
        let key = (resource, namespace.clone(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{resource} {name:?} already exists"),
            ));
        }
        self.uid += 1;
        self.version += 1;
        metadata.insert("name".into(), json!(name));
        if namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        }
        metadata.insert(
            "uid".into(),
            json!(format!("00000000-0000-0000-0000-{:012x}", self.uid)),
        );
        metadata.insert("resourceVersion".into(), json!(self.version.to_string()));
        metadata.insert("creationTimestamp".into(), json!(now_rfc3339()));
        object["kind"] = json!(kind);
        object["apiVersion"] = json!("v1");
        self.objects.insert(key, object.clone());
        self.record(resource, Change::Added, object.clone());
        Ok(object)
    }

    /// One object.
    ///
    /// # Errors
    /// 404.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let (resource, _, namespaced) = resource_info(resource)?;
        let namespace = if namespaced { namespace } else { "" };
        self.objects
            .get(&(resource, namespace.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found(resource, name))
    }

    /// Objects of `resource` (in `namespace`, or all) selected by `selector`, and the
    /// resourceVersion of the listing.
    ///
    /// # Errors
    /// 404 for an unknown resource.
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let page = self.list_page(resource, namespace, selector, None, usize::MAX)?;
        Ok((page.items, self.version))
    }

    /// At most `limit` of the objects [`Store::list`] would return, in namespace/name
    /// order, starting after `after` (namespace, name).
    ///
    /// # Errors
    /// 404 for an unknown resource.
    pub fn list_page(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selector: &Selector,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Page, ApiError> {
        use std::ops::Bound;
        let (resource, _, _) = resource_info(resource)?;
        let start = match after {
            Some((ns, name)) => Bound::Excluded((resource, ns.to_owned(), name.to_owned())),
            None => Bound::Included((resource, String::new(), String::new())),
        };
        let mut selected = self
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|((r, _, _), _)| *r == resource)
            .filter(|((_, ns, _), _)| namespace.is_none_or(|n| n == ns))
            .filter(|(_, object)| selector.matches_object(object));
        let items: Vec<Value> = selected
            .by_ref()
            .take(limit)
            .map(|(_, object)| object.clone())
            .collect();
        let (more, remaining) = if selector.is_empty() {
            let count = selected.count();
            (count > 0, Some(count))
        } else {
            (selected.next().is_some(), None)
        };
        Ok(Page {
            items,
            more,
            remaining,
        })
    }

    /// Replaces an object; a `metadata.resourceVersion` in `object` must match.
    ///
    /// # Errors
    /// 404, 409 Conflict.
    pub fn replace(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let (resource, _, _) = resource_info(resource)?;
        let current = self.get(resource, namespace, name)?;
        let expected = object["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned);
        if expected
            .as_deref()
            .is_some_and(|v| Some(v) != current["metadata"]["resourceVersion"].as_str())
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {resource} {name:?}: the object has been modified; please apply your changes to the latest version and try again"
                ),
            ));
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "ownerReferences",
        ] {
            if object["metadata"].get(field).is_none() && current["metadata"].get(field).is_some() {
                object["metadata"][field] = current["metadata"][field].clone();
            }
        }
        object["kind"] = current["kind"].clone();
        object["apiVersion"] = current["apiVersion"].clone();
        self.store_update(resource, object)
    }

    /// Applies a JSON merge patch (RFC 7386).
    ///
    /// # Errors
    /// 404, 409 Conflict (a resourceVersion in the patch that does not match).
    pub fn merge_patch(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        let mut object = self.get(resource, namespace, name)?;
        merge(&mut object, patch);
        self.replace(resource, namespace, name, object)
    }

    /// Deletes an object and, transitively, everything it owns (ownerReferences).
    ///
    /// # Errors
    /// 404.
    pub fn delete(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let (resource, _, namespaced) = resource_info(resource)?;
        let namespace = if namespaced {
            namespace.to_owned()
        } else {
            String::new()
        };
        let object = self
            .objects
            .remove(&(resource, namespace, name.to_owned()))
            .ok_or_else(|| not_found(resource, name))?;
        self.version += 1;
        let mut gone = object.clone();
        gone["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.record(resource, Change::Deleted, gone.clone());
        let uid = object["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let owned: Vec<Key> = self
            .objects
            .iter()
            .filter(|(key, child)| {
                owned_by(child, &uid)
                    || (resource == "namespaces"
                        && key.1 == object["metadata"]["name"].as_str().unwrap_or_default())
            })
            .map(|(key, _)| key.clone())
            .collect();
        for (child_resource, child_namespace, child_name) in owned {
            // Already removed as the dependant of an earlier one: fine.
            let _ = self.delete(child_resource, &child_namespace, &child_name);
        }
        Ok(gone)
    }

    /// Changes after `since` for a watch.
    ///
    /// # Errors
    /// 410 Expired when `since` is older than the history kept.
    pub fn events_since(&self, since: u64) -> Result<Vec<Event>, ApiError> {
        let oldest_kept = self
            .history
            .front()
            .map_or(self.version, |e| e.version.saturating_sub(1))
            .max(self.floor);
        if since < oldest_kept {
            return Err(ApiError::new(
                410,
                "Expired",
                format!("too old resource version: {since} ({oldest_kept})"),
            ));
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.version > since)
            .cloned()
            .collect())
    }

    /// Expires every resourceVersion handed out so far, as a compaction during an API
    /// server restart does: open watches get 410 at their next change, resumes from any
    /// earlier version get 410, and clients must list again.
    pub fn compact(&mut self) {
        self.history.clear();
        self.floor = self.version + 1;
    }

    fn store_update(
        &mut self,
        resource: &'static str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.objects
            .insert((resource, namespace, name), object.clone());
        self.record(resource, Change::Modified, object.clone());
        Ok(object)
    }

    fn record(&mut self, resource: &'static str, change: Change, object: Value) {
        self.history.push_back(Event {
            version: self.version,
            resource,
            change,
            object,
        });
        while self.history.len() > self.window {
            self.history.pop_front();
        }
    }
}

fn owned_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)))
}

fn resource_info(resource: &str) -> Result<(&'static str, &'static str, bool), ApiError> {
    RESOURCES
        .iter()
        .find(|(name, _, _)| *name == resource)
        .copied()
        .ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({resource})"),
            )
        })
}

fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    if !object.is_object() {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "the body is not an object".into(),
        ));
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::new(400, "BadRequest", "metadata is not an object".into()))
}

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::new(404, "NotFound", format!("{resource} {name:?} not found"))
}

fn invalid(kind: &str, name: &str, detail: &str) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!("{kind} {name:?} is invalid: {detail}"),
    )
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in patch {
        if value.is_null() {
            if let Some(map) = target.as_object_mut() {
                map.remove(key);
            }
        } else {
            merge(&mut target[key], value);
        }
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests;
