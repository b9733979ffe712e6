//! The gateway server: the store, both driver clients, the sync task, the auth layer
//! and the public API on TCP, health and the admin endpoint beside it.
//!
//! The gateway starts whether or not its drivers are up: health (gRPC and `/readyz`)
//! is NOT_SERVING until every configured driver answers, and turns back when one goes
//! away; records are served from the store meanwhile.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use proto::RetryPolicy;
use proto::admin::{AdminServer, Metrics};
use proto::pb::gateway::v1::gateway_server::GatewayServer;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::api::{Core, GatewayApi};
use crate::auth::{AuthLayer, Authenticator, LocalToken, SigningKey, TrustedProxy};
use crate::authz::PolicyFile;
use crate::drivers::{ComputeClient, CredentialsClient, Statuses, follow, monitor};
use crate::store::{Kind, Record, Store, StoreError};
use crate::{Error, GatewayConfig};

/// How often health is recomputed from the drivers' state.
const READINESS_EVERY: Duration = Duration::from_millis(250);
/// How often an optional driver is probed.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Store key of the marker of the owner-key migration.
const OWNER_KEYS_MARKER: &str = "owner-keys-namespaced";
/// Store key of the sandbox-token signing key.
const SIGNING_KEY: &str = "sandbox-token-key";

/// Binds the gateway's TCP address.
///
/// # Errors
/// [`Error::Listen`] naming the address.
pub async fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// Serves the gateway on `listener` until `shutdown` completes.
///
/// # Errors
/// [`Error::Store`], [`Error::Setup`],
/// [`Error::Serve`].
pub async fn run_gateway<F>(
    args: &GatewayConfig,
    listener: TcpListener,
    shutdown: F,
) -> Result<(), Error>
where
    F: Future<Output = ()>,
{
    let compute_socket = args.compute_driver_socket.clone();
    let store = Store::open(&args.db_url)
        .await?
        .with_cache_ttl(args.store_cache_ttl);
    tracing::info!(backend = store.backend(), "store open");
    migrate_owner_keys(args, &store).await?;
    let signer = signing_key(args, &store).await?;
    let local = match &args.local_token_file {
        Some(path) => {
            let token = LocalToken::generate_into(path)
                .map_err(|e| Error::Setup(format!("--local-token-file {}: {e}", path.display())))?;
            tracing::info!(file = %path.display(), "local token written (accepted from loopback only)");
            Some(token)
        }
        None => None,
    };
    let policy = RetryPolicy::default().with_deadline(args.driver_call_timeout);
    let compute = ComputeClient::new(&compute_socket, policy);
    let credentials = args
        .credentials_driver_socket
        .as_deref()
        .map(|socket| CredentialsClient::new(socket, policy));
    if credentials.is_none() {
        tracing::warn!(
            "no credentials driver configured: resolving provider credentials will fail"
        );
    }
    let local_addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: args.listen,
        source,
    })?;
    let tls = args
        .tls
        .as_ref()
        .map(crate::tls::Tls::load)
        .transpose()
        .map_err(Error::Setup)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let credential_policy = match &args.credential_policy {
        Some(path) => PolicyFile::load(path).map_err(Error::Setup)?,
        None => PolicyFile::builtin(),
    };
    let access_rules = match &args.access_rules {
        Some(path) => crate::authz::AccessRules::load(path)
            .map_err(|e| Error::Setup(format!("--access-rules {e}")))?,
        None => crate::authz::AccessRules::default(),
    };
    let statuses = Arc::new(Statuses::default());
    let metrics = Metrics::new("gateway");
    let (meter, meter_writer) = crate::usage::Meter::start(store.clone());
    let control_plane = match &args.control_plane {
        Some(config) => {
            let control_plane =
                crate::control_plane::ControlPlane::new(config).map_err(Error::Setup)?;
            tracing::info!(address = ?config.address, tenant_keys = ?config.tenant_keys, "control plane configured: it resolves API keys the gateway does not know");
            Some((control_plane, config.tenant_keys.clone()))
        }
        None => None,
    };
    let tenant_keys = control_plane
        .as_ref()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(control_plane, keys)| {
            Arc::new(crate::control_plane::TenantKeys::new(
                control_plane.clone(),
                keys.clone(),
            ))
        });
    let core = Arc::new(Core {
        metrics: metrics.clone(),
        store,
        compute: compute.clone(),
        credentials: credentials.clone(),
        credential_policy,
        access_rules,
        limits: crate::api::limits::Limits {
            max_sandboxes_per_owner: args.max_sandboxes_per_owner,
            max_providers_per_owner: args.max_providers_per_owner,
            ..Default::default()
        },
        statuses: Arc::clone(&statuses),
        signer: signer.clone(),
        sandbox_token_ttl: args.sandbox_token_ttl,
        fairness: args.fairness.clone(),
        sandbox_endpoint: args
            .sandbox_endpoint
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local_addr}")),
        closing: tokio_util::sync::CancellationToken::new(),
        meter: meter.clone(),
        tenant_keys,
    });
    let oidc = match args.oidc.clone() {
        Some(config) => Some(Arc::new(
            crate::auth::Oidc::discover(config)
                .await
                .map_err(Error::Setup)?,
        )),
        None => None,
    };
    if oidc.is_none() && args.local_token_file.is_none() {
        tracing::warn!(
            "neither --oidc-issuer nor --local-token-file is set: no user can authenticate"
        );
    }
    let discovery = crate::discovery::Discovery::new(args.oidc.as_ref());
    let api_keys = Some(Arc::new(crate::auth::api_key::ApiKeys::new(
        &core.store,
        control_plane.map(|(control_plane, _)| control_plane),
    )));
    let authenticator = Arc::new(Authenticator {
        oidc,
        local,
        sandbox_key: signer,
        api_keys,
    });

    let mut background = vec![tokio::spawn(follow(
        compute.clone(),
        statuses,
        args.reconcile_interval,
    ))];
    if let Some(credentials) = &credentials {
        background.push(tokio::spawn(monitor(
            credentials.link().clone(),
            PROBE_EVERY,
        )));
    }
    // A create in flight takes at most three driver calls of --driver-call-timeout each:
    // a pending create older than four is abandoned (by a crash) on any replica.
    background.push(tokio::spawn(crate::api::sandbox_saga::repair_loop(
        Arc::clone(&core),
        args.reconcile_interval,
        args.driver_call_timeout.saturating_mul(4),
    )));
    let (health, health_service) = proto::Health::new(["openshell.gateway.v1.Gateway"]).await;
    background.push(tokio::spawn(track_readiness(
        health.clone(),
        compute,
        credentials,
    )));
    let (internal_routes, internal_socket) = internal_api(args, &core)?;
    let admin = AdminServer::start_with(
        args.metrics_addr,
        metrics.clone(),
        health.clone(),
        internal_routes,
    )
    .await
    .map_err(|e| Error::Setup(format!("--metrics-addr: {e}")))?;

    tracing::info!(listen = %local_addr, tls = tls.is_some(), "gateway listening; NOT_SERVING until the drivers answer");
    let closing = core.closing.clone();
    let max_request = core.limits.max_request_bytes;
    let proxy = trusted_proxy(args).await?;
    let api = GatewayApi::new(core);
    // HTTP/1.1 too: the discovery document is read with plain HTTP clients (gRPC
    // needs HTTP/2 and is unaffected).
    let router = |auth: AuthLayer| {
        Server::builder()
            .accept_http1(true)
            .layer(crate::discovery::DiscoveryLayer::new(&discovery))
            .layer(auth)
            .add_service(health_service.clone())
            .add_service(GatewayServer::new(api.clone()).max_decoding_message_size(max_request))
    };
    let limits = Arc::new(crate::auth::RateLimits {
        default: args.rate_limit,
        ..Default::default()
    });
    let auth = AuthLayer::new(authenticator, metrics).limiting(limits);
    let main = router(
        auth.clone()
            .stripping(proxy.as_ref().map(|(p, _, _)| Arc::clone(p))),
    );
    let mut server = serve(main, listener, tls, &closing, &mut background);
    if let Some((proxy, proxy_listener, proxy_tls)) = proxy {
        let proxy_server = serve(
            router(auth.trusting(proxy)),
            proxy_listener,
            proxy_tls,
            &closing,
            &mut background,
        );
        server = Box::pin(async move {
            let (main, proxy) = tokio::join!(server, proxy_server);
            main.and(proxy)
        });
    }
    tokio::pin!(server);
    let served = tokio::select! {
        served = &mut server => served,
        () = shutdown => {
            tracing::info!(grace = ?args.shutdown_grace, "shutting down: ending watches, draining calls");
            closing.cancel();
            health.set_not_serving().await;
            match tokio::time::timeout(args.shutdown_grace, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::warn!("grace period over; closing the remaining connections");
                    Ok(())
                }
            }
        }
    };
    for task in background {
        task.abort();
    }
    health.set_not_serving().await;
    admin.stop().await;
    if let Some(socket) = internal_socket {
        socket.stop().await;
    }
    // Calls already answered are metered before the gateway exits.
    if !matches!(
        tokio::time::timeout(args.shutdown_grace, meter.flush()).await,
        Ok(Ok(()))
    ) {
        tracing::warn!("usage of the last calls could not be written before exit");
    }
    meter_writer.abort();
    served?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// The internal API's routes (none without a secret) and its Unix socket, if any.
///
/// # Errors
/// [`Error::Setup`] naming the flag.
fn internal_api(
    args: &GatewayConfig,
    core: &Core,
) -> Result<(axum::Router, Option<proto::uds::HttpSocket>), Error> {
    let Some(config) = &args.internal_api else {
        return Ok((axum::Router::new(), None));
    };
    let secret = crate::auth::read_shared_secret(config.secret_flag, &config.secret_file)
        .map_err(Error::Setup)?;
    let routes = crate::usage::internal_api::routes(&core.store, &core.meter, Some(&secret));
    let socket = match config.socket_config() {
        Some(socket) => {
            let served = proto::uds::HttpSocket::serve(&socket, routes.clone())
                .map_err(|e| Error::Setup(format!("--internal-api-socket: {e}")))?;
            tracing::info!(socket = %socket.path.display(), "internal API on a Unix socket too");
            Some(served)
        }
        None => None,
    };
    Ok((routes, socket))
}

/// A served listener.
type Serving = Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;

/// Serves `router` on `listener` (over `tls` when set) until `closing` is cancelled.
fn serve(
    router: tonic::transport::server::Router<
        tower::layer::util::Stack<
            AuthLayer,
            tower::layer::util::Stack<
                crate::discovery::DiscoveryLayer,
                tower::layer::util::Identity,
            >,
        >,
    >,
    listener: TcpListener,
    tls: Option<crate::tls::Tls>,
    closing: &tokio_util::sync::CancellationToken,
    background: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Serving {
    let stopped = closing.clone().cancelled_owned();
    match tls {
        Some(tls) => {
            background.push(tls.follow_files());
            Box::pin(router.serve_with_incoming_shutdown(tls.incoming(listener), stopped))
        }
        None => Box::pin(router.serve_with_incoming_shutdown(
            TcpListenerStream::new(listener).map(|accepted| {
                accepted.inspect(|stream| {
                    // Replies span several segments: without this, Nagle's algorithm
                    // waits for the client's delayed ACK, 40 ms a reply.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "TCP_NODELAY not set");
                    }
                })
            }),
            stopped,
        )),
    }
}

/// The trusted-proxy listener, when configured: the proxy's configuration, its bound
/// listener and its TLS (the API's certificate, requiring the proxy's client
/// certificate, with `--trusted-proxy-client-ca`).
async fn trusted_proxy(
    args: &GatewayConfig,
) -> Result<Option<(Arc<TrustedProxy>, TcpListener, Option<crate::tls::Tls>)>, Error> {
    let Some(config) = &args.trusted_proxy else {
        return Ok(None);
    };
    let proxy = TrustedProxy::load(config.clone()).map_err(Error::Setup)?;
    let tls = match (&config.client_ca, &args.tls) {
        (Some(ca), Some(tls)) => Some(
            crate::tls::Tls::load(&crate::tls::TlsConfig {
                client_ca: Some(ca.clone()),
                client_auth: crate::tls::ClientAuth::Required,
                ..tls.clone()
            })
            .map_err(|e| Error::Setup(format!("--trusted-proxy-client-ca: {e}")))?,
        ),
        (Some(_), None) => {
            return Err(Error::Setup(
                "--trusted-proxy-client-ca needs TLS: set --tls-cert and --tls-key too".into(),
            ));
        }
        (None, _) => None,
    };
    let listener = listen(config.listen).await?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(listen = %addr, checks = %proxy.checks(), "trusted-proxy listener: identity from the proxy's headers");
    Ok(Some((Arc::new(proxy), listener, tls)))
}

/// SERVING while every configured driver answers.
async fn track_readiness(
    health: proto::Health,
    compute: ComputeClient,
    credentials: Option<CredentialsClient>,
) {
    let mut serving = None;
    loop {
        let ready = compute.link().is_available()
            && credentials.as_ref().is_none_or(|c| c.link().is_available());
        if serving != Some(ready) {
            if ready {
                health.set_serving().await;
                tracing::info!("drivers answer; health SERVING");
            } else {
                health.set_not_serving().await;
                if serving.is_some() {
                    tracing::warn!("a driver stopped answering; health NOT_SERVING");
                }
            }
            serving = Some(ready);
        }
        tokio::time::sleep(READINESS_EVERY).await;
    }
}

/// Owner keys stamped before they were namespaced by authenticator were OIDC subjects
/// (or `local`): once OIDC is configured, they move into its issuer's namespace, in one
/// transaction, once per store.
async fn migrate_owner_keys(args: &GatewayConfig, store: &Store) -> Result<(), Error> {
    let Some(config) = &args.oidc else {
        return Ok(());
    };
    let namespace = crate::auth::owner::oidc_namespace(&config.issuer);
    let changed = store
        .rewrite_once(OWNER_KEYS_MARKER, &|record| {
            crate::api::owner_migration::rewrite(record, &namespace)
        })
        .await?;
    if changed > 0 {
        tracing::info!(changed, %namespace, "owner keys moved into the OIDC issuer's namespace");
    }
    Ok(())
}

/// The sandbox-token key: from `--sandbox-token-key-file`, else the one kept in the
/// store (created by the first replica to start).
async fn signing_key(args: &GatewayConfig, store: &Store) -> Result<SigningKey, Error> {
    if let Some(path) = &args.sandbox_token_key_file {
        return SigningKey::read_file(path)
            .map_err(|e| Error::Setup(format!("--sandbox-token-key-file: {e}")));
    }
    // A gateway setting: the platform's partition.
    let store = &store.in_tenant(crate::store::PLATFORM_TENANT);
    if let Some(record) = store.get(Kind::Setting, SIGNING_KEY).await? {
        return SigningKey::from_bytes(record.body)
            .ok_or_else(|| Error::Setup("the stored sandbox-token key is too short".into()));
    }
    let key = SigningKey::generate().map_err(|e| Error::Setup(format!("random source: {e}")))?;
    let mut record = Record::new(Kind::Setting, SIGNING_KEY, SIGNING_KEY, "");
    record.body = key.bytes().to_vec();
    match store.create(&record).await {
        Ok(_) => Ok(key),
        // Another replica created it first: use theirs.
        Err(StoreError::AlreadyExists { .. }) => match store.get(Kind::Setting, SIGNING_KEY).await?
        {
            Some(record) => SigningKey::from_bytes(record.body)
                .ok_or_else(|| Error::Setup("the stored sandbox-token key is too short".into())),
            None => Err(Error::Setup(
                "the sandbox-token key vanished while starting".into(),
            )),
        },
        Err(other) => Err(other.into()),
    }
}
