//! Shared secrets another party presents in a header (the trusted proxy, the control
//! plane reading the internal API): read from a file only we can read, kept as a
//! digest, compared in constant time.

use sha2::{Digest as _, Sha256};

/// A shared secret another party sends in a header, from `file` named by `flag`: not
/// readable by others, at least 16 visible ASCII characters once trimmed.
///
/// # Errors
/// A message naming the flag and the file.
pub fn read_shared_secret(flag: &str, file: &std::path::Path) -> Result<proto::Secret, String> {
    proto::private::check_secret_file(file).map_err(|e| format!("{flag}: {e}"))?;
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("{flag} {}: {e}", file.display()))?;
    let text = text.trim();
    if text.len() < 16 || http::HeaderValue::from_str(text).is_err() {
        return Err(format!(
            "{flag} {}: the secret must be at least 16 visible ASCII characters",
            file.display()
        ));
    }
    Ok(proto::Secret::new(text))
}

/// The digest of a shared secret, to check what a caller presents.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SharedSecret([u8; 32]);

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

impl SharedSecret {
    /// The digest of `secret`.
    pub fn of(secret: &proto::Secret) -> Self {
        Self(Sha256::digest(secret.expose().as_bytes()).into())
    }

    /// Whether `presented` (a header's value, `None` when absent) is the secret. The
    /// time taken does not depend on where the values differ: digests of equal length
    /// are compared in full.
    pub fn matches(&self, presented: Option<&[u8]>) -> bool {
        let presented: [u8; 32] = presented.map_or([0; 32], |v| Sha256::digest(v).into());
        let differing = presented
            .iter()
            .zip(&self.0)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        differing == 0
    }
}
