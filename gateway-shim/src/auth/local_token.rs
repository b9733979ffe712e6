//! The local token: a random bearer token generated at start-up, written to a 0600
//! file, accepted only from loopback peers. It makes the caller the local admin user.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::Secret;
use sha2::{Digest, Sha256};
use tonic::Status;

use super::{Identity, Principal, User};

/// Subject of the local user.
pub const LOCAL_SUBJECT: &str = "local";

/// The local token (its SHA-256, compared in constant time).
#[derive(Clone, Debug)]
pub struct LocalToken {
    digest: [u8; 32],
}

impl LocalToken {
    /// Generates a token and writes it to `path` (mode 0600, replacing any old file) in
    /// a directory only we control (created 0700 if missing).
    ///
    /// # Errors
    /// I/O errors, or the OS random source failing.
    pub fn generate_into(path: &Path) -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        let token = Secret::new(format!("osl1.{}", URL_SAFE_NO_PAD.encode(bytes)));
        if let Some(parent) = path.parent() {
            proto::private::prepare_dir(parent).map_err(std::io::Error::other)?;
        }
        let _ = std::fs::remove_file(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(token.expose().as_bytes())?;
        file.write_all(b"\n")?;
        Ok(Self::from_secret(&token))
    }

    /// A local token with a known value (tests).
    pub fn from_secret(token: &Secret) -> Self {
        Self {
            digest: Sha256::digest(token.expose().as_bytes()).into(),
        }
    }

    /// The local principal when `token` is the local token.
    ///
    /// # Errors
    /// UNAUTHENTICATED when it is presented from a non-loopback peer.
    pub(super) fn authenticate(
        &self,
        token: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Option<Principal>, Status> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let differing = presented
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differing != 0 {
            return Ok(None);
        }
        if !peer.is_some_and(|addr| addr.ip().is_loopback()) {
            return Err(Status::unauthenticated(
                "the local token is accepted only from loopback connections",
            ));
        }
        Ok(Some(Principal::new(Identity::User(User {
            subject: LOCAL_SUBJECT.to_owned(),
            owner: super::owner::LOCAL_OWNER.to_owned(),
            admin: true,
            platform_admin: true,
            user_role: true,
            scopes: None,
            bearer: None,
        }))))
    }
}
