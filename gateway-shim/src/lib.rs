//! The thin sandbox gateway and its command-line client.
//!
//! - [`server`]: the gateway (`serve`): the public API ([`api`]) behind the auth layer
//!   ([`auth`]), records in the [`store`], both drivers over Unix sockets ([`drivers`]).
//! - [`discovery`]: what a CLI needs to log in, unauthenticated on the API port.
//! - [`dev`]: the whole suite on one machine.
//! - [`client`]: the `sandbox`, `provider`, `inference` and `credential` subcommands.

pub mod api;
pub mod auth;
pub mod authz;
mod cli;
pub mod client;
pub mod config;
pub mod control_plane;
pub mod dev;
pub mod discovery;
pub mod drivers;
pub mod server;
pub mod store;
pub mod tls;
pub mod usage;

pub use cli::{Args, Command, ControlPlaneArgs, DevArgs, GatewayArgs, OidcArgs, TrustedProxyArgs};
pub use config::GatewayConfig;
pub use dev::run_dev;
pub use server::run_gateway;

/// Prefix of the environment variables of flags without a deployed name.
pub const ENV_PREFIX: &str = "GATEWAY";

/// The subcommands whose flags read `GATEWAY_*` env vars; client subcommands read
/// only the `OPENSHELL_*` variables they declare.
pub const SERVER_COMMANDS: &[&str] = &["serve", "dev"];

/// Why the gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value cannot be used.
    #[error("{0}")]
    Config(String),
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

/// `serve --check-config`: the flags, then everything start-up would load.
pub fn check_serve(gateway: &GatewayArgs) -> proto::cli::ConfigCheck {
    match gateway.config() {
        Ok(config) => config::check::check(&config),
        Err(problems) => {
            let mut report = proto::cli::ConfigCheck::default();
            problems.lines().for_each(|line| report.problem(line));
            report
        }
    }
}

/// Runs what `args` asks for; servers run until SIGTERM or SIGINT.
///
/// # Errors
/// See [`Error`].
pub async fn run(args: Args) -> Result<(), Error> {
    match &args.command {
        Command::Serve(gateway) => {
            let config = gateway.config().map_err(Error::Config)?;
            let listener = server::listen(config.listen).await?;
            run_gateway(&config, listener, proto::shutdown_signal()).await
        }
        Command::Dev(dev) => run_dev(dev, &args.log).await,
        other => match client::run_client(other).await {
            Some(result) => Ok(result?),
            None => Ok(()),
        },
    }
}
