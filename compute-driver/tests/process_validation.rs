//! Bad input is refused with the right code and the field named; idempotent create.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use proto::pb::compute::v1 as pb;
use proto::testing::short_dir;
use support::{Driver, sandbox};
use tonic::Code;

#[tokio::test]
async fn malformed_requests_get_invalid_argument_naming_the_field() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;

    let mut empty_id = sandbox("x", &["true"]);
    empty_id.id.clear();
    let mut newline_name = sandbox("y", &["true"]);
    newline_name.name = "bad\nname".into();
    let mut bad_quantity = sandbox("z", &["true"]);
    bad_quantity.spec.as_mut().unwrap().template = Some(pb::DriverSandboxTemplate {
        resources: Some(pb::DriverResourceRequirements {
            memory_limit: "lots".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut bad_level = sandbox("w", &["true"]);
    bad_level.spec.as_mut().unwrap().log_level = "loud".into();
    let mut platform_key = sandbox("v", &["true"]);
    platform_key.spec.as_mut().unwrap().template = Some(pb::DriverSandboxTemplate {
        platform_config: Some(prost_types::Struct {
            fields: [("runtimeClassName".to_owned(), prost_types::Value::default())].into(),
        }),
        ..Default::default()
    });

    let cases = [
        (empty_id, "sandbox.id"),
        (newline_name, "sandbox.name"),
        (bad_quantity, "sandbox.spec.template.resources.memory_limit"),
        (bad_level, "sandbox.spec.log_level"),
        (platform_key, "runtimeClassName"),
    ];
    for (bad, field) in cases {
        for status in [
            driver
                .client
                .validate_sandbox_create(pb::ValidateSandboxCreateRequest {
                    sandbox: Some(bad.clone()),
                })
                .await
                .unwrap_err(),
            driver.create(bad).await.unwrap_err(),
        ] {
            assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
            assert!(
                status.message().contains(field),
                "{field}: {}",
                status.message()
            );
        }
    }
    assert!(driver.list_ids().await.is_empty(), "nothing was created");

    let status = driver
        .client
        .get_sandbox(pb::GetSandboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("sandbox_id"));
}

#[tokio::test]
async fn gpus_are_a_failed_precondition_on_the_process_backend() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut gpu = sandbox("gpu", &["true"]);
    gpu.spec.as_mut().unwrap().resource_requirements = Some(pb::ResourceRequirements {
        gpu: Some(pb::GpuResourceRequirements { count: Some(1) }),
    });
    let status = driver.create(gpu).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("gpu"));
}

#[tokio::test]
async fn create_is_idempotent_for_the_same_spec_and_conflicts_otherwise() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let first = sandbox("same", &["sleep", "30"]);
    driver.create(first.clone()).await.unwrap();
    driver.create(first).await.unwrap();
    assert_eq!(driver.list_ids().await, ["same"]);

    let status = driver
        .create(sandbox("same", &["sleep", "31"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let mut same_name = sandbox("other-id", &["sleep", "30"]);
    same_name.name = "same".into();
    assert_eq!(
        driver.create(same_name).await.unwrap_err().code(),
        Code::AlreadyExists
    );

    let reply = driver
        .client
        .get_capabilities(pb::GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.driver_name, "compute-driver");
    assert!(reply.driver_reports_runtime_readiness);
    let status = driver
        .client
        .authenticate_sandbox(pb::AuthenticateSandboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    driver.delete("same").await;
}
