//! Both sides of a Unix domain socket.
//!
//! Server: [`bind`] (safe publish), [`PeerPolicy`] (who may connect), [`Health`],
//! [`serve`] (graceful shutdown). Client: [`lazy_channel`], [`DirectChannel`],
//! [`connect`], [`wait_ready`].

mod authority;
mod bind;
mod conn;
mod connect;
mod direct;
mod health;
mod http;
mod peer;
mod serve;

pub(crate) use bind::parent_is_trusted;
pub use bind::{BindError, BoundSocket, MAX_SOCKET_PATH, SocketConfig, SocketGuard, bind, check};
pub use connect::{
    ConnectConfig, ConnectError, Readiness, connect, health_probe, lazy_channel, wait_for_answer,
    wait_ready,
};
pub use connect::{describe_status, error_chain};
pub use direct::DirectChannel;
pub use health::Health;
pub use http::HttpSocket;
pub use peer::PeerPolicy;
pub use serve::{ServeError, ServeOptions, serve, shutdown_signal};
