//! A Kubernetes API simulator for testing the compute driver's Kubernetes backend where
//! no API server can run. This first part is sans-IO: the object store (core/v1
//! namespaces, pods, secrets, events; resourceVersions; ownerReference garbage
//! collection; `Status` errors; watch history with 410 Gone) and label selectors; the
//! HTTP front end ([`http`]) serves them on the API server's paths. Not yet done: the
//! check that the unmodified kube client and watcher work against it, and the
//! simulated kubelet (issue 5).

pub mod http;
pub mod selector;
pub mod store;
mod watch;

pub use selector::Selector;
pub use store::{ApiError, Change, Event, Store};
