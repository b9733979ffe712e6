//! The tower layer in front of the gateway's gRPC routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Request, Response};
use proto::admin::Metrics;
use tonic::transport::server::TcpConnectInfo;
use tower::{Layer, Service};

use super::rate_limit::{Rate, RateLimiter};
use super::{Authenticator, Principal, TrustedProxy, authorize, bearer, entry_for};

/// The rate limits the layer applies to users: the limiter, and the limit of callers
/// whose authenticator resolved none (`None`: unlimited).
#[derive(Debug, Default)]
pub struct RateLimits {
    /// The buckets.
    pub limiter: RateLimiter,
    /// `--rate-limit-per-min` and `--rate-limit-burst`.
    pub default: Option<Rate>,
}

impl RateLimits {
    /// Whether `principal` may make a call now (sandboxes are not limited).
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED with `grpc-retry-pushback-ms`.
    pub fn admit(&self, principal: &Principal) -> Result<(), tonic::Status> {
        if principal.user().is_none() {
            return Ok(());
        }
        let Some(rate) = principal.rate.or(self.default) else {
            return Ok(());
        };
        self.limiter.take(principal.owner(), rate).map_err(|wait| {
            let ms = wait.as_millis().max(1);
            let mut status = tonic::Status::resource_exhausted(format!(
                "rate limit: {} calls a minute (burst {}); retry in {ms} ms",
                rate.per_min, rate.burst
            ));
            if let Ok(value) = ms.to_string().parse() {
                status
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", value);
            }
            status
        })
    }
}

/// Header names clients may not set: identity asserted by a proxy, or our own
/// internal markers. Removed before any decision.
const STRIPPED_EXACT: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-remote-user",
    "x-remote-group",
    "remote-user",
    "x-user",
    "x-userinfo",
    "x-jwt-payload",
    "x-principal",
    // The control plane's shared secret, and caller or tenant assertions.
    "x-internal-secret",
    "x-tenant",
    "x-tenant-id",
    "x-caller",
    "x-consumer",
];
/// Header prefixes clients may not set.
const STRIPPED_PREFIXES: &[&str] = &["x-openshell-", "x-gateway-", "x-auth-request-"];

/// Removes every identity or internal header; returns how many were removed.
pub fn strip_identity_headers(headers: &mut HeaderMap) -> usize {
    let doomed: Vec<_> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            STRIPPED_EXACT.contains(&name) || STRIPPED_PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .cloned()
        .collect();
    let mut removed = 0;
    for name in doomed {
        removed += headers.get_all(&name).iter().count();
        headers.remove(&name);
    }
    removed
}

/// Adds authentication and authorization to the wrapped routes.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
    metrics: Metrics,
    proxy: Option<Arc<TrustedProxy>>,
    trusting: bool,
    limits: Arc<RateLimits>,
}

impl AuthLayer {
    /// A layer using `auth`; refusals are counted in `metrics`.
    pub fn new(auth: Arc<Authenticator>, metrics: Metrics) -> Self {
        Self {
            auth,
            metrics,
            proxy: None,
            trusting: false,
            limits: Arc::new(RateLimits::default()),
        }
    }

    /// Applies `limits` to users' calls (one set shared by every listener).
    #[must_use]
    pub fn limiting(mut self, limits: Arc<RateLimits>) -> Self {
        self.limits = limits;
        self
    }

    /// Also strips the headers `proxy` reads (on a listener that does not trust it).
    #[must_use]
    pub fn stripping(mut self, proxy: Option<Arc<TrustedProxy>>) -> Self {
        self.proxy = proxy;
        self
    }

    /// The trusted-proxy listener's layer: callers are who `proxy`'s headers say
    /// (after the listener's check of the proxy); bearer tokens are not read.
    #[must_use]
    pub fn trusting(mut self, proxy: Arc<TrustedProxy>) -> Self {
        self.proxy = Some(proxy);
        self.trusting = true;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: Arc::clone(&self.auth),
            metrics: self.metrics.clone(),
            proxy: self.proxy.clone(),
            trusting: self.trusting,
            limits: Arc::clone(&self.limits),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
    metrics: Metrics,
    proxy: Option<Arc<TrustedProxy>>,
    trusting: bool,
    limits: Arc<RateLimits>,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let peer = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr);
        // Read before anything is stripped, on the trusted listener only.
        let asserted = match (&self.proxy, self.trusting) {
            (Some(proxy), true) => Some(
                proxy
                    .admit(request.headers(), peer)
                    .and_then(|()| proxy.principal(request.headers())),
            ),
            _ => None,
        };
        let mut removed = strip_identity_headers(request.headers_mut());
        for name in self.proxy.iter().flat_map(|proxy| proxy.header_names()) {
            removed += request.headers().get_all(&name).iter().count();
            request.headers_mut().remove(&name);
        }
        if removed > 0 {
            tracing::debug!(removed, "stripped client-sent identity headers");
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // Only methods of the gateway service are gated; health stays open.
        let Some(entry) = entry_for(request.uri().path()) else {
            return Box::pin(inner.call(request));
        };
        let token = bearer(request.headers());
        let auth = Arc::clone(&self.auth);
        let limits = Arc::clone(&self.limits);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let authenticated = match (asserted, token) {
                (Some(Ok(principal)), _) => Ok(Some(principal)),
                (Some(Err(refusal)), _) => {
                    tracing::info!(path = entry.path, ?peer, reason = %refusal.reason, "trusted proxy: refused");
                    Err(tonic::Status::unauthenticated(refusal.public))
                }
                (None, Ok(token)) => auth.authenticate(token.as_deref(), peer, now).await,
                (None, Err(status)) => Err(status),
            };
            let decision = authenticated
                .and_then(|principal| authorize(entry, principal.as_ref()).map(|()| principal))
                .and_then(|principal| match &principal {
                    Some(who) => limits.admit(who).map(|()| principal),
                    None => Ok(principal),
                });
            match decision {
                Ok(Some(principal)) => {
                    request.extensions_mut().insert(principal);
                }
                Ok(None) => {}
                Err(status) => {
                    tracing::debug!(path = entry.path, code = ?status.code(), "request refused");
                    let method = entry.path.rsplit('/').next().unwrap_or(entry.path);
                    metrics.record_rpc(method, status.code());
                    return Ok(status.into_http());
                }
            }
            inner.call(request).await
        })
    }
}
