//! `driver-conformance`: run the contract suites against driver sockets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conformance::{Config, Outcome};
use proto::cli::{LogArgs, parse_duration};
use serde::Deserialize;

/// Checks ComputeDriver and CredentialsDriver implementations against the contract.
/// Exit status 0 only when no case failed.
#[derive(Parser, Debug)]
#[command(name = "driver-conformance", version, about, long_about = None)]
struct Args {
    /// ComputeDriver socket (runs the compute suite).
    #[arg(long, value_name = "PATH")]
    compute_socket: Option<PathBuf>,
    /// CredentialsDriver socket (runs the credentials suite).
    #[arg(long, value_name = "PATH")]
    credentials_socket: Option<PathBuf>,
    /// Socket serving upstream OpenShell's CredentialDriver (singular) store contract
    /// (runs the credential-store suite; may be the credentials socket).
    #[arg(long, value_name = "PATH")]
    credential_store_socket: Option<PathBuf>,
    /// Driver-specific inputs (YAML): compute.command, compute.image,
    /// compute.ready_timeout, credentials.names, credentials.subject_token,
    /// credential_store.token_handles.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How long to wait for each driver to answer (readiness = a completed RPC).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// Cases to skip (`suite/case` or `case`), comma-separated.
    #[arg(long, value_name = "CASE,...", value_delimiter = ',')]
    skip: Vec<String>,
    /// How often idempotent RPCs are repeated.
    #[arg(long, value_name = "N", default_value_t = 10)]
    idempotent_count: usize,
    /// Stop after the first failure (the rest are reported skipped; implies one case
    /// at a time).
    #[arg(long)]
    fail_fast: bool,
    /// Cases run at once within a suite.
    #[arg(long, value_name = "N", default_value_t = 1)]
    parallel: usize,
    /// Also write the results as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Only delete sandboxes left by earlier runs (by their label), then exit.
    #[arg(long)]
    cleanup_only: bool,
    /// Logging flags.
    #[command(flatten)]
    log: LogArgs,
    /// Exact case names to run (default: all).
    cases: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InputFile {
    #[serde(default)]
    compute: ComputeFile,
    #[serde(default)]
    credentials: CredentialsFile,
    #[serde(default)]
    credential_store: CredentialStoreFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CredentialStoreFile {
    #[serde(default)]
    token_handles: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ComputeFile {
    command: Option<Vec<String>>,
    image: Option<String>,
    ready_timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    names: Vec<String>,
    subject_token: Option<String>,
}

fn config(args: &Args) -> Result<Config, String> {
    let mut config = Config {
        compute_socket: args.compute_socket.clone(),
        credentials_socket: args.credentials_socket.clone(),
        credential_store_socket: args.credential_store_socket.clone(),
        connect_timeout: args.connect_timeout,
        repeat: args.idempotent_count,
        only: args.cases.clone(),
        skip: args.skip.clone(),
        fail_fast: args.fail_fast,
        parallel: args.parallel,
        ..Config::default()
    };
    if let Some(file) = &args.config {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let inputs: InputFile =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(command) = inputs.compute.command {
            config.compute.command = command;
        }
        if let Some(image) = inputs.compute.image {
            config.compute.image = image;
        }
        if let Some(timeout) = inputs.compute.ready_timeout {
            config.compute.ready_timeout = parse_duration(&timeout)
                .map_err(|e| format!("{}: compute.ready_timeout: {e}", file.display()))?;
        }
        config.credentials.names = inputs.credentials.names;
        config.credentials.subject_token = inputs.credentials.subject_token.map(proto::Secret::new);
        config.credential_store.token_handles = inputs.credential_store.token_handles;
    }
    Ok(config)
}

#[allow(clippy::print_stdout)] // the report is the program's output
fn print_report(report: &conformance::Report) {
    for result in &report.results {
        match &result.outcome {
            Outcome::Pass => println!("PASS {} ({:.2?})", result.name, result.elapsed),
            Outcome::Fail(message) => println!("FAIL {}: {message}", result.name),
            Outcome::Skip(message) => println!("SKIP {}: {message}", result.name),
        }
    }
    println!("{}", report.summary());
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = proto::cli::parse("CONFORMANCE");
    if let Err(error) = args.log.init() {
        eprintln!("driver-conformance: {error}");
        return ExitCode::from(2);
    }
    if args.list {
        #[allow(clippy::print_stdout)]
        for name in conformance::list() {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    if args.cleanup_only {
        let Some(socket) = &args.compute_socket else {
            eprintln!("driver-conformance: --cleanup-only needs --compute-socket");
            return ExitCode::from(2);
        };
        return match conformance::cleanup_only(socket, args.connect_timeout).await {
            Ok(removed) => {
                eprintln!("removed {removed} leftover sandboxes");
                ExitCode::SUCCESS
            }
            Err(status) => {
                eprintln!(
                    "driver-conformance: cleanup failed: {:?} {}",
                    status.code(),
                    status.message()
                );
                ExitCode::FAILURE
            }
        };
    }
    if args.compute_socket.is_none()
        && args.credentials_socket.is_none()
        && args.credential_store_socket.is_none()
    {
        eprintln!(
            "driver-conformance: give --compute-socket, --credentials-socket and/or --credential-store-socket"
        );
        return ExitCode::from(2);
    }
    let config = match config(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("driver-conformance: {error}");
            return ExitCode::from(2);
        }
    };
    let report = conformance::run(&config).await;
    print_report(&report);
    if let Some(file) = &args.junit
        && let Err(error) = std::fs::write(file, report.junit())
    {
        eprintln!(
            "driver-conformance: cannot write {}: {error}",
            file.display()
        );
        return ExitCode::FAILURE;
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
