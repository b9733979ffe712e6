//! Per-sandbox tokens: minted by the gateway at create, handed to the driver in
//! `sandbox_token`, presented by the sandbox on sandbox-facing calls.
//!
//! Format: `osb1.<payload>.<mac>`, base64url without padding; the payload is JSON
//! `{"sid","own","exp","tnt"}` (`tnt`, the sandbox's tenant, absent in tokens minted
//! before tenants: those are of the default tenant) and the MAC is HMAC-SHA256 over `osb1.<payload>` with the
//! gateway's signing key (shared by replicas through the store, or from a file).
//! Verification is constant time (`hmac`'s `verify_slice`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use proto::Secret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "osb1.";

/// The signing key (at least 32 bytes).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Sandbox id.
    pub sid: String,
    /// Owner of the sandbox.
    pub own: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// The sandbox's tenant (`None`: the default tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tnt: Option<String>,
}

/// Why a token was refused (the message never echoes the token).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a sandbox token at all.
    #[error("not a sandbox token")]
    Malformed,
    /// The MAC does not match.
    #[error("sandbox token signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("sandbox token expired")]
    Expired,
}

impl SigningKey {
    /// A key from bytes; `None` when shorter than 32 bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= 32).then_some(Self(bytes))
    }

    /// The key in `file`, which others must not be able to read.
    ///
    /// # Errors
    /// A message naming the file and the fix.
    pub fn read_file(file: &std::path::Path) -> Result<Self, String> {
        proto::private::check_secret_file(file)?;
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        Self::from_bytes(bytes).ok_or_else(|| {
            format!(
                "{}: the key must be at least 32 bytes (e.g. `head -c 32 /dev/urandom > key`)",
                file.display()
            )
        })
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// When the OS random source fails.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The key's bytes (for storing it).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// Mints a token for `claims`.
    pub fn mint(&self, claims: &Claims) -> Secret {
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Secret::new(format!("{signed}.{tag}"))
    }

    /// Checks `token` and returns its claims.
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, TokenError> {
        if !token.starts_with(PREFIX) {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(&signed[PREFIX.len()..])
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now_secs {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Whether `token` looks like a sandbox token (so other authenticators skip it).
pub fn looks_like_sandbox_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims() -> Claims {
        Claims {
            sid: "sb-1".into(),
            own: "alice".into(),
            exp: 1_000,
            tnt: Some("acme".into()),
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let key = SigningKey::generate().unwrap();
        let token = key.mint(&claims());
        assert_eq!(key.verify(token.expose(), 999).unwrap(), claims());
        assert_eq!(key.verify(token.expose(), 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_or_another_key_is_refused() {
        let key = SigningKey::generate().unwrap();
        let token = key.mint(&claims()).expose().to_owned();
        let other = SigningKey::generate().unwrap();
        assert_eq!(other.verify(&token, 1), Err(TokenError::BadSignature));
        for forged in [
            Claims {
                own: "bob".into(),
                ..claims()
            },
            Claims {
                tnt: Some("globex".into()),
                ..claims()
            },
        ] {
            let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
            let tag = token.rsplit_once('.').unwrap().1;
            let tampered = format!("{PREFIX}{forged_payload}.{tag}");
            assert_eq!(key.verify(&tampered, 1), Err(TokenError::BadSignature));
        }
        assert_eq!(key.verify("osb1.x", 1), Err(TokenError::Malformed));
        assert_eq!(key.verify("Bearer abc", 1), Err(TokenError::Malformed));
    }

    #[test]
    fn tokens_minted_before_tenants_have_none() {
        let old = serde_json::json!({"sid": "sb-1", "own": "alice", "exp": 5});
        let claims: Claims = serde_json::from_value(old).unwrap();
        assert_eq!(claims.tnt, None);
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SigningKey::from_bytes(vec![1; 31]).is_none());
        assert!(SigningKey::from_bytes(vec![1; 32]).is_some());
    }
}
