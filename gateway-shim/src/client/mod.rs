//! The command-line client: the client subcommands of `gateway-shim`, over the public
//! gRPC API, with tables for people and `-o json` for scripts.

mod account;
pub mod api_keys;
pub mod cli;
mod commands;
pub mod login;
mod output;
pub mod profiles;
pub mod session;
mod settings;
mod tls;
pub mod tokens;

use std::path::PathBuf;

use proto::pb::gateway::v1::gateway_client::GatewayClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

pub use commands::run_client;

/// Whether `command` is a client command asked for `-o json` (its errors are JSON too).
pub fn wants_json(command: &crate::Command) -> bool {
    cli::client_args(command).is_some_and(|c| c.output == cli::Output::Json)
}

use cli::ClientArgs;

/// Why a client command failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No token could be found.
    #[error(
        "no token: log in (`gateway-shim gateway add URL` then `gateway-shim login`), pass --token-file (or set OPENSHELL_TOKEN_FILE) to the file `gateway-shim dev` printed, or run inside a sandbox"
    )]
    NoToken,
    /// The remembered gateway being called has no login.
    #[error("not logged in to gateway {0}: run `gateway-shim login {0}`")]
    NotLoggedIn(String),
    /// A login, renewal or logout failed.
    #[error(transparent)]
    Login(#[from] login::LoginError),
    /// The remembered gateways could not be read or changed.
    #[error(transparent)]
    Profile(#[from] profiles::ProfileError),
    /// A stored login could not be read or written.
    #[error("stored login: {0}")]
    Tokens(String),
    /// The token file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A flag's value is malformed.
    #[error("{0}")]
    Usage(String),
    /// The gateway address is not a URL.
    #[error("--gateway {0:?} is not a URL like http://127.0.0.1:8080")]
    BadAddress(String),
    /// The gateway address has no `http://` or `https://`.
    #[error("--gateway {0:?} has no scheme: write http://{0} (or https://{0})")]
    NoScheme(String),
    /// The gateway could not be reached.
    #[error("cannot reach the gateway at {addr}: {why}; is it running (`gateway-shim dev`)?")]
    Unreachable {
        /// The address.
        addr: String,
        /// Why.
        why: String,
    },
    /// The gateway answered with an error.
    #[error("{}", describe(.0))]
    Call(Status),
    /// `create --wait`: the sandbox failed.
    #[error("sandbox {name} failed: {why}")]
    SandboxFailed {
        /// Its name.
        name: String,
        /// The Ready condition's reason and message.
        why: String,
    },
    /// A file the command reads is unusable.
    #[error("{0}")]
    Input(String),
    /// A TLS file could not be used.
    #[error("{0}")]
    Tls(String),
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        Self::Call(status)
    }
}

fn describe(status: &Status) -> String {
    // A connection the gateway closed (TLS 1.3 refuses a client certificate only
    // after the handshake) surfaces at the first call: say why, with its causes.
    let broken = matches!(status.code(), tonic::Code::Unknown | tonic::Code::Cancelled)
        && std::error::Error::source(status).is_some();
    let hint = match status.code() {
        tonic::Code::Unauthenticated => {
            " (check the token: --token-file or OPENSHELL_TOKEN_FILE, or `gateway-shim login`)"
        }
        tonic::Code::Unavailable => " (try again shortly)",
        _ if broken => {
            " (the gateway closed the connection; over https it may require a client certificate its CA signed: --client-cert and --client-key)"
        }
        _ => "",
    };
    format!("{}{hint}", proto::describe_status(status))
}

/// Where the gateway is when nothing says otherwise.
const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";

/// A client that adds the bearer token to every call.
pub type Client = GatewayClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer …`.
#[derive(Clone, Debug)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Connects to the gateway with the token `args` lead to.
///
/// # Errors
/// [`ClientError`] saying what is missing.
pub async fn connect(args: &ClientArgs) -> Result<Client, ClientError> {
    let session::Target {
        addr,
        token,
        profile,
    } = session::target(args).await?;
    let value =
        MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| ClientError::NoToken)?;
    if !(addr.starts_with("http://") || addr.starts_with("https://")) {
        return Err(ClientError::NoScheme(addr));
    }
    let mut endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|_| ClientError::BadAddress(addr.clone()))?
        .connect_timeout(args.timeout);
    if addr.starts_with("https://") {
        let ca_file = args
            .ca_file
            .clone()
            .or_else(|| profile.and_then(|p| p.ca_file));
        endpoint = endpoint
            .tls_config(tls::client_config(ca_file.as_deref(), args)?)
            .map_err(|e| ClientError::Tls(e.to_string()))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| ClientError::Unreachable {
            addr: addr.clone(),
            why: proto::error_chain(&error),
        })?;
    Ok(GatewayClient::with_interceptor(channel, Bearer(value)))
}

/// A request with the command's deadline.
pub(crate) fn request<M>(message: M, args: &ClientArgs) -> Request<M> {
    let mut request = Request::new(message);
    request.set_timeout(args.timeout);
    request
}
