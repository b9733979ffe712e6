//! Usage metering: every credential resolve, inference bundle fetch and sandbox
//! lifecycle call is recorded (caller, tenant, method, outcome, time, where the
//! credential came from) by the [`Meter`] off the hot path, and read back by the
//! control plane through the [`internal_api`] on the admin port (or a Unix socket).

pub mod internal_api;
mod meter;

pub use meter::{Meter, Metered, Stopped};
