//! Running the suites: connect (readiness by a completed RPC), filter, run in order,
//! clean up in reverse, report.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::pb::compute::v1 as compute_pb;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::pb::credentials::v1 as credentials_pb;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::{ConnectConfig, lazy_channel, wait_for_answer};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::case::Case;
use crate::compute::{self, ComputeCtx, ComputeInputs};
use crate::credential_store::{self, CredentialStoreCtx, CredentialStoreInputs};
use crate::credentials::{self, CredentialsCtx, CredentialsInputs};
use crate::report::{CaseResult, Outcome, Report};

/// What to run against which sockets.
#[derive(Clone, Debug)]
pub struct Config {
    /// The ComputeDriver socket (the compute suite runs when set).
    pub compute_socket: Option<PathBuf>,
    /// The CredentialsDriver socket (the credentials suite runs when set).
    pub credentials_socket: Option<PathBuf>,
    /// A socket serving upstream's `CredentialDriver` (the credential-store suite runs
    /// when set; often the credentials socket).
    pub credential_store_socket: Option<PathBuf>,
    /// How long to wait for each driver to answer.
    pub connect_timeout: Duration,
    /// How often idempotent RPCs are repeated (default 10).
    pub repeat: usize,
    /// Case names (`suite/case` or `case`) to run; empty: all.
    pub only: Vec<String>,
    /// Case names to skip.
    pub skip: Vec<String>,
    /// Stop running cases after the first failure (runs cases one at a time).
    pub fail_fast: bool,
    /// Cases run at once within a suite (default 1). Cases use distinct sandboxes.
    pub parallel: usize,
    /// Compute inputs.
    pub compute: ComputeInputs,
    /// Credentials inputs.
    pub credentials: CredentialsInputs,
    /// Credential-store inputs.
    pub credential_store: CredentialStoreInputs,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            compute_socket: None,
            credentials_socket: None,
            credential_store_socket: None,
            connect_timeout: Duration::from_secs(30),
            repeat: 10,
            only: Vec::new(),
            skip: Vec::new(),
            fail_fast: false,
            parallel: 1,
            compute: ComputeInputs::default(),
            credentials: CredentialsInputs::default(),
            credential_store: CredentialStoreInputs::default(),
        }
    }
}

impl Config {
    fn selected(&self, full: &str, short: &str) -> Option<String> {
        let named = |list: &[String]| list.iter().any(|n| n == full || n == short);
        if named(&self.skip) {
            return Some("skipped by --skip".into());
        }
        if !self.only.is_empty() && !named(&self.only) {
            return Some("not selected".into());
        }
        None
    }
}

/// Every case name, `suite/case`.
pub fn list() -> Vec<String> {
    let compute = compute::cases()
        .into_iter()
        .map(|c| format!("compute/{}", c.name));
    let credentials = credentials::cases()
        .into_iter()
        .map(|c| format!("credentials/{}", c.name));
    let store = credential_store::cases()
        .into_iter()
        .map(|c| format!("credential-store/{}", c.name));
    compute.chain(credentials).chain(store).collect()
}

/// A unique, DNS-label-safe prefix for this run's sandboxes.
fn run_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "conformance-{:x}{:05x}",
        std::process::id() & 0xfff,
        nanos & 0xfffff
    )
}

async fn run_cases<C: Sync>(
    suite: &str,
    ctx: &C,
    cases: Vec<Case<C>>,
    config: &Config,
    report: &mut Report,
) {
    use futures_util::StreamExt;
    let selected: Vec<(String, Result<Case<C>, String>)> = cases
        .into_iter()
        .filter_map(|case| {
            let name = format!("{suite}/{}", case.name);
            match config.selected(&name, case.name) {
                Some(why) if why == "not selected" => None,
                Some(why) => Some((name, Err(why))),
                None => Some((name, Ok(case))),
            }
        })
        .collect();
    if config.fail_fast || config.parallel <= 1 {
        for (name, case) in selected {
            let started = Instant::now();
            let outcome = match case {
                Err(why) => Outcome::Skip(why),
                Ok(_) if config.fail_fast && !report.passed() => {
                    Outcome::Skip("--fail-fast: an earlier case failed".into())
                }
                Ok(case) => (case.run)(ctx).await.into(),
            };
            tracing::info!(case = %name, ?outcome, "case finished");
            report.results.push(CaseResult {
                name,
                outcome,
                elapsed: started.elapsed(),
            });
        }
        return;
    }
    let results: Vec<CaseResult> = futures_util::stream::iter(selected)
        .map(|(name, case)| async move {
            let started = Instant::now();
            let outcome = match case {
                Err(why) => Outcome::Skip(why),
                Ok(case) => (case.run)(ctx).await.into(),
            };
            tracing::info!(case = %name, ?outcome, "case finished");
            CaseResult {
                name,
                outcome,
                elapsed: started.elapsed(),
            }
        })
        .buffered(config.parallel)
        .collect()
        .await;
    report.results.extend(results);
}

fn connect_failure(
    suite: &str,
    socket: &std::path::Path,
    error: &proto::ConnectError,
) -> CaseResult {
    CaseResult {
        name: format!("{suite}/connect"),
        outcome: Outcome::Fail(format!(
            "the driver at {} never answered: {error}",
            socket.display()
        )),
        elapsed: Duration::ZERO,
    }
}

/// Runs the suites whose sockets are configured.
pub async fn run(config: &Config) -> Report {
    let mut report = Report::default();
    let connect = ConnectConfig {
        deadline: config.connect_timeout,
        ..ConnectConfig::default()
    };
    if let Some(socket) = &config.compute_socket {
        let channel = lazy_channel(socket);
        let client = ComputeDriverClient::new(channel.clone());
        let ready = wait_for_answer(socket, &connect, false, |timeout| {
            let mut client = client.clone();
            async move {
                let mut request = tonic::Request::new(compute_pb::GetCapabilitiesRequest {});
                request.set_timeout(timeout);
                client
                    .get_capabilities(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await;
        match ready {
            Err(error) => report
                .results
                .push(connect_failure("compute", socket, &error)),
            Ok(caps) => {
                let ctx = ComputeCtx {
                    client,
                    channel,
                    socket: socket.clone(),
                    caps: caps.unwrap_or_default(),
                    inputs: config.compute.clone(),
                    prefix: run_prefix(),
                    repeat: config.repeat.max(1),
                    created: Mutex::new(Vec::new()),
                };
                run_cases("compute", &ctx, compute::cases(), config, &mut report).await;
                let started = Instant::now();
                if let Err(crate::case::CaseError::Fail(message)) = ctx.cleanup().await {
                    report.results.push(CaseResult {
                        name: "compute/cleanup".into(),
                        outcome: Outcome::Fail(message),
                        elapsed: started.elapsed(),
                    });
                }
            }
        }
    }
    if let Some(socket) = &config.credentials_socket {
        let client = CredentialsDriverClient::new(lazy_channel(socket));
        let ready = wait_for_answer(socket, &connect, true, |timeout| {
            let mut client = client.clone();
            async move {
                let mut request = tonic::Request::new(credentials_pb::GetCapabilitiesRequest {});
                request.set_timeout(timeout);
                client
                    .get_capabilities(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await;
        match ready {
            Err(error) => report
                .results
                .push(connect_failure("credentials", socket, &error)),
            Ok(caps) => {
                let ctx = CredentialsCtx {
                    client,
                    caps,
                    inputs: config.credentials.clone(),
                };
                run_cases(
                    "credentials",
                    &ctx,
                    credentials::cases(),
                    config,
                    &mut report,
                )
                .await;
            }
        }
    }
    if let Some(socket) = &config.credential_store_socket {
        run_credential_store(socket, config, &connect, &mut report).await;
    }
    report
}

async fn run_credential_store(
    socket: &std::path::Path,
    config: &Config,
    connect: &ConnectConfig,
    report: &mut Report,
) {
    use proto::pb::upstream::credentials::v1 as store_pb;
    use proto::pb::upstream::credentials::v1::credential_driver_client::CredentialDriverClient;
    let client = CredentialDriverClient::new(lazy_channel(socket));
    let ready = wait_for_answer(socket, connect, false, |timeout| {
        let mut client = client.clone();
        async move {
            let mut request =
                tonic::Request::new(store_pb::GetCredentialDriverCapabilitiesRequest {});
            request.set_timeout(timeout);
            client
                .get_capabilities(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    match ready {
        Err(error) => report
            .results
            .push(connect_failure("credential-store", socket, &error)),
        Ok(caps) => {
            let ctx = CredentialStoreCtx {
                client,
                caps: caps.unwrap_or_default(),
                inputs: config.credential_store.clone(),
                prefix: run_prefix(),
            };
            run_cases(
                "credential-store",
                &ctx,
                credential_store::cases(),
                config,
                report,
            )
            .await;
        }
    }
}

/// Deletes sandboxes left by earlier runs (those carrying the run label).
///
/// # Errors
/// The first failing call's status.
pub async fn cleanup_only(
    socket: &std::path::Path,
    connect_timeout: Duration,
) -> Result<usize, tonic::Status> {
    let connect = ConnectConfig {
        deadline: connect_timeout,
        ..ConnectConfig::default()
    };
    let channel = proto::connect(socket, &connect)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = ComputeDriverClient::new(channel);
    let listed = client
        .list_sandboxes(compute_pb::ListSandboxesRequest {})
        .await?
        .into_inner();
    let mut removed = 0;
    for sandbox in listed.sandboxes {
        let labelled = sandbox
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| t.labels.contains_key(compute::RUN_LABEL));
        if labelled {
            let reply = client
                .delete_sandbox(compute_pb::DeleteSandboxRequest {
                    sandbox_id: sandbox.id,
                    sandbox_name: String::new(),
                })
                .await?;
            removed += usize::from(reply.into_inner().deleted);
        }
    }
    Ok(removed)
}
