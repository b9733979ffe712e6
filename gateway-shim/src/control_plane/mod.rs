//! The optional external control plane (off unless configured): a small HTTP
//! contract any control plane can implement, reached over HTTPS or a Unix socket
//! ([`client`]); the API keys it knows are resolved through a cache with strict
//! lifetimes ([`cache`]), and so are tenants' own provider keys ([`tenant_keys`]).

pub mod cache;
pub mod client;
pub mod tenant_keys;

pub use client::{Address, ControlPlane, ControlPlaneConfig};
pub use tenant_keys::TenantKeys;
