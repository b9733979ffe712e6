//! The client's TLS: the system's roots plus `--ca-file`, and a client certificate
//! for gateways that ask for one.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::ClientError;
use super::cli::ClientArgs;

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::Tls(format!("{flag} {}: {e}", path.display())))
}

/// The TLS settings `args` ask for, trusting `ca_file` besides the system's roots.
///
/// # Errors
/// [`ClientError::Tls`] naming the flag whose file cannot be read.
pub(super) fn client_config(
    ca_file: Option<&Path>,
    args: &ClientArgs,
) -> Result<ClientTlsConfig, ClientError> {
    let mut config = ClientTlsConfig::new().with_native_roots();
    if let Some(ca) = ca_file {
        config = config.ca_certificate(Certificate::from_pem(read("--ca-file", ca)?));
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        proto::private::check_secret_file(key)
            .map_err(|e| ClientError::Tls(format!("--client-key: {e}")))?;
        config = config.identity(Identity::from_pem(
            read("--client-cert", cert)?,
            read("--client-key", key)?,
        ));
    }
    Ok(config)
}
