//! A Kubernetes API simulator for testing the compute driver's Kubernetes backend where
//! no API server can run. This first part is sans-IO: the object store (core/v1
//! namespaces, pods, secrets, events; resourceVersions; ownerReference garbage
//! collection; `Status` errors; watch history with 410 Gone) and label selectors. The
//! HTTP front end the unmodified kube client talks to, and the simulated kubelet, are
//! still to come (issue 5).

pub mod selector;
pub mod store;

pub use selector::Selector;
pub use store::{ApiError, Change, Event, Store};
