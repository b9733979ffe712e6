//! `gateway-shim apikey …`: admins create (the key is printed once), list and revoke
//! API keys, and block or unblock a tenant's or a consumer's keys.

use clap::{Args, Subcommand};
use proto::pb::gateway::v1 as pb;
use serde_json::json;

use super::cli::{ClientArgs, WithClient};
use super::output::{emit, message};
use super::{ClientError, connect, request};

/// `apikey …`
#[derive(Subcommand, Clone, Debug)]
pub enum ApiKeyCommand {
    /// Create a key for a consumer (printed once; only its SHA-256 is kept).
    Create(ApiKeyCreate),
    /// The keys of your tenant (every tenant's for platform admins).
    List(WithClient),
    /// Revoke a key by its id.
    Revoke(ApiKeyId),
    /// Block (or with --unblock, unblock) a consumer's or a whole tenant's keys.
    Block(ApiKeyBlock),
}

/// `apikey create`.
#[derive(Args, Clone, Debug)]
pub struct ApiKeyCreate {
    /// Who calls with the key (e.g. ci-bot).
    #[arg(long)]
    pub consumer: String,
    /// Its tenant (default: yours; another only for platform admins).
    #[arg(long, default_value = "")]
    pub tenant: String,
    /// Requests per minute (0: the gateway's default).
    #[arg(long, default_value_t = 0)]
    pub rate_per_min: u32,
    /// Burst above the rate.
    #[arg(long, default_value_t = 0)]
    pub burst: u32,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `apikey revoke`.
#[derive(Args, Clone, Debug)]
pub struct ApiKeyId {
    /// The key's id (as `apikey list` shows it).
    pub id: String,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `apikey block`.
#[derive(Args, Clone, Debug)]
pub struct ApiKeyBlock {
    /// The tenant (default: yours).
    #[arg(long, default_value = "")]
    pub tenant: String,
    /// One consumer; without it, the whole tenant (platform admins).
    #[arg(long, default_value = "")]
    pub consumer: String,
    /// Lift the block instead.
    #[arg(long)]
    pub unblock: bool,
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
}

impl ApiKeyCommand {
    /// Its client flags.
    pub fn client(&self) -> &ClientArgs {
        match self {
            Self::Create(c) => &c.client,
            Self::List(c) => &c.client,
            Self::Revoke(c) => &c.client,
            Self::Block(c) => &c.client,
        }
    }
}

const HEADER: &[&str] = &["ID", "CONSUMER", "TENANT", "ACTIVE", "RATE/MIN", "BURST"];

fn row(key: &pb::ApiKey) -> Vec<String> {
    vec![
        key.id.clone(),
        key.consumer.clone(),
        key.tenant.clone(),
        key.active.to_string(),
        key.rate_per_min.to_string(),
        key.burst.to_string(),
    ]
}

fn to_json(key: &pb::ApiKey) -> serde_json::Value {
    json!({
        "id": key.id, "consumer": key.consumer, "tenant": key.tenant, "active": key.active,
        "rate_per_min": key.rate_per_min, "burst": key.burst, "created_at_ms": key.created_at_ms,
    })
}

/// Runs an `apikey` subcommand.
///
/// # Errors
/// The call's.
pub async fn run(command: &ApiKeyCommand) -> Result<(), ClientError> {
    let args = command.client();
    let mut client = connect(args).await?;
    match command {
        ApiKeyCommand::Create(create) => {
            let call = pb::CreateApiKeyRequest {
                consumer: create.consumer.clone(),
                tenant: create.tenant.clone(),
                rate_per_min: create.rate_per_min,
                burst: create.burst,
            };
            let created = client
                .create_api_key(request(call, args))
                .await?
                .into_inner();
            let info = created.info.unwrap_or_default();
            let mut json = to_json(&info);
            json["key"] = json!(created.key);
            let text = format!(
                "{}\n(API key {} for {} in {}: shown this once, keep it secret)",
                created.key, info.id, info.consumer, info.tenant
            );
            Ok(message(args.output, &text, &json)?)
        }
        ApiKeyCommand::List(_) => {
            let keys = client
                .list_api_keys(request(pb::ListApiKeysRequest {}, args))
                .await?
                .into_inner()
                .keys;
            let rows: Vec<_> = keys.iter().map(row).collect();
            let json = json!({"keys": keys.iter().map(to_json).collect::<Vec<_>>()});
            Ok(emit(args.output, HEADER, &rows, &json)?)
        }
        ApiKeyCommand::Revoke(revoke) => {
            let key = client
                .revoke_api_key(request(
                    pb::ApiKeyRef {
                        id: revoke.id.clone(),
                    },
                    args,
                ))
                .await?
                .into_inner();
            Ok(emit(args.output, HEADER, &[row(&key)], &to_json(&key))?)
        }
        ApiKeyCommand::Block(block) => {
            let call = pb::SetCallerBlockedRequest {
                tenant: block.tenant.clone(),
                consumer: block.consumer.clone(),
                blocked: !block.unblock,
            };
            client.set_caller_blocked(request(call, args)).await?;
            let what = if block.unblock {
                "unblocked"
            } else {
                "blocked"
            };
            Ok(message(
                args.output,
                what,
                &json!({ "blocked": !block.unblock }),
            )?)
        }
    }
}
