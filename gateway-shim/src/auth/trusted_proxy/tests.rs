//! The header-to-principal mapping as a table, and the listener's checks.

use std::collections::{BTreeMap, BTreeSet};

use http::{HeaderMap, HeaderValue};

use super::*;

fn config() -> TrustedProxyConfig {
    TrustedProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        allowed_peers: vec!["10.0.0.0/8".parse().unwrap()],
        secret_file: None,
        secret_header: "x-proxy-secret".into(),
        client_ca: None,
        principal_header: "x-maas-user".into(),
        attributes_header: Some("x-maas-attributes".into()),
        attribute_headers: BTreeMap::from([
            ("x-maas-group".to_owned(), "teams".to_owned()),
            ("x-maas-subscription".to_owned(), "namespaces".to_owned()),
        ]),
        tenant_header: None,
        tenant_attribute: Some("tenant".into()),
        roles_attribute: "roles".into(),
        admin_role: "admin".into(),
        platform_admin_role: Some("platform-admin".into()),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// What a row expects: owner, tenant, admin, platform admin, attributes.
type Expected = (
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [(&'static str, &'static [&'static str])],
);

/// A row: what it shows, the headers sent, what comes of them (or the refusal's
/// public text).
type Row = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Result<Expected, &'static str>,
);

#[test]
fn headers_become_principal_tenant_and_attributes() {
    let proxy = TrustedProxy::load(config()).unwrap();
    let rows: &[Row] = &[
        (
            "one group, tenant from the attributes header",
            &[
                ("x-maas-user", "bob"),
                ("x-maas-attributes", r#"{"tenant": "acme"}"#),
                ("x-maas-group", "ml"),
            ],
            Ok((
                "proxy.bob",
                "acme",
                false,
                false,
                &[("teams", &["ml"]), ("tenant", &["acme"])],
            )),
        ),
        (
            "several groups, comma form with spaces and empties",
            &[
                ("x-maas-user", "bob"),
                ("x-maas-attributes", r#"{"tenant": ["acme"]}"#),
                ("x-maas-group", "ml, infra,,research "),
            ],
            Ok((
                "proxy.bob",
                "acme",
                false,
                false,
                &[
                    ("teams", &["infra", "ml", "research"]),
                    ("tenant", &["acme"]),
                ],
            )),
        ),
        (
            "JSON array form, repeated header, merged with the attributes header",
            &[
                ("x-maas-user", "carol"),
                (
                    "x-maas-attributes",
                    r#"{"tenant": "globex", "teams": ["ops"], "roles": "admin"}"#,
                ),
                ("x-maas-group", r#"["ml", "ops"]"#),
                ("x-maas-group", "infra"),
                ("x-maas-subscription", "gold,silver"),
            ],
            Ok((
                "proxy.carol",
                "globex",
                true,
                false,
                &[
                    ("namespaces", &["gold", "silver"]),
                    ("roles", &["admin"]),
                    ("teams", &["infra", "ml", "ops"]),
                    ("tenant", &["globex"]),
                ],
            )),
        ),
        (
            "platform admin",
            &[
                ("x-maas-user", "root"),
                (
                    "x-maas-attributes",
                    r#"{"tenant": "acme", "roles": ["platform-admin"]}"#,
                ),
            ],
            Ok((
                "proxy.root",
                "acme",
                true,
                true,
                &[("roles", &["platform-admin"]), ("tenant", &["acme"])],
            )),
        ),
        (
            "a subject that is no label value is hashed",
            &[
                ("x-maas-user", "bob@example.com"),
                ("x-maas-attributes", r#"{"tenant": "acme"}"#),
            ],
            Ok(("proxy.h--", "acme", false, false, &[("tenant", &["acme"])])),
        ),
        (
            "missing principal",
            &[("x-maas-attributes", r#"{"tenant": "acme"}"#)],
            Err("no principal"),
        ),
        (
            "empty principal",
            &[
                ("x-maas-user", " "),
                ("x-maas-attributes", r#"{"tenant": "acme"}"#),
            ],
            Err("no principal"),
        ),
        (
            "two principals",
            &[("x-maas-user", "a"), ("x-maas-user", "b")],
            Err("malformed"),
        ),
        (
            "malformed JSON",
            &[
                ("x-maas-user", "bob"),
                ("x-maas-attributes", r#"{"tenant": "#),
            ],
            Err("malformed"),
        ),
        (
            "JSON that is no object",
            &[("x-maas-user", "bob"), ("x-maas-attributes", r#"["acme"]"#)],
            Err("malformed"),
        ),
        (
            "numbers as values",
            &[
                ("x-maas-user", "bob"),
                ("x-maas-attributes", r#"{"teams": [1]}"#),
            ],
            Err("malformed"),
        ),
        (
            "malformed array header",
            &[("x-maas-user", "bob"), ("x-maas-group", "[\"ml\"")],
            Err("malformed"),
        ),
        ("no tenant", &[("x-maas-user", "bob")], Err("no tenant")),
        (
            "two tenants",
            &[
                ("x-maas-user", "bob"),
                ("x-maas-attributes", r#"{"tenant": ["a", "b"]}"#),
            ],
            Err("no tenant"),
        ),
        (
            "a tenant that is no label value",
            &[
                ("x-maas-user", "bob"),
                ("x-maas-attributes", r#"{"tenant": "a/b"}"#),
            ],
            Err("no tenant"),
        ),
    ];
    for (what, sent, expected) in rows {
        let got = proxy.principal(&headers(sent));
        match (got, expected) {
            (Ok(principal), Ok((owner, tenant, admin, platform, attributes))) => {
                let user = principal.user().unwrap();
                assert!(
                    user.owner.starts_with(owner),
                    "{what}: owner {}",
                    user.owner
                );
                assert_eq!(principal.tenant, *tenant, "{what}");
                assert_eq!(
                    (user.admin, user.platform_admin),
                    (*admin, *platform),
                    "{what}"
                );
                assert!(
                    user.user_role && user.scopes.is_none() && user.bearer.is_none(),
                    "{what}"
                );
                let want: BTreeMap<String, BTreeSet<String>> = attributes
                    .iter()
                    .map(|(category, values)| ((*category).to_owned(), set(values)))
                    .collect();
                assert_eq!(principal.attributes, want, "{what}");
            }
            (Err(refusal), Err(public)) => {
                assert!(refusal.public.contains(public), "{what}: {refusal:?}");
                assert!(!refusal.reason.is_empty(), "{what}: a reason for the log");
            }
            (got, expected) => panic!("{what}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn the_tenant_may_come_from_a_header_or_be_the_default() {
    let by_header = TrustedProxy::load(TrustedProxyConfig {
        tenant_header: Some("x-maas-tenant".into()),
        tenant_attribute: None,
        ..config()
    })
    .unwrap();
    let principal = by_header
        .principal(&headers(&[
            ("x-maas-user", "bob"),
            ("x-maas-tenant", "acme"),
        ]))
        .unwrap();
    assert_eq!(principal.tenant, "acme");
    assert!(
        by_header
            .principal(&headers(&[("x-maas-user", "bob")]))
            .is_err()
    );
    let no_tenants = TrustedProxy::load(TrustedProxyConfig {
        tenant_attribute: None,
        ..config()
    })
    .unwrap();
    let principal = no_tenants
        .principal(&headers(&[("x-maas-user", "bob")]))
        .unwrap();
    assert_eq!(principal.tenant, crate::store::DEFAULT_TENANT);
}

#[test]
fn the_listener_admits_only_a_proxy_that_passes_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret-shared-with-the-proxy\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let proxy = TrustedProxy::load(TrustedProxyConfig {
        secret_file: Some(secret.clone()),
        ..config()
    })
    .unwrap();
    let inside: SocketAddr = "10.1.2.3:5000".parse().unwrap();
    let outside: SocketAddr = "192.168.1.1:5000".parse().unwrap();
    let mapped: SocketAddr = "[::ffff:10.9.9.9]:5000".parse().unwrap();
    let good = headers(&[("x-proxy-secret", "s3cret-shared-with-the-proxy")]);
    let wrong = headers(&[("x-proxy-secret", "s3cret-shared-with-the-proxx")]);
    assert!(proxy.admit(&good, Some(inside)).is_ok());
    assert!(
        proxy.admit(&good, Some(mapped)).is_ok(),
        "IPv4-mapped peers"
    );
    assert!(proxy.admit(&good, Some(outside)).is_err(), "address check");
    assert!(proxy.admit(&good, None).is_err());
    assert!(proxy.admit(&wrong, Some(inside)).is_err(), "secret check");
    assert!(proxy.admit(&HeaderMap::new(), Some(inside)).is_err());
    assert!(proxy.checks().contains("source address") && proxy.checks().contains("secret"));
    // Everything it reads is stripped afterwards.
    let names: Vec<String> = proxy.header_names().iter().map(|h| h.to_string()).collect();
    for header in [
        "x-proxy-secret",
        "x-maas-user",
        "x-maas-attributes",
        "x-maas-group",
        "x-maas-subscription",
    ] {
        assert!(names.contains(&header.to_owned()), "{header}");
    }

    // No check at all, a readable secret, or a reserved header name: refused at start.
    let unchecked = TrustedProxy::load(TrustedProxyConfig {
        allowed_peers: Vec::new(),
        ..config()
    });
    assert!(unchecked.unwrap_err().contains("at least one check"));
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let readable = TrustedProxy::load(TrustedProxyConfig {
        secret_file: Some(secret),
        ..config()
    });
    assert!(
        readable
            .unwrap_err()
            .contains("--trusted-proxy-secret-file")
    );
    let reserved = TrustedProxy::load(TrustedProxyConfig {
        attribute_headers: BTreeMap::from([(
            "x-gateway-inference-fairness-id".to_owned(),
            "teams".to_owned(),
        )]),
        ..config()
    });
    assert!(reserved.unwrap_err().contains("set by the gateway only"));
}

#[test]
fn networks_contain_their_addresses() {
    let rows = [
        ("10.0.0.0/8", "10.255.0.1", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("0.0.0.0/0", "8.8.8.8", true),
        ("fd00::/8", "fd12::1", true),
        ("fd00::/8", "fe80::1", false),
        ("10.0.0.0/8", "::1", false),
    ];
    for (network, ip, inside) in rows {
        let cidr: Cidr = network.parse().unwrap();
        assert_eq!(cidr.contains(ip.parse().unwrap()), inside, "{network} {ip}");
    }
    assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    assert!("ten".parse::<Cidr>().is_err());
}
