//! Retry for every driver call: [`Backoff`] settings, [`classify`] (the status-code
//! table) and the [`call`] helper. No call site defines its own retry constants.

mod backoff;
mod call;
mod classify;

pub use backoff::{Backoff, BackoffSession, InvalidBackoff};
pub use call::{Idempotency, RetryPolicy, call};
pub use classify::{RetryClass, classify};
