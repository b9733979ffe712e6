//! The CredentialsDriver suite: listing, resolving, codes, caching, concurrency, and
//! token-exchange cases when advertised.

use std::collections::HashSet;

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::case::{Case, CaseError, CaseResult, call_failed, ensure, expect_code};

/// Driver-specific inputs for the credentials suite.
#[derive(Clone, Debug, Default)]
pub struct CredentialsInputs {
    /// Credentials to resolve (default: every listed one that needs no subject token).
    pub names: Vec<String>,
    /// A subject token the driver's exchange credentials accept (exchange cases run
    /// only when given). Never printed.
    pub subject_token: Option<proto::Secret>,
}

/// What the credentials cases share.
#[derive(Debug)]
pub struct CredentialsCtx {
    /// Client over the socket.
    pub client: CredentialsDriverClient<Channel>,
    /// Capabilities, when the driver has the RPC.
    pub caps: Option<pb::GetCapabilitiesResponse>,
    /// Inputs.
    pub inputs: CredentialsInputs,
}

impl CredentialsCtx {
    fn client(&self) -> CredentialsDriverClient<Channel> {
        self.client.clone()
    }

    async fn listed(&self) -> Result<Vec<pb::CredentialInfo>, CaseError> {
        self.client()
            .list_credentials(pb::ListCredentialsRequest {})
            .await
            .map(|r| r.into_inner().credentials)
            .map_err(|s| call_failed("ListCredentials", &s))
    }

    async fn resolvable(&self) -> Result<Vec<String>, CaseError> {
        if !self.inputs.names.is_empty() {
            return Ok(self.inputs.names.clone());
        }
        let names: Vec<String> = self
            .listed()
            .await?
            .into_iter()
            .filter(|c| !c.requires_subject_token)
            .map(|c| c.name)
            .collect();
        if names.is_empty() {
            return Err(CaseError::Skip(
                "no credential to resolve without a subject token (config: credentials.names)"
                    .into(),
            ));
        }
        Ok(names)
    }

    async fn resolve(&self, name: &str) -> Result<pb::ResolveCredentialResponse, tonic::Status> {
        self.client()
            .resolve_credential(pb::ResolveCredentialRequest {
                name: name.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Every credentials case, in run order.
pub fn cases() -> Vec<Case<CredentialsCtx>> {
    crate::cases![CredentialsCtx:
        list_is_sorted_and_listed_names_resolve,
        unknown_name_is_not_found,
        empty_name_is_invalid_argument,
        tokens_are_sane,
        a_second_resolve_returns_the_same_token,
        concurrent_resolves_all_succeed_with_one_token,
        exchange_without_subject_is_invalid_argument,
        exchange_with_an_invalid_subject_is_unauthenticated,
    ]
}

async fn list_is_sorted_and_listed_names_resolve(ctx: &CredentialsCtx) -> CaseResult {
    let listed = ctx.listed().await?;
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    ensure(names == sorted, || {
        format!("ListCredentials must be sorted by name, got {names:?}")
    })?;
    for name in ctx.resolvable().await? {
        ctx.resolve(&name)
            .await
            .map_err(|s| call_failed(&format!("ResolveCredential({name})"), &s))?;
    }
    Ok(())
}

async fn unknown_name_is_not_found(ctx: &CredentialsCtx) -> CaseResult {
    let reply = ctx.resolve("conformance-no-such-credential").await;
    expect_code(
        "ResolveCredential",
        reply.map(drop),
        Code::NotFound,
        "of an unknown name",
    )
}

async fn empty_name_is_invalid_argument(ctx: &CredentialsCtx) -> CaseResult {
    expect_code(
        "ResolveCredential",
        ctx.resolve("").await.map(drop),
        Code::InvalidArgument,
        "with an empty name",
    )
}

async fn tokens_are_sane(ctx: &CredentialsCtx) -> CaseResult {
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    for name in ctx.resolvable().await? {
        let token = ctx
            .resolve(&name)
            .await
            .map_err(|s| call_failed("ResolveCredential", &s))?;
        ensure(!token.token.is_empty(), || {
            format!("{name}: the token must not be empty")
        })?;
        ensure(
            !token.token_type.trim().is_empty() && !token.token_type.contains(char::is_whitespace),
            || format!("{name}: token_type must be a single word such as Bearer"),
        )?;
        ensure(
            token.expires_at_ms == 0 || token.expires_at_ms > now_ms,
            || format!("{name}: expires_at_ms must be in the future (or 0 for non-expiring)"),
        )?;
    }
    Ok(())
}

async fn a_second_resolve_returns_the_same_token(ctx: &CredentialsCtx) -> CaseResult {
    for name in ctx.resolvable().await? {
        let first = ctx
            .resolve(&name)
            .await
            .map_err(|s| call_failed("ResolveCredential", &s))?;
        let second = ctx
            .resolve(&name)
            .await
            .map_err(|s| call_failed("ResolveCredential", &s))?;
        ensure(first.token == second.token, || {
            format!(
                "{name}: a second resolve within the token's lifetime must return the same token"
            )
        })?;
    }
    Ok(())
}

async fn concurrent_resolves_all_succeed_with_one_token(ctx: &CredentialsCtx) -> CaseResult {
    let name = ctx.resolvable().await?.remove(0);
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let mut client = ctx.client();
            let name = name.clone();
            tokio::spawn(async move {
                client
                    .resolve_credential(pb::ResolveCredentialRequest {
                        name,
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.into_inner().token)
            })
        })
        .collect();
    let mut tokens = HashSet::new();
    for call in calls {
        let token = call
            .await
            .map_err(|e| CaseError::Fail(format!("resolve task failed: {e}")))?
            .map_err(|s| call_failed("ResolveCredential (100 concurrent)", &s))?;
        tokens.insert(token);
    }
    ensure(tokens.len() == 1, || {
        format!(
            "{name}: 100 concurrent resolves must get one token, got {}",
            tokens.len()
        )
    })
}

async fn exchange_credential(ctx: &CredentialsCtx) -> Result<String, CaseError> {
    if !ctx.caps.as_ref().is_some_and(|c| c.supports_token_exchange) {
        return Err(CaseError::Skip(
            "token exchange is not advertised (GetCapabilities)".into(),
        ));
    }
    ctx.listed()
        .await?
        .into_iter()
        .find(|c| c.requires_subject_token)
        .map(|c| c.name)
        .ok_or_else(|| CaseError::Skip("no listed credential requires a subject token".into()))
}

async fn exchange_without_subject_is_invalid_argument(ctx: &CredentialsCtx) -> CaseResult {
    let name = exchange_credential(ctx).await?;
    expect_code(
        "ResolveCredential",
        ctx.resolve(&name).await.map(drop),
        Code::InvalidArgument,
        "of an exchange credential without subject_token",
    )
}

async fn exchange_with_an_invalid_subject_is_unauthenticated(ctx: &CredentialsCtx) -> CaseResult {
    let name = exchange_credential(ctx).await?;
    if ctx.inputs.subject_token.is_none() {
        return Err(CaseError::Skip("no subject token configured, so the identity provider may be unreachable (config: credentials.subject_token)".into()));
    }
    let reply = ctx
        .client()
        .resolve_credential(pb::ResolveCredentialRequest {
            name,
            subject_token: "conformance.invalid.token".into(),
            ..Default::default()
        })
        .await;
    expect_code(
        "ResolveCredential",
        reply.map(drop),
        Code::Unauthenticated,
        "with an invalid subject token",
    )
}
