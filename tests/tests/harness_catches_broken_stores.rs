//! The credential-store suite reports a deliberately non-conformant `CredentialDriver`:
//! a batch answer that repeats one request id (and drops another), a delete that keeps
//! the value, an unknown handle answered with an empty value, and a list that leaks
//! values. Each failure says what the contract requires; the cases it does not break
//! pass.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::pb::upstream::credentials::v1 as pb;
use proto::pb::upstream::credentials::v1::credential_driver_server::{
    CredentialDriver, CredentialDriverServer,
};
use proto::pb::upstream::datamodel::v1::CredentialHandle;
use proto::testing::short_dir;
use tokio::sync::Mutex;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct BrokenStore {
    values: Arc<Mutex<HashMap<String, String>>>,
    next: AtomicU64,
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CredentialDriver for BrokenStore {
    async fn get_capabilities(
        &self,
        _: Request<pb::GetCredentialDriverCapabilitiesRequest>,
    ) -> Reply<pb::GetCredentialDriverCapabilitiesResponse> {
        Ok(Response::new(pb::GetCredentialDriverCapabilitiesResponse {
            driver_name: "broken-store".into(),
            driver_version: "0".into(),
            backend_kind: "memory".into(),
            supports_list: true,
            supports_expires_at: false,
        }))
    }

    async fn store_credential(
        &self,
        request: Request<pb::StoreCredentialRequest>,
    ) -> Reply<pb::StoreCredentialResponse> {
        let r = request.into_inner();
        let handle = format!("h-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.values.lock().await.insert(handle.clone(), r.value);
        Ok(Response::new(pb::StoreCredentialResponse {
            handle: Some(CredentialHandle {
                driver: "broken-store".into(),
                handle,
                metadata: HashMap::new(),
            }),
        }))
    }

    async fn delete_credential(
        &self,
        _: Request<pb::DeleteCredentialRequest>,
    ) -> Reply<pb::DeleteCredentialResponse> {
        // Violation: says OK and keeps the value.
        Ok(Response::new(pb::DeleteCredentialResponse {}))
    }

    async fn resolve_credentials(
        &self,
        request: Request<pb::ResolveCredentialsRequest>,
    ) -> Reply<pb::ResolveCredentialsResponse> {
        let values = self.values.lock().await;
        let mut credentials: Vec<pb::ResolvedCredential> = request
            .into_inner()
            .credentials
            .into_iter()
            .map(|r| pb::ResolvedCredential {
                // Violation: an unknown handle is answered with an empty value.
                value: values
                    .get(r.handle.map(|h| h.handle).as_deref().unwrap_or(""))
                    .cloned()
                    .unwrap_or_default(),
                request_id: r.request_id,
                expires_at_ms: 0,
            })
            .collect();
        // Violation: a batch's first answer is repeated in place of its last.
        if credentials.len() > 1 {
            let first = credentials[0].clone();
            let last = credentials.len() - 1;
            credentials[last] = first;
        }
        Ok(Response::new(pb::ResolveCredentialsResponse {
            credentials,
        }))
    }

    async fn list_credentials(
        &self,
        _: Request<pb::ListCredentialsRequest>,
    ) -> Reply<pb::ListCredentialsResponse> {
        let values = self.values.lock().await;
        let credentials = values
            .iter()
            .map(|(handle, value)| pb::ListedCredential {
                handle: handle.clone(),
                keys: vec!["LISTED".into()],
                // Violation: the value leaks into the listing.
                metadata: HashMap::from([("value".to_owned(), value.clone())]),
            })
            .collect();
        Ok(Response::new(pb::ListCredentialsResponse { credentials }))
    }
}

#[tokio::test]
async fn each_store_violation_is_reported_with_what_the_contract_requires() {
    let dir = short_dir();
    let socket_path = dir.path().join("broken.sock");
    let socket = proto::bind(&proto::SocketConfig {
        path: socket_path.clone(),
        ..Default::default()
    })
    .unwrap();
    let (health, health_service) = proto::Health::new(Vec::<String>::new()).await;
    let routes = Routes::new(CredentialDriverServer::new(BrokenStore::default()))
        .add_service(health_service);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(proto::serve(
        socket,
        routes,
        health,
        proto::ServeOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let config = conformance::Config {
        credential_store_socket: Some(socket_path),
        ..conformance::Config::default()
    };
    let report = conformance::run(&config).await;
    let failures = report.failures();
    let failed = |case: &str, requirement: &str| {
        failures
            .iter()
            .any(|f| f.starts_with(&format!("credential-store/{case}:")) && f.contains(requirement))
    };
    for (case, requirement) in [
        ("a_batch_answers_each_request_id_once", "twice"),
        ("concurrent_stores_get_distinct_handles", "twice"),
        ("a_stored_handle_is_listed", "must not return values"),
        ("a_deleted_handle_is_not_found", "requires NotFound"),
        ("an_unknown_handle_is_not_found", "requires NotFound"),
    ] {
        assert!(failed(case, requirement), "{case}: {failures:#?}");
    }
    assert!(
        report.summary().contains("5 failed"),
        "the cases it does not break pass: {}",
        report.summary()
    );

    let _ = stop.send(());
    let _ = server.await;
}
