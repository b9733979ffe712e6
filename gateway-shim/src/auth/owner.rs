//! Owner keys: what is stamped on every record as its owner, namespaced by how the owner
//! authenticated, so that no subject string from one authenticator can equal the key of
//! a principal from another (or of another subject).
//!
//! - The local token: `local`.
//! - An OIDC subject of issuer `I`: `oidc-<first 8 hex digits of SHA-256(I)>.<v>`, where
//!   `<v>` is the subject when it is a label value of at most 49 characters that does
//!   not start with `h--`, else `h--` and the first 24 hex digits of SHA-256(subject).
//!
//! - A principal asserted by the trusted authenticating proxy: `proxy.<v>`, `<v>` as
//!   for OIDC (readable up to 57 characters).
//!
//! - An API-key consumer: `key.<v>`.
//!
//! Every key is a valid Kubernetes label value (the drivers label resources with it),
//! and the mapping is injective: the namespaces have distinct prefixes, and a raw
//! subject never starts with `h--`, which only hashed values do. Later authenticators
//! (API keys) get prefixes of their own.
//!
//! Keys before namespacing were the subject itself or `u-<24 hex>` of its hash: see
//! [`from_legacy`] (the store migration) and [`legacy_form`] (sandbox tokens minted
//! before it).

use sha2::{Digest, Sha256};

use super::principal::is_label_value;

/// The local token's owner key.
pub const LOCAL_OWNER: &str = "local";
/// Prefix of every OIDC owner key.
const OIDC_PREFIX: &str = "oidc-";
/// Prefix of a hashed subject.
const HASHED: &str = "h--";
/// Longest subject kept readable (63 minus `oidc-xxxxxxxx.`).
const MAX_READABLE: usize = 49;

/// Prefix of every trusted-proxy owner key.
const PROXY_PREFIX: &str = "proxy.";

/// The owner key of the principal `subject` a trusted proxy asserted.
pub fn proxy_owner(subject: &str) -> String {
    format!(
        "{PROXY_PREFIX}{}",
        readable_or_hashed(subject, 63 - PROXY_PREFIX.len())
    )
}

/// `subject` itself when it is a label value of at most `max` characters not starting
/// with `h--`, else `h--` and 24 hex digits of its digest.
fn readable_or_hashed(subject: &str, max: usize) -> String {
    if is_label_value(subject) && subject.len() <= max && !subject.starts_with(HASHED) {
        subject.to_owned()
    } else {
        format!("{HASHED}{}", hex_prefix(subject.as_bytes(), 12))
    }
}

/// The owner key of the API-key consumer `consumer`: `key.<v>`.
pub fn key_owner(consumer: &str) -> String {
    let prefix = super::api_key::owner_prefix();
    format!(
        "{prefix}{}",
        readable_or_hashed(consumer, 63 - prefix.len())
    )
}

/// The namespace of OIDC subjects of `issuer`: `oidc-<8 hex>`.
pub fn oidc_namespace(issuer: &str) -> String {
    format!("{OIDC_PREFIX}{}", hex_prefix(issuer.as_bytes(), 4))
}

/// The owner key of OIDC subject `subject` of `issuer`.
pub fn oidc_owner(issuer: &str, subject: &str) -> String {
    format!(
        "{}.{}",
        oidc_namespace(issuer),
        readable_or_hashed(subject, MAX_READABLE)
    )
}

/// The namespaced key for a key stamped before namespacing (`local` stays; every other
/// was an OIDC subject of the issuer whose `namespace` is given); `None` when it does
/// not change.
pub fn from_legacy(owner: &str, namespace: &str) -> Option<String> {
    // Trusted-proxy keys came after namespacing (stores that had them were migrated
    // already, unless OIDC is configured later: those keep their key).
    if owner.is_empty()
        || owner == LOCAL_OWNER
        || owner.starts_with(PROXY_PREFIX)
        || owner.starts_with(super::api_key::owner_prefix())
    {
        return None;
    }
    let value = match owner.strip_prefix("u-") {
        Some(hex) if hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{HASHED}{hex}")
        }
        _ => owner.to_owned(),
    };
    Some(format!("{namespace}.{value}"))
}

/// What `owner` was before namespacing (to accept sandbox tokens minted then).
pub fn legacy_form(owner: &str) -> Option<String> {
    let (namespace, value) = owner.split_once('.')?;
    if !namespace.starts_with(OIDC_PREFIX) {
        return None;
    }
    Some(match value.strip_prefix(HASHED) {
        Some(hex) => format!("u-{hex}"),
        None => value.to_owned(),
    })
}

fn hex_prefix(bytes: &[u8], len: usize) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(len)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://idp.example/realms/r";

    #[test]
    fn no_subject_can_take_another_principal_s_key() {
        let hashed = oidc_owner(ISSUER, "alice@example.com");
        let raw_lookalike = hashed.rsplit('.').next().unwrap().to_owned();
        let keys = [
            LOCAL_OWNER.to_owned(),
            oidc_owner(ISSUER, "local"),
            oidc_owner(ISSUER, "alice"),
            oidc_owner("https://other.example/realms/r", "alice"),
            hashed.clone(),
            // A subject spelled like the hashed value of another is hashed itself.
            oidc_owner(ISSUER, &raw_lookalike),
            oidc_owner(ISSUER, &format!("u-{}", &raw_lookalike[3..])),
            proxy_owner("alice"),
            proxy_owner("local"),
            proxy_owner("alice@example.com"),
            proxy_owner(&format!("oidc-{}", &hashed[5..13])),
            key_owner("alice"),
            key_owner("proxy.alice"),
        ];
        for (i, a) in keys.iter().enumerate() {
            assert!(is_label_value(a), "{a} is a label value");
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(oidc_owner(ISSUER, "local"), LOCAL_OWNER);
        assert!(oidc_owner(ISSUER, "alice").ends_with(".alice"), "readable");
        assert!(oidc_owner(ISSUER, &"a".repeat(50)).contains(".h--"));
        assert_eq!(hashed, oidc_owner(ISSUER, "alice@example.com"), "stable");
    }

    #[test]
    fn legacy_keys_map_to_their_namespaced_form_and_back() {
        let ns = oidc_namespace(ISSUER);
        assert_eq!(from_legacy("local", &ns), None);
        assert_eq!(from_legacy("", &ns), None);
        assert_eq!(from_legacy("alice", &ns), Some(oidc_owner(ISSUER, "alice")));
        // The old hashed form used the same digest.
        let old_hashed = format!(
            "u-{}",
            oidc_owner(ISSUER, "alice@example.com")
                .rsplit("h--")
                .next()
                .unwrap()
        );
        assert_eq!(
            from_legacy(&old_hashed, &ns),
            Some(oidc_owner(ISSUER, "alice@example.com"))
        );
        for legacy in ["alice", old_hashed.as_str()] {
            let new = from_legacy(legacy, &ns).unwrap();
            assert_eq!(legacy_form(&new).as_deref(), Some(legacy));
        }
        assert_eq!(legacy_form(LOCAL_OWNER), None);
    }
}
