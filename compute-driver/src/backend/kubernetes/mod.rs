//! The Kubernetes backend (issue 5, in progress): sandboxes become plain Pods and
//! Secrets, so it runs on any cluster with no extra controller. What exists so far is
//! sans-IO: validating `platform_config` ([`platform`]) and rendering the Secret and
//! Pod of a sandbox ([`pod_spec`]), and its status from the Pod ([`status`]). Not
//! wired into `--backend` yet.

pub mod platform;
pub mod pod_spec;
pub mod status;
