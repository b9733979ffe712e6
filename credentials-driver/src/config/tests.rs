//! Config parsing: the three kinds, the deployed format, and errors that name the key.

use std::path::Path;

use super::{AuthMethod, Credential, parse};

fn file() -> &'static Path {
    Path::new("/etc/creds/config.yaml")
}

#[test]
fn all_three_kinds_and_the_deployed_format_parse() {
    let config = parse(
        file(),
        r"
credentials:
  github:
    kind: static
    token_ref: github-token
    expires_at: 2027-01-31T00:00:00Z
    scopes: [repo]
  legacy:
    token_endpoint: http://127.0.0.1:9/realms/t/protocol/openid-connect/token
    client_id: gateway
    client_secret_ref: gateway-secret
    scopes: [credentials:resolve]
  exchange:
    kind: token_exchange
    issuer: http://127.0.0.1:9/realms/t/
    client_id: credentials-driver
    client_secret_ref: driver-secret
    auth_method: post
    audience: [downstream-api]
  typed:
    kind: client_credentials
    token_endpoint: http://127.0.0.1:9/token
    client_id: gateway
    client_secret_ref: gateway-secret
",
    )
    .unwrap();
    let names: Vec<_> = config.credentials.keys().cloned().collect();
    assert_eq!(names, ["exchange", "github", "legacy", "typed"]);
    let Credential::ClientCredentials(typed) = &config.credentials["typed"] else {
        panic!("client_credentials expected");
    };
    assert_eq!(
        typed.auth_method,
        AuthMethod::Basic,
        "with a kind: RFC 6749's Basic"
    );
    let Credential::Static {
        expires_at_ms,
        token_type,
        ..
    } = &config.credentials["github"]
    else {
        panic!("static expected");
    };
    assert_eq!(*expires_at_ms, 1_801_353_600_000);
    assert_eq!(token_type, "Bearer");
    let Credential::ClientCredentials(legacy) = &config.credentials["legacy"] else {
        panic!("an entry without kind is client_credentials");
    };
    assert_eq!(
        legacy.auth_method,
        AuthMethod::Post,
        "the deployed (kagenti) format sends the client's id and secret as form fields"
    );
    let Credential::TokenExchange(exchange) = &config.credentials["exchange"] else {
        panic!("token_exchange expected");
    };
    assert_eq!(
        exchange.token_endpoint,
        "http://127.0.0.1:9/realms/t/protocol/openid-connect/token"
    );
    assert_eq!(exchange.auth_method, AuthMethod::Post);
}

fn error_of(text: &str) -> String {
    parse(file(), text).unwrap_err().to_string()
}

#[test]
fn errors_name_the_file_the_key_and_the_fix() {
    let cases = [
        (
            "credentials:\n  a:\n    kind: static\n",
            "credentials.a.token_ref: required",
        ),
        (
            "credentials:\n  a:\n    kind: magic\n",
            "credentials.a.kind: unknown kind \"magic\"",
        ),
        (
            "credentials:\n  a:\n    kind: static\n    token_ref: ../etc/passwd\n",
            "credentials.a.token_ref",
        ),
        (
            "credentials:\n  a:\n    kind: static\n    token_ref: /etc/passwd\n",
            "relative to --secrets-dir",
        ),
        (
            "credentials:\n  a:\n    kind: static\n    token_ref: t\n    client_id: x\n",
            "credentials.a.client_id: not used by kind static",
        ),
        (
            "credentials:\n  a:\n    client_id: x\n    client_secret_ref: s\n",
            "credentials.a.token_endpoint: required",
        ),
        (
            "credentials:\n  a:\n    token_endpoint: ftp://x\n    client_id: x\n    client_secret_ref: s\n",
            "not an http(s) URL",
        ),
        (
            "credentials:\n  a:\n    kind: static\n    token_ref: t\n    expires_at: soon\n",
            "credentials.a.expires_at",
        ),
        (
            "credentials:\n  a:\n    kind: static\n    tokn_ref: t\n",
            "unknown field `tokn_ref`",
        ),
        (
            "credentials:\n  'bad name':\n    kind: static\n    token_ref: t\n",
            "credentials.bad name",
        ),
        ("extra: 1\n", "unknown field `extra`"),
    ];
    for (text, expected) in cases {
        let message = error_of(text);
        assert!(message.starts_with("/etc/creds/config.yaml: "), "{message}");
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
}

#[test]
fn an_empty_file_is_an_empty_config() {
    assert!(
        parse(file(), "credentials: {}\n")
            .unwrap()
            .credentials
            .is_empty()
    );
}
