//! TLS on the gateway's API listener (rustls with ring): a certificate and key from
//! files, re-read when they change (new handshakes get the new pair; a pair that does
//! not load is logged and the old one kept), and optional client certificates (mTLS)
//! verified against a CA, optional or required.
//!
//! Handshakes run beside the accept loop, each bounded, so a slow or silent client
//! holds up nobody else. A client certificate gates the connection only: callers still
//! authenticate each call with a bearer token.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How often the certificate and key files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// Bound on one handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether clients must present a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// A certificate, when presented, must chain to the CA; none is accepted too.
    Optional,
    /// Every client presents a certificate that chains to the CA.
    Required,
}

/// TLS settings of the API listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (not readable by others).
    pub key: PathBuf,
    /// PEM CA certificates client certificates must chain to; `None`: no mTLS.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required (with `client_ca`).
    pub client_auth: ClientAuth,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the certificate chain and key and checks they belong together.
fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no PEM certificate in it",
            cert.display()
        ));
    }
    proto::private::check_secret_file(key).map_err(|e| format!("--tls-key: {e}"))?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| {
        format!(
            "--tls-cert {} and --tls-key {}: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// Size and modification time of both files: a change of either means re-read.
fn stamp(cert: &Path, key: &Path) -> Option<[(u64, SystemTime); 2]> {
    let one = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    };
    Some([one(cert)?, one(key)?])
}

/// The pair in use, swapped when the files change.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A short read lock, never held across an await.
        self.current.read().ok().map(|pair| Arc::clone(&pair))
    }
}

/// The listener's TLS: an acceptor whose certificate follows its files.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    reloading: Arc<Reloading>,
    config: TlsConfig,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("config", &self.config).finish()
    }
}

impl Tls {
    /// Loads the pair and the client CA.
    ///
    /// # Errors
    /// A message naming the flag whose file is wrong.
    pub fn load(config: &TlsConfig) -> Result<Self, String> {
        let pair = load_pair(&config.cert, &config.key)?;
        let reloading = Arc::new(Reloading {
            current: RwLock::new(pair),
        });
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &config.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
                    .and_then(Iterator::collect)
                    .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
                let (added, _ignored) = roots.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(format!(
                        "--tls-client-ca {}: no usable CA certificate in it",
                        ca.display()
                    ));
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = match config.client_auth {
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                    ClientAuth::Required => verifier,
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut server = builder.with_cert_resolver(Arc::clone(&reloading) as _);
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            reloading,
            config: config.clone(),
        })
    }

    /// Re-reads the pair whenever its files change, until the returned task is
    /// aborted.
    pub fn follow_files(&self) -> tokio::task::JoinHandle<()> {
        let reloading = Arc::clone(&self.reloading);
        let (cert, key) = (self.config.cert.clone(), self.config.key.clone());
        tokio::spawn(async move {
            let mut loaded = stamp(&cert, &key);
            let mut failed = None;
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let now = stamp(&cert, &key);
                if now.is_none() || now == loaded {
                    continue;
                }
                match load_pair(&cert, &key) {
                    Ok(pair) => {
                        if let Ok(mut current) = reloading.current.write() {
                            *current = pair;
                        }
                        loaded = now;
                        failed = None;
                        tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                    }
                    // Half-written files look like this too: say it once per
                    // change and keep serving the old pair.
                    Err(error) if failed != now => {
                        tracing::warn!(%error, "TLS certificate not reloaded; the previous one is still served");
                        failed = now;
                    }
                    Err(_) => {}
                }
            }
        })
    }

    /// The TLS connections accepted on `listener`: handshakes run concurrently, each
    /// bounded; failed ones are logged at debug and dropped. Accepting stops when the
    /// stream is dropped.
    pub fn incoming(&self, listener: TcpListener) -> ReceiverStream<io::Result<TlsConn>> {
        let (sender, receiver) = mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = sender.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors and the like: pause rather than spin.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "TCP_NODELAY not set");
                }
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send(Ok(TlsConn(stream))).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake refused");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(receiver)
    }
}

/// An accepted TLS connection; the peer's address is seen as for plain TCP.
#[derive(Debug)]
pub struct TlsConn(TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
