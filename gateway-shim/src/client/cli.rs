//! Flags of the client subcommands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use proto::cli::parse_duration;

/// How to reach the gateway, shared by every client subcommand.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// Gateway address; default: $OPENSHELL_GATEWAY_ENDPOINT (set inside sandboxes),
    /// else http://127.0.0.1:8080.
    #[arg(long, global = true, value_name = "URL", env = "OPENSHELL_GATEWAY")]
    pub gateway: Option<String>,
    /// Bearer token (prefer --token-file: arguments are visible to other users).
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "OPENSHELL_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File holding the bearer token. Defaults, in order: $OPENSHELL_SANDBOX_TOKEN_FILE
    /// (inside a sandbox), then the token `gateway-shim dev` writes.
    #[arg(long, global = true, value_name = "PATH", env = "OPENSHELL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificates to verify an https:// gateway with (besides the system's;
    /// default: the one given at `gateway add`).
    #[arg(long, global = true, value_name = "PATH", env = "OPENSHELL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for a gateway that asks for one (mTLS).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "OPENSHELL_CLIENT_CERT",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "OPENSHELL_CLIENT_KEY",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Output: tables for people, JSON for scripts.
    #[arg(short, long, global = true, value_enum, default_value = "table")]
    pub output: Output,
    /// Deadline of each call.
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Output format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
}

/// `KEY=VALUE` pairs.
fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{raw:?}: expected KEY=VALUE"))
}

/// `sandbox …`
#[derive(Subcommand, Clone, Debug)]
pub enum SandboxCommand {
    /// Create a sandbox running COMMAND.
    Create(SandboxCreate),
    /// List your sandboxes.
    List(WithClient),
    /// Show one sandbox.
    Get(SandboxName),
    /// Stop a sandbox (its files are kept).
    Stop(SandboxName),
    /// Start a stopped sandbox.
    Start(SandboxName),
    /// Delete a sandbox.
    Delete(SandboxName),
    /// Follow your sandboxes' changes (Ctrl-C to stop).
    Watch(WithClient),
    /// Show what a sandbox's program wrote (stdout to stdout, stderr to stderr).
    Logs(SandboxLogs),
    /// A sandbox's settings: its policy, values and the policy's status.
    #[command(subcommand)]
    Settings(SettingsCommand),
}

/// `sandbox settings …`
#[derive(Subcommand, Clone, Debug)]
pub enum SettingsCommand {
    /// Show a sandbox's settings.
    Get(SandboxName),
    /// Change a sandbox's settings: only what is given changes (compare-and-set with
    /// the version just read).
    Set(SettingsSet),
}

/// `sandbox settings set`.
#[derive(Args, Clone, Debug)]
pub struct SettingsSet {
    /// The sandbox.
    #[command(flatten)]
    pub sandbox: SandboxName,
    /// JSON file holding the new policy (an object).
    #[arg(long, value_name = "PATH")]
    pub policy_file: Option<PathBuf>,
    /// Value KEY=VALUE to set (repeatable).
    #[arg(long = "value", value_parser = key_value)]
    pub values: Vec<(String, String)>,
    /// Value keys to remove (repeatable).
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
    /// Expected resource version (default: the one just read).
    #[arg(long)]
    pub version: Option<u64>,
}

/// `sandbox logs`.
#[derive(Args, Clone, Debug)]
pub struct SandboxLogs {
    /// The sandbox.
    #[command(flatten)]
    pub sandbox: SandboxName,
    /// Keep printing what it writes until it ends (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last BYTES of each output.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub tail: u64,
}

/// Just the client flags.
#[derive(Args, Clone, Debug)]
pub struct WithClient {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A sandbox by name.
#[derive(Args, Clone, Debug)]
pub struct SandboxName {
    /// The sandbox's name (or its id with --id).
    pub name: String,
    /// NAME is the sandbox's id.
    #[arg(long)]
    pub id: bool,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `sandbox create`.
#[derive(Args, Clone, Debug)]
pub struct SandboxCreate {
    /// Name (lowercase letters, digits, '-').
    pub name: String,
    /// The program and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    /// Container image (Kubernetes backend); default: the driver's.
    #[arg(long)]
    pub image: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = key_value)]
    pub environment: Vec<(String, String)>,
    /// Label KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = key_value)]
    pub labels: Vec<(String, String)>,
    /// Workspace of yours to place it in.
    #[arg(long)]
    pub workspace: Option<String>,
    /// CPU limit, e.g. 500m.
    #[arg(long)]
    pub cpu_limit: Option<String>,
    /// Memory limit, e.g. 512Mi.
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// GPUs.
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Provider to attach (repeatable).
    #[arg(long = "provider")]
    pub providers: Vec<String>,
    /// Wait until the sandbox is Ready (or fails).
    #[arg(long)]
    pub wait: bool,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `provider …`
#[derive(Subcommand, Clone, Debug)]
pub enum ProviderCommand {
    /// Create a provider backed by a credential of the credentials driver.
    Create(ProviderSpec),
    /// List your providers and the shared ones.
    List(WithClient),
    /// Show one provider.
    Get(ProviderName),
    /// Replace a provider's type, credential, endpoint and config.
    Update(ProviderUpdate),
    /// Delete a provider (detach it from sandboxes first).
    Delete(ProviderName),
    /// Attach a provider to a sandbox.
    Attach(Attachment),
    /// Detach a provider from a sandbox.
    Detach(Attachment),
}

/// A provider's fields.
#[derive(Args, Clone, Debug)]
pub struct ProviderSpec {
    /// Name.
    pub name: String,
    /// What it is, e.g. openai, anthropic, github.
    #[arg(long = "type")]
    pub kind: String,
    /// Name of the credential in the credentials driver.
    #[arg(long)]
    pub credential: String,
    /// Base URL of the service.
    #[arg(long, default_value = "")]
    pub endpoint: String,
    /// Config KEY=VALUE (repeatable).
    #[arg(long = "config", value_parser = key_value)]
    pub config: Vec<(String, String)>,
    /// Access attributes CATEGORY=VALUE[,VALUE…] (repeatable), e.g. teams=ml: callers
    /// the gateway's attribute rules admit by them may read or use it too.
    #[arg(long = "access", value_name = "CATEGORY=VALUES", value_parser = key_value)]
    pub access: Vec<(String, String)>,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `provider update`: only the fields given change (the rest are kept as read).
#[derive(Args, Clone, Debug)]
pub struct ProviderUpdate {
    /// Name.
    pub name: String,
    /// New type.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// New credential name.
    #[arg(long)]
    pub credential: Option<String>,
    /// New base URL ("" clears it).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Config KEY=VALUE to set (repeatable); other keys are kept.
    #[arg(long = "config", value_parser = key_value)]
    pub config: Vec<(String, String)>,
    /// Config keys to remove (repeatable).
    #[arg(long = "unset-config", value_name = "KEY")]
    pub unset_config: Vec<String>,
    /// Replace the access attributes: CATEGORY=VALUE[,VALUE…] (repeatable).
    #[arg(long = "access", value_name = "CATEGORY=VALUES", value_parser = key_value)]
    pub access: Vec<(String, String)>,
    /// Remove every access attribute.
    #[arg(long, conflicts_with = "access")]
    pub unshare: bool,
    /// Expected resource version (default: the one just read; ABORTED when another
    /// change came in between).
    #[arg(long)]
    pub version: Option<u64>,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A provider by name.
#[derive(Args, Clone, Debug)]
pub struct ProviderName {
    /// Name.
    pub name: String,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Sandbox and provider.
#[derive(Args, Clone, Debug)]
pub struct Attachment {
    /// The sandbox's name.
    pub sandbox: String,
    /// The provider's name.
    pub provider: String,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `inference …`
#[derive(Subcommand, Clone, Debug)]
pub enum InferenceCommand {
    /// Set your inference route (admins: the global one).
    Set(InferenceSet),
    /// Show the route that applies to you.
    Get(InferenceScope),
    /// Delete your own route.
    Delete(InferenceScope),
    /// From inside a sandbox: the inference bundle (endpoint, model, key).
    Bundle(WithClient),
}

/// `inference set`.
#[derive(Args, Clone, Debug)]
pub struct InferenceSet {
    /// Provider serving the route.
    #[arg(long)]
    pub provider: String,
    /// Model name.
    #[arg(long)]
    pub model: String,
    /// Expected resource version (ABORTED when it moved on).
    #[arg(long)]
    pub version: Option<u64>,
    /// The platform layer's route, under every tenant's (platform admins).
    #[arg(long)]
    pub platform: bool,
    /// A static request header the route's clients must send, `NAME=VALUE`;
    /// repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `inference get` and `inference delete`.
#[derive(Args, Clone, Debug)]
pub struct InferenceScope {
    /// The platform layer's route instead of yours.
    #[arg(long)]
    pub platform: bool,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `credential …`
#[derive(Subcommand, Clone, Debug)]
pub enum CredentialCommand {
    /// Resolve an attached provider's credential (with the sandbox's token).
    Resolve(ProviderName),
}

/// `gateway …`
#[derive(Subcommand, Clone, Debug)]
pub enum GatewayCommand {
    /// Remember a gateway: reads its discovery document (how to log in).
    Add(GatewayAdd),
    /// The remembered gateways (`*` marks the one in use).
    List(GatewayList),
    /// Use this gateway from now on.
    Use(GatewayPick),
    /// Forget a gateway and delete its login.
    Remove(GatewayPick),
}

/// `gateway add`.
#[derive(Args, Clone, Debug)]
pub struct GatewayAdd {
    /// Its address, http:// or https://.
    pub url: String,
    /// Name to use it by (default: its host and port).
    #[arg(long)]
    pub name: Option<String>,
    /// PEM file of the CA that signed its certificate (https:// with a private CA).
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

/// `gateway list`.
#[derive(Args, Clone, Debug)]
pub struct GatewayList {
    /// Output: tables for people, JSON for scripts.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
}

/// A remembered gateway by name.
#[derive(Args, Clone, Debug)]
pub struct GatewayPick {
    /// Its name (`gateway list`).
    pub name: String,
}

/// `login`.
#[derive(Args, Clone, Debug)]
pub struct Login {
    /// The remembered gateway to log in to (default: the one in use).
    pub name: Option<String>,
    /// Device authorization: approve a code on any device (headless machines).
    #[arg(long, conflicts_with = "client_credentials")]
    pub device: bool,
    /// Client credentials (CI): --client-id and a secret from --client-secret-file or
    /// $OPENSHELL_CLIENT_SECRET.
    #[arg(long)]
    pub client_credentials: bool,
    /// OAuth2 client (default: the CLI client the gateway names).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// File holding the client secret (client credentials).
    #[arg(long, value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,
    /// Scope to request besides the gateway's (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Print the sign-in address instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// How long the sign-in may take.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub login_timeout: Duration,
}

/// `logout`.
#[derive(Args, Clone, Debug)]
pub struct Logout {
    /// The remembered gateway (default: the one in use).
    pub name: Option<String>,
}

/// The client flags of a client subcommand (`None` for `serve` and `dev`).
pub fn client_args(command: &crate::Command) -> Option<&ClientArgs> {
    use crate::Command;
    Some(match command {
        Command::Serve(_)
        | Command::Dev(_)
        | Command::Gateway(_)
        | Command::Login(_)
        | Command::Logout(_) => return None,
        Command::Sandbox(sub) => match sub {
            SandboxCommand::Create(c) => &c.client,
            SandboxCommand::List(c) | SandboxCommand::Watch(c) => &c.client,
            SandboxCommand::Logs(c) => &c.sandbox.client,
            SandboxCommand::Settings(SettingsCommand::Get(c)) => &c.client,
            SandboxCommand::Settings(SettingsCommand::Set(c)) => &c.sandbox.client,
            SandboxCommand::Get(c)
            | SandboxCommand::Stop(c)
            | SandboxCommand::Start(c)
            | SandboxCommand::Delete(c) => &c.client,
        },
        Command::Provider(sub) => match sub {
            ProviderCommand::Create(c) => &c.client,
            ProviderCommand::Update(c) => &c.client,
            ProviderCommand::List(c) => &c.client,
            ProviderCommand::Get(c) | ProviderCommand::Delete(c) => &c.client,
            ProviderCommand::Attach(c) | ProviderCommand::Detach(c) => &c.client,
        },
        Command::Inference(sub) => match sub {
            InferenceCommand::Set(c) => &c.client,
            InferenceCommand::Get(c) | InferenceCommand::Delete(c) => &c.client,
            InferenceCommand::Bundle(c) => &c.client,
        },
        Command::Credential(CredentialCommand::Resolve(c)) => &c.client,
        Command::Apikey(sub) => sub.client(),
    })
}
