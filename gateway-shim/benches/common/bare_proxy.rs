//! The floor under any gateway of this shape: a gRPC server on TCP whose only method,
//! `ResolveProviderCredential`, passes the provider's name to the credentials driver
//! over its Unix socket and copies the token back. No authentication, no store, no
//! metering, no policy: only the two HTTP/2 stacks the sidecar contract puts around
//! the driver's call (a server for the sandbox, a client to the driver's socket), with
//! the same libraries, transport and settings the gateway uses. The gateway's resolve
//! beside it is what the gateway's own work costs; it beside the driver is what the
//! hop itself costs.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use proto::pb::credentials::v1::ResolveCredentialRequest;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::pb::gateway::v1 as pb;
use proto::uds::DirectChannel;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::{Request, Response, Status};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Serves the bare proxy on a loopback port in the background; returns its address.
pub async fn start(driver_socket: &std::path::Path) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = BareProxy {
        driver: CredentialsDriverClient::new(DirectChannel::lazy(driver_socket)),
    };
    let incoming = TcpListenerStream::new(listener)
        .map(|accepted| accepted.inspect(|stream| stream.set_nodelay(true).unwrap()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(proxy)
            .serve_with_incoming(incoming),
    );
    addr
}

/// Answers every request on the gateway's service name as `ResolveProviderCredential`.
#[derive(Clone)]
struct BareProxy {
    driver: CredentialsDriverClient<DirectChannel>,
}

impl tonic::server::NamedService for BareProxy {
    const NAME: &'static str = "openshell.gateway.v1.Gateway";
}

impl tower::Service<http::Request<Body>> for BareProxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Boxed<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let resolve = Resolve(self.driver.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(resolve, request).await)
        })
    }
}

struct Resolve(CredentialsDriverClient<DirectChannel>);

impl tonic::server::UnaryService<pb::ResolveProviderCredentialRequest> for Resolve {
    type Response = pb::ResolveProviderCredentialResponse;
    type Future = Boxed<Result<Response<Self::Response>, Status>>;

    fn call(&mut self, request: Request<pb::ResolveProviderCredentialRequest>) -> Self::Future {
        let mut driver = self.0.clone();
        Box::pin(async move {
            let resolved = driver
                .resolve_credential(ResolveCredentialRequest {
                    name: request.into_inner().provider,
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok(Response::new(pb::ResolveProviderCredentialResponse {
                token: resolved.token,
                token_type: resolved.token_type,
                expires_at_ms: resolved.expires_at_ms,
                ..Default::default()
            }))
        })
    }
}
