//! The CLI's side of OIDC, end to end with real processes: the OIDC test peer, the
//! compute driver, `gateway-shim serve` trusting the peer, and the `gateway-shim` CLI
//! run as a user runs it (its own config directory, no browser: a scripted browser
//! fills in the peer's sign-in form, as a person would).
//!
//! `gateway add` reads the discovery document; `login` by browser (PKCE), device code
//! and client credentials; the stored login used by the next call and renewed after
//! expiry without a prompt; `logout` revokes; refusals are clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use conformance::browser::Browser;
use proto::testing::SpawnedDriver;
use serde_json::{Value, json};
use support::oidc::OidcPeer;
use support::serve::{GATEWAY, Serve};

const SCOPES: &str =
    "sandbox:read sandbox:write provider:read provider:write inference:read inference:write";

/// The peer, a compute driver and a gateway trusting the peer.
struct World {
    peer: OidcPeer,
    api: SocketAddr,
    dir: tempfile::TempDir,
    _compute: SpawnedDriver,
    _gateway: Serve,
}

impl World {
    async fn start(peer_overrides: Value) -> Self {
        let peer = OidcPeer::start_with(peer_overrides).await;
        let dir = proto::testing::short_dir();
        let cli_scopes = format!("offline_access {SCOPES}");
        let (compute, gateway, api) = support::serve::with_compute(
            dir.path(),
            &[
                "--oidc-issuer",
                &peer.issuer,
                "--oidc-audience",
                "openshell-gateway",
                "--oidc-scopes-claim",
                "scope",
                "--oidc-cli-client-id",
                "gateway-cli",
                "--oidc-cli-scopes",
                &cli_scopes,
            ],
        )
        .await;
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Self {
            peer,
            api,
            dir,
            _compute: compute,
            _gateway: gateway,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The user's config directory (`user` keeps several users apart).
    fn config(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("cfg-{user}"))
    }

    /// `gateway-shim ARGS` as `user` would run it: own config dir, nothing inherited
    /// that names a gateway or token, no `dev` token to fall back on.
    fn cli(&self, user: &str, args: &[&str]) -> Command {
        let mut command = Command::new(GATEWAY);
        command
            .args(args)
            .env("OPENSHELL_CONFIG_DIR", self.config(user))
            .env("TMPDIR", self.dir.path().join("tmp"))
            .stdin(Stdio::null());
        for name in [
            "OPENSHELL_GATEWAY",
            "OPENSHELL_TOKEN",
            "OPENSHELL_TOKEN_FILE",
            "OPENSHELL_SANDBOX_TOKEN_FILE",
            "OPENSHELL_GATEWAY_ENDPOINT",
            "OPENSHELL_CLIENT_SECRET",
            "BROWSER",
        ] {
            command.env_remove(name);
        }
        command
    }

    fn run(&self, user: &str, args: &[&str]) -> Output {
        self.cli(user, args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, user: &str, args: &[&str]) -> String {
        let output = self.run(user, args);
        assert!(
            output.status.success(),
            "gateway-shim {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, user: &str, args: &[&str]) -> String {
        let output = self.run(user, args);
        assert!(
            !output.status.success(),
            "gateway-shim {args:?} succeeded:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// `gateway add URL --name test` for `user`.
    fn add(&self, user: &str) {
        self.ok(user, &["gateway", "add", &self.url(), "--name", "test"]);
    }

    fn stored(&self, user: &str) -> Value {
        let path = self.config(user).join("tokens/test.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn sandbox_names(&self, user: &str) -> Vec<String> {
        let json: Value =
            serde_json::from_str(&self.ok(user, &["sandbox", "list", "-o", "json"])).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Runs `login ARGS` as `user`; once it prints a sign-in address, `browse` goes
/// there. Returns whether the login succeeded and what it printed.
async fn interactive_login<F, Fut>(
    world: &World,
    user: &str,
    args: &[&str],
    browse: F,
) -> (bool, String)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut all = vec!["login"];
    all.extend_from_slice(args);
    let mut child = world
        .cli(user, &all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let mut address_tx = Some(address_tx);
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            // The last indented address printed is the one to open (the device flow
            // prints the one carrying the code).
            if line.starts_with("  http")
                && (line.contains("user_code=")
                    || line.contains("/auth?")
                    || line.contains("/auth/?"))
                && let Some(tx) = address_tx.take()
            {
                let _ = tx.send(line.trim().to_owned());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    if let Ok(address) = tokio::time::timeout(Duration::from_secs(30), address_rx).await {
        browse(address.unwrap()).await;
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    (status.success(), reader.await.unwrap())
}

fn write_secret(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Peer settings: the gateway's audience with short-lived access tokens.
fn short_lived_tokens(ttl: u64) -> Value {
    json!({
        "audiences": {
            "credentials-driver": { "scope": "credentials:resolve" },
            "openshell-gateway": { "scope": SCOPES, "ttl": ttl }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discovery_document_is_public_and_gateway_add_remembers_it() {
    let world = World::start(json!({})).await;
    let document: Value = reqwest::get(format!("{}/auth/oidc-config", world.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["auth_enabled"], true);
    assert_eq!(document["oidc"]["issuer"], world.peer.issuer.as_str());
    assert_eq!(document["oidc"]["client_id"], "gateway-cli");
    assert_eq!(document["oidc"]["audience"], "openshell-gateway");
    let scopes: Vec<&str> = document["oidc"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(scopes[..2], ["openid", "offline_access"]);
    assert!(!document.to_string().to_lowercase().contains("secret"));

    let no_scheme = world.fails("u", &["gateway", "add", &world.api.to_string()]);
    assert!(no_scheme.contains("has no scheme"), "{no_scheme}");
    world.ok("u", &["gateway", "add", &world.url(), "--name", "test"]);
    world.ok("u", &["gateway", "add", &world.url()]);
    let listed: Value =
        serde_json::from_str(&world.ok("u", &["gateway", "list", "-o", "json"])).unwrap();
    let default_name = format!("127.0.0.1-{}", world.api.port());
    let names: Vec<(&str, bool, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap(),
                g["in_use"].as_bool().unwrap(),
                g["logged_in"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [(default_name.as_str(), false, false), ("test", true, false)]
    );
    world.ok("u", &["gateway", "use", &default_name]);
    let not_logged_in = world.fails("u", &["sandbox", "list"]);
    assert!(
        not_logged_in.contains(&format!("gateway-shim login {default_name}")),
        "{not_logged_in}"
    );
    let unknown = world.fails("u", &["gateway", "use", "nope"]);
    assert!(unknown.contains("gateway list"), "{unknown}");
    world.ok("u", &["gateway", "remove", &default_name]);
    world.ok("u", &["gateway", "use", "test"]);
    let listed: Value =
        serde_json::from_str(&world.ok("u", &["gateway", "list", "-o", "json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_login_is_used_by_the_next_call_and_renewed_after_expiry_without_a_prompt() {
    let world = World::start(short_lived_tokens(3)).await;
    world.add("alice");
    let (ok, printed) =
        interactive_login(&world, "alice", &["--no-browser"], |address| async move {
            assert!(address.contains("code_challenge_method=S256"), "{address}");
            let page = Browser::new()
                .sign_in(&address, "alice", "alice-password")
                .await;
            assert!(page.body.contains("Signed in"), "{}", page.body);
        })
        .await;
    assert!(ok, "{printed}");
    assert!(printed.contains("logged in to test"), "{printed}");
    let file = world.config("alice").join("tokens/test.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    world.ok(
        "alice",
        &["sandbox", "create", "alice-box", "--", "/bin/sleep", "60"],
    );
    // Wait until the access token has expired (its `exp` is past).
    let before = world.stored("alice");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let old = before["access_token"].as_str().unwrap();
    let claims = conformance::oidc_peer::claims(old);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(claims["exp"].as_u64().unwrap() < now, "{claims}");
    // Two calls at once: one renews, the other waits and uses what it got (the peer
    // rotates refresh tokens and would revoke the login if one were spent twice).
    let renewals = world.peer.grants("refresh_token").await;
    let racing: Vec<_> = (0..2)
        .map(|_| {
            world
                .cli("alice", &["sandbox", "list", "-o", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for call in racing {
        let output = call.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(world.peer.grants("refresh_token").await, renewals + 1);
    assert_eq!(world.sandbox_names("alice"), ["alice-box"]);
    let after = world.stored("alice");
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(
        after["refresh_token"], before["refresh_token"],
        "the refresh token was rotated and the new one kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_login_approved_in_a_browser_signs_in_that_user() {
    let world = World::start(json!({})).await;
    world.add("bob");
    let (ok, printed) = interactive_login(&world, "bob", &["--device"], |address| async move {
        let page = Browser::new()
            .sign_in(&address, "bob", "bob-password")
            .await;
        assert!(page.body.contains("device-success"), "{}", page.body);
    })
    .await;
    assert!(ok, "{printed}");
    assert!(printed.contains("enter the code"), "{printed}");
    world.ok(
        "bob",
        &["sandbox", "create", "bob-box", "--", "/bin/sleep", "60"],
    );
    assert_eq!(world.sandbox_names("bob"), ["bob-box"]);

    // Alice, logged in by the browser, sees none of bob's.
    world.add("alice");
    let (ok, printed) =
        interactive_login(&world, "alice", &["--no-browser"], |address| async move {
            Browser::new()
                .sign_in(&address, "alice", "alice-password")
                .await;
        })
        .await;
    assert!(ok, "{printed}");
    assert!(world.sandbox_names("alice").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_send_the_secret_in_the_body_and_a_wrong_one_is_a_clear_error() {
    let world = World::start(json!({})).await;
    world.add("ci");
    // The peer registers ci-bot for client_secret_post only: Basic would be refused.
    let output = world
        .cli(
            "ci",
            &["login", "--client-credentials", "--client-id", "ci-bot"],
        )
        .env("OPENSHELL_CLIENT_SECRET", "ci-secret")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(world.sandbox_names("ci").is_empty());
    // The secret is not stored, only where it came from.
    let stored = world.stored("ci");
    assert!(!stored.to_string().contains("ci-secret"), "{stored}");

    let wrong = write_secret(world.dir.path(), "wrong", "not-the-secret\n");
    let error = world.fails(
        "ci",
        &[
            "login",
            "--client-credentials",
            "--client-id",
            "ci-bot",
            "--client-secret-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert!(
        error.contains("invalid_client") && error.contains("--client-id"),
        "{error}"
    );
    let missing = world.fails(
        "ci",
        &["login", "--client-credentials", "--client-id", "ci-bot"],
    );
    assert!(missing.contains("--client-secret-file"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_sign_in_and_an_expired_device_code_are_clear_errors() {
    let world = World::start(json!({ "deviceCodeTTL": 2 })).await;
    world.add("u");
    let (ok, denied) = interactive_login(&world, "u", &["--no-browser"], |address| async move {
        Browser::new().deny(&address).await;
    })
    .await;
    assert!(!ok);
    assert!(
        denied.contains("access_denied") && denied.contains("login` again"),
        "{denied}"
    );
    let (ok, expired) = interactive_login(&world, "u", &["--device"], |_address| async {}).await;
    assert!(!ok);
    assert!(
        expired.contains("expired_token") && expired.contains("login --device"),
        "{expired}"
    );
    assert!(!world.config("u").join("tokens/test.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_login_and_deletes_it() {
    let world = World::start(json!({})).await;
    world.add("alice");
    let (ok, printed) =
        interactive_login(&world, "alice", &["--no-browser"], |address| async move {
            Browser::new()
                .sign_in(&address, "alice", "alice-password")
                .await;
        })
        .await;
    assert!(ok, "{printed}");
    let refresh = world.stored("alice")["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let said = world.run("alice", &["logout"]);
    assert!(said.status.success());
    let said = String::from_utf8(said.stderr).unwrap();
    assert!(said.contains("revoked"), "{said}");
    assert!(!world.config("alice").join("tokens/test.json").exists());
    // The identity provider no longer honours the refresh token.
    let answer: Value = reqwest::Client::new()
        .post(world.peer.token_endpoint())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", "gateway-cli"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"], "invalid_grant", "{answer}");
    let after = world.fails("alice", &["sandbox", "list"]);
    assert!(after.contains("not logged in to gateway test"), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_login_is_never_sent_to_another_gateway() {
    let world = World::start(json!({})).await;
    world.add("alice");
    let output = world
        .cli(
            "alice",
            &["login", "--client-credentials", "--client-id", "ci-bot"],
        )
        .env("OPENSHELL_CLIENT_SECRET", "ci-secret")
        .output()
        .unwrap();
    assert!(output.status.success());
    // Another address than the remembered one: no token of ours goes there.
    let elsewhere = world.fails(
        "alice",
        &["sandbox", "list", "--gateway", "http://127.0.0.1:9"],
    );
    assert!(elsewhere.contains("no token"), "{elsewhere}");
    // By name, it goes to the remembered address.
    world.ok("alice", &["sandbox", "list", "--gateway", "test"]);
}
