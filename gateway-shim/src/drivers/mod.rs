//! The gateway's side of both driver sockets: typed clients over one shared link
//! (deadline, retry, fail fast while down), and the sync task that follows the compute
//! driver's watch stream.

mod compute;
mod credentials;
mod link;
mod sync;

pub use compute::ComputeClient;
pub use credentials::{Catalog, CredentialsClient};
pub use link::{DriverError, DriverLink};
pub use sync::{Change, Lookup, MISSING_GRACE, Statuses, follow, monitor};
