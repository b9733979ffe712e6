//! The thin sandbox gateway and its command-line client.
//!
//! - [`server`]: the gateway (`serve`): the public API ([`api`]) behind the auth layer
//!   ([`auth`]), records in the [`store`], both drivers over Unix sockets ([`drivers`]).
//! - [`dev`]: the whole suite on one machine.
//! - [`client`]: the `sandbox`, `provider`, `inference` and `credential` subcommands.

pub mod api;
pub mod auth;
pub mod authz;
mod cli;
pub mod client;
pub mod dev;
pub mod drivers;
pub mod server;
pub mod store;

pub use cli::{Args, Command, DevArgs, GatewayArgs, OidcArgs};
pub use dev::run_dev;
pub use server::run_gateway;

/// Prefix of the environment variables of flags without a deployed name.
pub const ENV_PREFIX: &str = "GATEWAY";

/// Why the gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No compute driver socket was given.
    #[error(
        "--compute-driver-socket (or OPENSHELL_COMPUTE_DRIVER_SOCKET) is required; or run `gateway-shim dev` to start the drivers too"
    )]
    MissingComputeSocket,
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    /// Set-up failed (a file, a key).
    #[error("{0}")]
    Setup(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gateway server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// `dev` could not start or keep a driver running.
    #[error("dev: {0}")]
    Dev(String),
    /// A client command failed.
    #[error(transparent)]
    Client(#[from] client::ClientError),
}

/// Runs what `args` asks for; servers run until SIGTERM or SIGINT.
///
/// # Errors
/// See [`Error`].
pub async fn run(args: Args) -> Result<(), Error> {
    match &args.command {
        Command::Serve(gateway) => {
            let listener = server::listen(gateway.listen).await?;
            run_gateway(gateway, listener, proto::shutdown_signal()).await
        }
        Command::Dev(dev) => run_dev(dev, &args.log).await,
        other => match client::run_client(other).await {
            Some(result) => Ok(result?),
            None => Ok(()),
        },
    }
}
