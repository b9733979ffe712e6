//! The real `credentials-driver` binary on a socket: capabilities, honest answers,
//! SIGTERM drain.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::time::Duration;

use nix::sys::signal::Signal;
use proto::pb::credentials::v1::{
    GetCapabilitiesRequest, ResolveCredentialRequest,
    credentials_driver_client::CredentialsDriverClient,
};
use proto::testing::SpawnedDriver;

const BINARY: &str = env!("CARGO_BIN_EXE_credentials-driver");

#[tokio::test]
async fn serves_capabilities_and_stops_on_sigint() {
    let mut driver = SpawnedDriver::spawn(BINARY.as_ref(), &[]);
    let mut client = CredentialsDriverClient::new(driver.channel().await.unwrap());

    let caps = client
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.driver_name, "credentials-driver");
    assert_eq!(
        caps.supported_kinds,
        ["static", "client_credentials", "token_exchange"]
    );
    assert!(caps.supports_token_exchange);

    let status = client
        .resolve_credential(ResolveCredentialRequest {
            name: "github".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::NotFound,
        "no config: nothing is configured"
    );

    driver.signal(Signal::SIGINT);
    let exit = driver
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("exits");
    assert!(exit.success(), "{exit:?}");
    assert!(!driver.socket().exists());
}

#[test]
fn help_names_the_deployed_flag_and_its_alias() {
    let output = std::process::Command::new(BINARY)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--socket <PATH>"));
    assert!(help.contains("--bind-socket"));
    assert!(help.contains("CREDENTIALS_DRIVER_SOCKET"));
}
