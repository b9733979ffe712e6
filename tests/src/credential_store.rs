//! The `credential-store` suite: upstream OpenShell's `CredentialDriver` (singular)
//! contract — a store of values addressed by driver-owned handles, resolved in batches
//! (`proto/upstream/credential_driver.proto`). Every case stores its own values under
//! a provider named after the run and deletes them again.

use std::collections::HashMap;

use proto::pb::upstream::credentials::v1 as pb;
use proto::pb::upstream::credentials::v1::credential_driver_client::CredentialDriverClient;
use proto::pb::upstream::datamodel::v1::CredentialHandle;
use tonic::Code;
use tonic::transport::Channel;

use crate::case::{Case, CaseError, CaseResult, call_failed, ensure, expect_code};

/// Driver-specific inputs for the credential-store suite.
#[derive(Clone, Debug, Default)]
pub struct CredentialStoreInputs {
    /// Handles the driver resolves to tokens that expire (e.g. our driver's
    /// `config:<name>`); the expiry case runs only when given.
    pub token_handles: Vec<String>,
}

/// What the credential-store cases share.
#[derive(Debug)]
pub struct CredentialStoreCtx {
    /// Client over the socket.
    pub client: CredentialDriverClient<Channel>,
    /// What the driver said of itself.
    pub caps: pb::GetCredentialDriverCapabilitiesResponse,
    /// Inputs.
    pub inputs: CredentialStoreInputs,
    /// Unique per run: the provider name of everything stored.
    pub prefix: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl CredentialStoreCtx {
    fn client(&self) -> CredentialDriverClient<Channel> {
        self.client.clone()
    }

    fn request(&self, key: &str) -> pb::StoreCredentialRequest {
        pb::StoreCredentialRequest {
            provider_name: self.prefix.clone(),
            credential_key: key.to_owned(),
            workspace: "conformance".into(),
            provider_id: format!("{}-id", self.prefix),
            ..Default::default()
        }
    }

    async fn store(
        &self,
        key: &str,
        value: &str,
        existing: Option<CredentialHandle>,
    ) -> Result<CredentialHandle, CaseError> {
        let reply = self
            .client()
            .store_credential(pb::StoreCredentialRequest {
                value: value.to_owned(),
                existing_handle: existing,
                ..self.request(key)
            })
            .await
            .map_err(|s| call_failed("StoreCredential", &s))?
            .into_inner();
        match reply.handle {
            Some(handle) if !handle.handle.is_empty() => Ok(handle),
            other => Err(CaseError::Fail(format!(
                "StoreCredential must return a non-empty handle (the gateway refuses an empty one), got {other:?}"
            ))),
        }
    }

    fn resolve_request(
        &self,
        id: &str,
        key: &str,
        handle: &CredentialHandle,
    ) -> pb::ResolveCredentialRequest {
        pb::ResolveCredentialRequest {
            request_id: id.to_owned(),
            provider_name: self.prefix.clone(),
            credential_key: key.to_owned(),
            handle: Some(handle.clone()),
            workspace: "conformance".into(),
            provider_id: format!("{}-id", self.prefix),
        }
    }

    async fn resolve(
        &self,
        requests: Vec<pb::ResolveCredentialRequest>,
    ) -> Result<Vec<pb::ResolvedCredential>, tonic::Status> {
        self.client()
            .resolve_credentials(pb::ResolveCredentialsRequest {
                credentials: requests,
            })
            .await
            .map(|r| r.into_inner().credentials)
    }

    async fn delete(&self, key: &str, handle: &CredentialHandle) -> Result<(), tonic::Status> {
        self.client()
            .delete_credential(pb::DeleteCredentialRequest {
                provider_name: self.prefix.clone(),
                credential_key: key.to_owned(),
                handle: Some(handle.clone()),
                workspace: "conformance".into(),
                provider_id: format!("{}-id", self.prefix),
            })
            .await
            .map(drop)
    }

    /// Checks a batch's answers: each request id once, none unknown; returns them by id.
    fn by_id(
        &self,
        asked: &[&str],
        answers: Vec<pb::ResolvedCredential>,
    ) -> Result<HashMap<String, pb::ResolvedCredential>, CaseError> {
        let mut out = HashMap::new();
        for answer in answers {
            ensure(asked.contains(&answer.request_id.as_str()), || {
                format!(
                    "ResolveCredentials answered request id {:?}, which was not asked",
                    answer.request_id
                )
            })?;
            ensure(
                self.caps.supports_expires_at || answer.expires_at_ms == 0,
                || {
                    "ResolveCredentials returned an expiry though GetCapabilities says supports_expires_at=false".into()
                },
            )?;
            let id = answer.request_id.clone();
            ensure(out.insert(id.clone(), answer).is_none(), || {
                format!("ResolveCredentials answered request id {id:?} twice")
            })?;
        }
        for id in asked {
            ensure(out.contains_key(*id), || {
                format!("ResolveCredentials gave no answer for request id {id:?}")
            })?;
        }
        Ok(out)
    }
}

/// Every credential-store case, in run order.
pub fn cases() -> Vec<Case<CredentialStoreCtx>> {
    crate::cases![CredentialStoreCtx:
        capabilities_name_the_driver,
        a_stored_value_resolves_by_its_handle,
        a_batch_answers_each_request_id_once,
        replacing_with_the_existing_handle_resolves_the_new_value,
        a_stored_handle_is_listed,
        a_deleted_handle_is_not_found,
        an_unknown_handle_is_not_found,
        token_handles_resolve_with_a_future_expiry,
        concurrent_stores_get_distinct_handles,
    ]
}

async fn capabilities_name_the_driver(ctx: &CredentialStoreCtx) -> CaseResult {
    ensure(!ctx.caps.driver_name.is_empty(), || {
        "GetCapabilities must name the driver (driver_name)".into()
    })?;
    ensure(!ctx.caps.backend_kind.is_empty(), || {
        "GetCapabilities must say where values are kept (backend_kind)".into()
    })
}

async fn a_stored_value_resolves_by_its_handle(ctx: &CredentialStoreCtx) -> CaseResult {
    let handle = ctx.store("SINGLE", "value-single", None).await?;
    let answers = ctx
        .resolve(vec![ctx.resolve_request("r-1", "SINGLE", &handle)])
        .await
        .map_err(|s| call_failed("ResolveCredentials", &s))?;
    let answers = ctx.by_id(&["r-1"], answers)?;
    let answer = &answers["r-1"];
    ensure(answer.value == "value-single", || {
        "ResolveCredentials must return the stored value".into()
    })?;
    ensure(answer.expires_at_ms == 0, || {
        format!(
            "a stored value does not expire (expires_at_ms 0), got {}",
            answer.expires_at_ms
        )
    })?;
    ctx.delete("SINGLE", &handle)
        .await
        .map_err(|s| call_failed("DeleteCredential", &s))
}

async fn a_batch_answers_each_request_id_once(ctx: &CredentialStoreCtx) -> CaseResult {
    let mut stored = Vec::new();
    for i in 0..3 {
        let key = format!("BATCH_{i}");
        stored.push((
            key.clone(),
            ctx.store(&key, &format!("batch-{i}"), None).await?,
        ));
    }
    // Asked in reverse order, with request ids unrelated to the keys.
    let ids = ["z", "y", "x"];
    let requests = stored
        .iter()
        .rev()
        .zip(ids)
        .map(|((key, handle), id)| ctx.resolve_request(id, key, handle))
        .collect();
    let answers = ctx
        .resolve(requests)
        .await
        .map_err(|s| call_failed("ResolveCredentials", &s))?;
    let answers = ctx.by_id(&ids, answers)?;
    for (i, id) in ids.iter().enumerate() {
        let want = format!("batch-{}", 2 - i);
        ensure(answers[*id].value == want, || {
            format!("request id {id:?} must get its own handle's value")
        })?;
    }
    for (key, handle) in &stored {
        ctx.delete(key, handle)
            .await
            .map_err(|s| call_failed("DeleteCredential", &s))?;
    }
    Ok(())
}

async fn replacing_with_the_existing_handle_resolves_the_new_value(
    ctx: &CredentialStoreCtx,
) -> CaseResult {
    let first = ctx.store("ROTATED", "before", None).await?;
    let second = ctx.store("ROTATED", "after", Some(first.clone())).await?;
    let answers = ctx
        .resolve(vec![ctx.resolve_request("r", "ROTATED", &second)])
        .await
        .map_err(|s| call_failed("ResolveCredentials", &s))?;
    ensure(ctx.by_id(&["r"], answers)?["r"].value == "after", || {
        "after StoreCredential with existing_handle, the returned handle must resolve to the new value".into()
    })?;
    for handle in [&second, &first] {
        match ctx.delete("ROTATED", handle).await {
            Ok(()) => {}
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(call_failed("DeleteCredential", &status)),
        }
    }
    Ok(())
}

async fn a_stored_handle_is_listed(ctx: &CredentialStoreCtx) -> CaseResult {
    if !ctx.caps.supports_list {
        return Err(CaseError::Skip(
            "the driver does not list (supports_list=false)".into(),
        ));
    }
    let handle = ctx.store("LISTED", "listed-secret-value", None).await?;
    let listed = ctx
        .client()
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .map_err(|s| call_failed("ListCredentials", &s))?
        .into_inner()
        .credentials;
    let found = listed.iter().find(|c| c.handle == handle.handle);
    ensure(
        found.is_some_and(|c| c.keys.iter().any(|k| k == "LISTED")),
        || {
            format!(
                "ListCredentials must list the stored handle with its key LISTED, got {} entries",
                listed.len()
            )
        },
    )?;
    ensure(
        !format!("{listed:?}").contains("listed-secret-value"),
        || "ListCredentials must not return values".into(),
    )?;
    ctx.delete("LISTED", &handle)
        .await
        .map_err(|s| call_failed("DeleteCredential", &s))
}

async fn a_deleted_handle_is_not_found(ctx: &CredentialStoreCtx) -> CaseResult {
    let handle = ctx.store("DELETED", "gone-soon", None).await?;
    ctx.delete("DELETED", &handle)
        .await
        .map_err(|s| call_failed("DeleteCredential", &s))?;
    expect_code(
        "ResolveCredentials",
        ctx.resolve(vec![ctx.resolve_request("r", "DELETED", &handle)])
            .await,
        Code::NotFound,
        "of a deleted handle",
    )?;
    // A retried delete finds nothing to delete: OK or NOT_FOUND.
    match ctx.delete("DELETED", &handle).await {
        Err(status) if status.code() != Code::NotFound => {
            Err(call_failed("DeleteCredential (again)", &status))
        }
        _ => Ok(()),
    }
}

async fn an_unknown_handle_is_not_found(ctx: &CredentialStoreCtx) -> CaseResult {
    let handle = CredentialHandle {
        driver: ctx.caps.driver_name.clone(),
        handle: "conformance-no-such-handle".into(),
        metadata: HashMap::new(),
    };
    expect_code(
        "ResolveCredentials",
        ctx.resolve(vec![ctx.resolve_request("r", "UNKNOWN", &handle)])
            .await,
        Code::NotFound,
        "of a handle the driver never issued",
    )
}

async fn token_handles_resolve_with_a_future_expiry(ctx: &CredentialStoreCtx) -> CaseResult {
    if ctx.inputs.token_handles.is_empty() {
        return Err(CaseError::Skip(
            "no token handle given (config: credential_store.token_handles)".into(),
        ));
    }
    ensure(ctx.caps.supports_expires_at, || {
        "token handles were given, but GetCapabilities says supports_expires_at=false".into()
    })?;
    let ids: Vec<String> = (0..ctx.inputs.token_handles.len())
        .map(|i| format!("token-{i}"))
        .collect();
    let requests = ctx
        .inputs
        .token_handles
        .iter()
        .zip(&ids)
        .map(|(handle, id)| pb::ResolveCredentialRequest {
            request_id: id.clone(),
            handle: Some(CredentialHandle {
                driver: ctx.caps.driver_name.clone(),
                handle: handle.clone(),
                metadata: HashMap::new(),
            }),
            ..Default::default()
        })
        .collect();
    let answers = ctx
        .resolve(requests)
        .await
        .map_err(|s| call_failed("ResolveCredentials", &s))?;
    let asked: Vec<&str> = ids.iter().map(String::as_str).collect();
    let answers = ctx.by_id(&asked, answers)?;
    let now = now_ms();
    for (id, handle) in ids.iter().zip(&ctx.inputs.token_handles) {
        let answer = &answers[id];
        ensure(!answer.value.is_empty(), || {
            format!("{handle} resolved to an empty value")
        })?;
        ensure(answer.expires_at_ms > now, || {
            format!(
                "{handle} is a token: its expiry must be in the future, got {}",
                answer.expires_at_ms
            )
        })?;
    }
    Ok(())
}

async fn concurrent_stores_get_distinct_handles(ctx: &CredentialStoreCtx) -> CaseResult {
    const N: usize = 16;
    let stores = (0..N).map(|i| async move {
        let key = format!("PARALLEL_{i}");
        ctx.store(&key, &format!("parallel-{i}"), None)
            .await
            .map(|handle| (key, handle))
    });
    let stored = futures_util::future::try_join_all(stores).await?;
    let distinct: std::collections::HashSet<&str> =
        stored.iter().map(|(_, h)| h.handle.as_str()).collect();
    ensure(distinct.len() == N, || {
        format!(
            "{N} concurrent stores must get {N} distinct handles, got {}",
            distinct.len()
        )
    })?;
    let ids: Vec<String> = (0..N).map(|i| format!("p-{i}")).collect();
    let requests = stored
        .iter()
        .zip(&ids)
        .map(|((key, handle), id)| ctx.resolve_request(id, key, handle))
        .collect();
    let answers = ctx
        .resolve(requests)
        .await
        .map_err(|s| call_failed("ResolveCredentials", &s))?;
    let asked: Vec<&str> = ids.iter().map(String::as_str).collect();
    let answers = ctx.by_id(&asked, answers)?;
    for (i, id) in ids.iter().enumerate() {
        ensure(answers[id].value == format!("parallel-{i}"), || {
            format!("request {id} got another store's value")
        })?;
    }
    for (key, handle) in &stored {
        ctx.delete(key, handle)
            .await
            .map_err(|s| call_failed("DeleteCredential", &s))?;
    }
    Ok(())
}
