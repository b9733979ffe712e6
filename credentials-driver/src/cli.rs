//! Command-line flags (every flag also reads a `CREDENTIALS_DRIVER_*` env var). The
//! deployed driver's flag names (`--socket`, `--config`, `--secrets-dir`) are kept.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use proto::cli::{CheckArgs, LogArgs, SocketArgs, parse_duration};

/// Serves the CredentialsDriver gRPC contract (and grpc.health.v1) on a Unix socket.
#[derive(Parser, Clone, Debug)]
#[command(name = "credentials-driver", version, about, long_about = None)]
pub struct Args {
    /// Socket flags.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// The credentials config file (YAML). Without it no credential is configured.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory the config's secret references (`token_ref`, `client_secret_ref`) are
    /// read from, at use; references cannot leave it.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/etc/credentials-driver/secrets"
    )]
    pub secrets_dir: PathBuf,
    /// Where values stored through upstream OpenShell's `CredentialDriver` contract are
    /// kept (mode 0700, created at first use; default /tmp/credentials-driver-<uid>).
    /// Put it on persistent storage: the gateway keeps only the handles.
    #[arg(long, value_name = "DIR")]
    pub store_dir: Option<PathBuf>,
    /// How often the config file and the secrets directory are checked for changes
    /// (SIGHUP reloads at once).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub reload_interval: Duration,
    /// Whole-request timeout for the token endpoint.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub idp_timeout: Duration,
    /// Connect timeout for the token endpoint.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub idp_connect_timeout: Duration,
    /// Extra CA certificates (PEM bundle) to trust for the token endpoint, besides the
    /// system's.
    #[arg(long, value_name = "FILE")]
    pub idp_ca_file: Option<PathBuf>,
    /// How long a permanent identity-provider failure is remembered per credential.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub negative_cache_ttl: Duration,
    /// Most exchanged tokens kept in memory (least recently used go first).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub exchange_cache_size: usize,
    /// Serve /healthz, /readyz and /metrics over HTTP on this address (off when unset).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// `--check-config`.
    #[command(flatten)]
    pub check: CheckArgs,
}

impl Args {
    /// The store directory, defaulted per user.
    pub fn store_dir(&self) -> PathBuf {
        self.store_dir.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "/tmp/credentials-driver-{}",
                nix::unistd::Uid::effective()
            ))
        })
    }
}
