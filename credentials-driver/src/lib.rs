//! The CredentialsDriver sidecar: turns named credentials into usable tokens.
//!
//! - [`config`]: the YAML config (three kinds; the deployed format keeps working).
//! - [`secrets`]: secret references read from the secrets directory, never outside it.
//! - [`resolver`]: names to tokens, from files (`static`) or the identity provider
//!   ([`idp`]) through the token cache ([`cache`]).
//! - `reload`: config and secrets reloaded on change and on SIGHUP.
//! - [`service`]: the thin tonic adapter and the status-code mapping.
//! - [`store`] and [`upstream`]: upstream OpenShell's `CredentialDriver` contract (a
//!   store of values the gateway writes, by handle) on the same socket.

pub mod cache;
mod check;
mod cli;
pub mod config;
mod error;
pub mod idp;
pub mod metrics;
mod reload;
pub mod resolver;
pub mod secrets;
pub mod service;
pub mod store;
pub mod upstream;

use std::sync::Arc;

pub use check::check;
pub use cli::Args;
pub use error::Error as CredentialsError;
pub use service::CredentialsDriverService;

use proto::admin::Metrics;
use proto::pb::credentials::v1::credentials_driver_server::{
    CredentialsDriverServer, SERVICE_NAME,
};
use proto::pb::upstream::credentials::v1::credential_driver_server as upstream_server;
use tonic::service::Routes;

/// The name this driver reports in `GetCapabilities`.
pub const DRIVER_NAME: &str = "credentials-driver";

/// Prefix of every environment variable this binary reads.
pub const ENV_PREFIX: &str = "CREDENTIALS_DRIVER";

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file cannot be used.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The server could not start or failed.
    #[error(transparent)]
    Server(#[from] proto::cli::ServerError),
    /// A flag's value cannot be used.
    #[error("{0}")]
    Setup(String),
    /// The admin HTTP endpoint failed.
    #[error("metrics endpoint: {0}")]
    Admin(#[from] std::io::Error),
}

/// Serves the driver on the configured socket until SIGTERM or SIGINT.
///
/// # Errors
/// See [`Error`].
pub async fn run(args: Args) -> Result<(), Error> {
    run_until(args, proto::shutdown_signal()).await
}

/// Serves the driver on the configured socket until `shutdown` completes.
///
/// # Errors
/// See [`Error`].
pub async fn run_until<F>(args: Args, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()>,
{
    let config = match &args.config {
        Some(file) => config::load(file)?,
        None => {
            tracing::warn!("no --config given: no credential is configured");
            config::Config::default()
        }
    };
    tracing::info!(credentials = config.credentials.len(), "config loaded");
    let (config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(config));
    let idp = idp::Idp::new(&idp::IdpConfig {
        timeout: args.idp_timeout,
        connect_timeout: args.idp_connect_timeout,
        extra_ca_pem: match &args.idp_ca_file {
            Some(file) => Some(
                std::fs::read(file)
                    .map_err(|e| Error::Setup(format!("--idp-ca-file {}: {e}", file.display())))?,
            ),
            None => None,
        },
    })
    .map_err(Error::Setup)?;
    let cache = Arc::new(cache::TokenCache::new(cache::CacheConfig {
        negative_ttl: args.negative_cache_ttl,
        max_exchanged: std::num::NonZeroUsize::new(args.exchange_cache_size)
            .ok_or_else(|| Error::Setup("--exchange-cache-size must be at least 1".into()))?,
        ..cache::CacheConfig::default()
    }));
    let idp_metrics = metrics::IdpMetrics::default();
    let resolver = resolver::Resolver::new(
        config_rx,
        secrets::SecretsDir::new(&args.secrets_dir),
        idp,
        Arc::clone(&cache),
        idp_metrics.clone(),
    );
    let (reload_stop, reload_stopped) = tokio::sync::oneshot::channel::<()>();
    let reloader = tokio::spawn(
        reload::Reloader {
            config_file: args.config.clone(),
            secrets_dir: args.secrets_dir.clone(),
            config: config_tx,
            cache,
            interval: args.reload_interval,
        }
        .run(async {
            let _ = reload_stopped.await;
        }),
    );
    let metrics = Metrics::new("credentials_driver").with_collector(Arc::new(
        metrics::CredentialsCollector {
            cache: Arc::clone(resolver.cache()),
            idp: idp_metrics,
        },
    ));
    let (health, health_service) =
        proto::Health::new([SERVICE_NAME, upstream_server::SERVICE_NAME]).await;
    let store_service =
        upstream::CredentialStoreService::new(resolver.clone(), args.store_dir(), metrics.clone());
    let routes = Routes::new(CredentialsDriverServer::new(CredentialsDriverService::new(
        resolver,
        metrics.clone(),
    )))
    .add_service(upstream_server::CredentialDriverServer::new(store_service))
    .add_service(health_service);

    let admin =
        proto::admin::AdminServer::start(args.metrics_addr, metrics, health.clone()).await?;
    let served = proto::cli::serve_until(&args.socket, routes, health, shutdown).await;
    admin.stop().await;
    let _ = reload_stop.send(());
    let _ = reloader.await;
    served?;
    Ok(())
}
