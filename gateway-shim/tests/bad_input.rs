//! Malformed and oversized requests through the public API: each refused with its code,
//! by a message naming the field, never echoing the oversized or unprintable value;
//! and one caller's 10 MB of labels leaves everyone else working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use conformance::mock::{Faults, MockCompute};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::{Client, Gateway, args, by_name, create_request, wait_phase};
use tonic::Code;

/// Filler of oversized values: a message containing a run of it echoed the value.
const Z: char = 'z';

fn big(len: usize) -> String {
    std::iter::repeat_n(Z, len).collect()
}

fn sandbox(mutate: impl FnOnce(&mut pb::CreateSandboxRequest)) -> pb::CreateSandboxRequest {
    let mut request = create_request("ok");
    mutate(&mut request);
    request
}

fn spec(request: &mut pb::CreateSandboxRequest) -> &mut pb::SandboxSpec {
    request.spec.as_mut().unwrap()
}

fn provider(mutate: impl FnOnce(&mut pb::Provider)) -> pb::Provider {
    let mut provider = pb::Provider {
        name: "p".into(),
        r#type: "generic".into(),
        credential: "mock-static".into(),
        endpoint: "https://llm.example/v1".into(),
        ..Default::default()
    };
    mutate(&mut provider);
    provider
}

fn many(n: usize, value: &str) -> HashMap<String, String> {
    (0..n)
        .map(|i| (format!("k{i}"), value.to_owned()))
        .collect()
}

type Call = Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;

/// (case, call, code, the field the message must name)
fn cases(client: &Client) -> Vec<(&'static str, Call, Code, &'static str)> {
    let create = |request: pb::CreateSandboxRequest| -> Call {
        let mut c = client.clone();
        Box::pin(async move { c.create_sandbox(request).await.map(drop) })
    };
    let create_provider = |p: pb::Provider| -> Call {
        let mut c = client.clone();
        Box::pin(async move { c.create_provider(p).await.map(drop) })
    };
    let update_provider = |p: pb::Provider| -> Call {
        let mut c = client.clone();
        Box::pin(async move { c.update_provider(p).await.map(drop) })
    };
    let route = |provider: String, model: String| -> Call {
        let mut c = client.clone();
        Box::pin(async move {
            c.set_inference_route(pb::SetInferenceRouteRequest {
                provider,
                model,
                ..Default::default()
            })
            .await
            .map(drop)
        })
    };
    let get = |reference: pb::SandboxRef| -> Call {
        let mut c = client.clone();
        Box::pin(async move { c.get_sandbox(reference).await.map(drop) })
    };
    let get_provider = |name: String| -> Call {
        let mut c = client.clone();
        Box::pin(async move { c.get_provider(pb::ProviderRef { name }).await.map(drop) })
    };
    let attach = |provider: String| -> Call {
        let mut c = client.clone();
        Box::pin(async move {
            c.attach_provider(pb::AttachmentRequest {
                sandbox: Some(by_name("holder")),
                provider,
            })
            .await
            .map(drop)
        })
    };
    use Code::{InvalidArgument as Invalid, NotFound};
    vec![
        (
            "empty name",
            create(sandbox(|r| r.name.clear())),
            Invalid,
            "name",
        ),
        (
            "10,000-byte name",
            create(sandbox(|r| r.name = big(10_000))),
            Invalid,
            "name",
        ),
        (
            "name with capitals",
            create(sandbox(|r| r.name = "Bad_Name".into())),
            Invalid,
            "name",
        ),
        (
            "name with NUL",
            create(sandbox(|r| r.name = "a\0b".into())),
            Invalid,
            "name",
        ),
        (
            "65 labels",
            create(sandbox(|r| r.labels = many(65, "v"))),
            Invalid,
            "labels",
        ),
        (
            "label key of 200 bytes",
            create(sandbox(|r| {
                r.labels.insert(big(200), "v".into());
            })),
            Invalid,
            "labels key",
        ),
        (
            "label value of 300 bytes",
            create(sandbox(|r| {
                r.labels.insert("k".into(), big(300));
            })),
            Invalid,
            "labels[\"k\"]",
        ),
        (
            "label value with a newline",
            create(sandbox(|r| {
                r.labels.insert("k".into(), "a\nforged row".into());
            })),
            Invalid,
            "labels[\"k\"]",
        ),
        (
            "empty label key",
            create(sandbox(|r| {
                r.labels.insert(String::new(), "v".into());
            })),
            Invalid,
            "labels key",
        ),
        (
            "label with an escape sequence",
            create(sandbox(|r| {
                r.labels.insert("k".into(), "\u{1b}[2J".into());
            })),
            Invalid,
            "labels[\"k\"]",
        ),
        (
            "image of 300 bytes",
            create(sandbox(|r| spec(r).image = big(300))),
            Invalid,
            "spec.image",
        ),
        (
            "image with ESC",
            create(sandbox(|r| spec(r).image = "a\u{1b}b".into())),
            Invalid,
            "spec.image",
        ),
        (
            "workspace with /",
            create(sandbox(|r| spec(r).workspace = "x/y".into())),
            Invalid,
            "spec.workspace",
        ),
        (
            "argument over 128 KiB",
            create(sandbox(|r| {
                spec(r).command = vec!["sh".into(), big(200_000)]
            })),
            Invalid,
            "spec.command[1]",
        ),
        (
            "1,025 arguments",
            create(sandbox(|r| spec(r).command = vec!["x".into(); 1025])),
            Invalid,
            "spec.command",
        ),
        (
            "1,025 variables",
            create(sandbox(|r| spec(r).environment = many(1025, "v"))),
            Invalid,
            "spec.environment",
        ),
        (
            "variable over 128 KiB",
            create(sandbox(|r| {
                spec(r).environment.insert("BIG".into(), big(140_000));
            })),
            Invalid,
            "spec.environment[\"BIG\"]",
        ),
        (
            "argv and environment over 1 MiB",
            create(sandbox(|r| spec(r).command = vec![big(100_000); 11])),
            Invalid,
            "spec.command and spec.environment",
        ),
        (
            "log level with a newline",
            create(sandbox(|r| spec(r).log_level = "info\nx".into())),
            Invalid,
            "spec.log_level",
        ),
        (
            "memory limit of 300 bytes",
            create(sandbox(|r| spec(r).memory_limit = big(300))),
            Invalid,
            "spec.memory_limit",
        ),
        (
            "65 providers",
            create(sandbox(|r| {
                r.providers = (0..65).map(|i| format!("p{i}")).collect()
            })),
            Invalid,
            "providers",
        ),
        (
            "provider name of 10,000 bytes",
            create(sandbox(|r| r.providers = vec![big(10_000)])),
            Invalid,
            "provider",
        ),
        (
            "provider: empty name",
            create_provider(provider(|p| p.name.clear())),
            Invalid,
            "name",
        ),
        (
            "provider: 10,000-byte name",
            create_provider(provider(|p| p.name = big(10_000))),
            Invalid,
            "name",
        ),
        (
            "provider: name with /",
            create_provider(provider(|p| p.name = "a/b".into())),
            Invalid,
            "name",
        ),
        (
            "provider: empty type",
            create_provider(provider(|p| p.r#type.clear())),
            Invalid,
            "type",
        ),
        (
            "provider: type of 300 bytes",
            create_provider(provider(|p| p.r#type = big(300))),
            Invalid,
            "type",
        ),
        (
            "provider: type with a newline",
            create_provider(provider(|p| p.r#type = "openai\nforged".into())),
            Invalid,
            "type",
        ),
        (
            "provider: empty credential",
            create_provider(provider(|p| p.credential.clear())),
            Invalid,
            "credential",
        ),
        (
            "provider: credential with NUL",
            create_provider(provider(|p| p.credential = "a\0b".into())),
            Invalid,
            "credential",
        ),
        (
            "provider: credential of 10 KB",
            create_provider(provider(|p| p.credential = big(10_000))),
            Invalid,
            "credential",
        ),
        (
            "provider: ftp endpoint",
            create_provider(provider(|p| p.endpoint = "ftp://files.example".into())),
            Invalid,
            "endpoint",
        ),
        (
            "provider: endpoint not a URL",
            create_provider(provider(|p| p.endpoint = "llm.example".into())),
            Invalid,
            "endpoint",
        ),
        (
            "provider: endpoint of 3,000 bytes",
            create_provider(provider(|p| p.endpoint = format!("https://{}", big(3000)))),
            Invalid,
            "endpoint",
        ),
        (
            "provider: endpoint without host",
            create_provider(provider(|p| p.endpoint = "http://".into())),
            Invalid,
            "endpoint",
        ),
        (
            "provider: 65 config entries",
            create_provider(provider(|p| p.config = many(65, "v"))),
            Invalid,
            "config",
        ),
        (
            "provider: config value of 5,000 bytes",
            create_provider(provider(|p| {
                p.config.insert("k".into(), big(5000));
            })),
            Invalid,
            "config[\"k\"]",
        ),
        (
            "provider: config key with a control char",
            create_provider(provider(|p| {
                p.config.insert("a\u{7}".into(), "v".into());
            })),
            Invalid,
            "config key",
        ),
        (
            "provider: 65 labels",
            create_provider(provider(|p| p.labels = many(65, "v"))),
            Invalid,
            "labels",
        ),
        (
            "provider: unknown credential",
            create_provider(provider(|p| p.credential = "nope".into())),
            Invalid,
            "credential",
        ),
        (
            "provider update: bad endpoint",
            update_provider(provider(|p| {
                p.name = "holder-p".into();
                p.endpoint = "gopher://x".into();
            })),
            Invalid,
            "endpoint",
        ),
        (
            "route: empty model",
            route("holder-p".into(), String::new()),
            Invalid,
            "model",
        ),
        (
            "route: model of 300 bytes",
            route("holder-p".into(), big(300)),
            Invalid,
            "model",
        ),
        (
            "route: model with a newline",
            route("holder-p".into(), "m\nx".into()),
            Invalid,
            "model",
        ),
        (
            "route: provider of 10,000 bytes",
            route(big(10_000), "m".into()),
            Invalid,
            "provider",
        ),
        (
            "get: 10,000-byte sandbox name",
            get(by_name(&big(10_000))),
            NotFound,
            "sandbox",
        ),
        (
            "get: neither id nor name",
            get(pb::SandboxRef::default()),
            Invalid,
            "sandbox",
        ),
        (
            "get provider: 10,000-byte name",
            get_provider(big(10_000)),
            Invalid,
            "provider",
        ),
        (
            "attach: 10,000-byte provider",
            attach(big(10_000)),
            Invalid,
            "provider",
        ),
    ]
}

async fn gateway(max_providers: usize) -> (Gateway, MockCompute, tempfile::TempDir) {
    let dir = proto::testing::short_dir();
    let compute_socket = dir.path().join("c.sock");
    let mock = MockCompute::new(Faults::default());
    let compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    std::mem::forget(compute);
    let credentials_socket = support::serve_mock_credentials(dir.path());
    let mut gateway_args = args(dir.path(), &compute_socket, Some(&credentials_socket));
    gateway_args.max_providers_per_owner = max_providers;
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    (gateway, mock, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_malformed_request_is_refused_naming_its_field() {
    let (gateway, _mock, _dir) = gateway(100).await;
    let mut client = gateway.client().await;
    client
        .create_sandbox(create_request("holder"))
        .await
        .unwrap();
    client
        .create_provider(provider(|p| p.name = "holder-p".into()))
        .await
        .unwrap();
    let cases = cases(&client);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (case, call, code, field) in cases {
        let status = call.await.expect_err(case);
        let message = status.message();
        assert_eq!(status.code(), code, "{case}: {status:?}");
        assert!(
            message.contains(field),
            "{case}: message {message:?} does not name {field}"
        );
        assert!(
            !message.contains(&big(20)),
            "{case}: the value is echoed: {message:.200}"
        );
        assert!(
            !message.chars().any(char::is_control),
            "{case}: {message:?}"
        );
    }
    // Nothing was created by any of them.
    let listed = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sandboxes.len(), 1);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_labels_leave_everyone_else_working() {
    let (gateway, _mock, _dir) = gateway(3).await;
    let mut client = gateway.client().await;
    let mut huge = create_request("huge");
    huge.labels = (0..10)
        .map(|i| (format!("k{i}"), big(1024 * 1024)))
        .collect();
    let refused = client.create_sandbox(huge).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(!refused.message().contains(&big(20)));
    // Lists, creates, the watch-driven status and the reconcile carry on.
    client
        .create_sandbox(create_request("after"))
        .await
        .unwrap();
    wait_phase(&mut client, "after", "Ready").await;
    let listed = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sandboxes.len(), 1);

    // Per-owner counts: the fourth provider is refused, naming the limit.
    for i in 0..3 {
        client
            .create_provider(provider(|p| p.name = format!("p{i}")))
            .await
            .unwrap();
    }
    let refused = client
        .create_provider(provider(|p| p.name = "p3".into()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("limit per owner is 3"),
        "{refused:?}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_shows_as_such_and_the_rest_still_list() {
    use gateway_shim::store::{Kind, Record, Store};
    use prost::Message as _;
    let dir = proto::testing::short_dir();
    let url = format!("sqlite:{}", dir.path().join("gw.db").display());
    let store = Store::open(&url).await.unwrap();
    let good = pb::Sandbox {
        id: "sb-00000000000000aa".into(),
        name: "good".into(),
        owner: "local".into(),
        ..Default::default()
    };
    let mut record = Record::new(Kind::Sandbox, &good.id, "good", "local");
    record.body = good.encode_to_vec();
    store.create(&record).await.unwrap();
    let mut broken = Record::new(Kind::Sandbox, "sb-00000000000000bb", "broken", "local");
    broken.body = vec![0xff; 16];
    store.create(&broken).await.unwrap();
    drop(store);

    let compute_socket = dir.path().join("c.sock");
    let _compute =
        support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
    let mut gateway_args = args(dir.path(), &compute_socket, None);
    gateway_args.db_url = url;
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;
    let listed = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes;
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["good", "broken"]);
    let shown = &listed[1];
    let status = shown.status.clone().unwrap();
    assert_eq!(status.phase, "Error");
    assert_eq!(status.conditions[0].reason, "CorruptRecord");
    assert_eq!(
        shown.id, "sb-00000000000000bb",
        "shown with what the store knows"
    );
    // It can be deleted; the good one stays.
    client.delete_sandbox(by_name("broken")).await.unwrap();
    let left = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes;
    assert_eq!(left.len(), 1);
    gateway.stop().await;
}
