//! `conformance`: the driver-conformance harness for the ComputeDriver and
//! CredentialsDriver contracts (and upstream's CredentialDriver store contract) (the `csi-sanity` idea: one binary pointed at a socket,
//! contract first, capability-gated), usable as a library ([`run`]) and as the binary
//! `driver-conformance`. Cross-crate tests of the real gateway and drivers live in
//! `tests/`, and the OIDC test peer in `oidc-peer/`. [`mock`] holds mock drivers with
//! fault injection for the gateway's contract tests; [`postgres`] a private
//! PostgreSQL server for the gateway's store suite.

pub mod browser;
pub mod case;
pub mod compute;
pub mod control_plane_peer;
pub mod credential_store;
pub mod credentials;
pub mod kube_sim;
pub mod mock;
pub mod oidc_peer;
pub mod postgres;
pub mod raw_client;
pub mod report;
pub mod runner;

pub use proto::pb;
pub use report::{Outcome, Report};
pub use runner::{Config, cleanup_only, list, run};
