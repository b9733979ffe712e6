//! Who is calling: the principal every handler receives.
//!
//! Kept as a struct with room to grow (a tenant and attribute categories from trusted
//! upstream identity are planned), so handlers never match on how a caller
//! authenticated.

use std::collections::{BTreeMap, BTreeSet};

use proto::Secret;
use sha2::{Digest, Sha256};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    /// A person (or service account) or a sandbox.
    pub identity: Identity,
    /// Tenant partition (not used yet: one gateway per tenant).
    pub tenant: Option<String>,
    /// Attribute categories (teams, namespaces, ...) for attribute-based rules later.
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// How the caller is known.
#[derive(Clone, Debug)]
pub enum Identity {
    /// A user.
    User(User),
    /// A sandbox, by the token the gateway minted for it.
    Sandbox(SandboxIdentity),
}

/// A user.
#[derive(Clone, Debug)]
pub struct User {
    /// The subject as the authenticator gave it.
    pub subject: String,
    /// The owner value stamped on what this user creates ([`owner_of`] the subject).
    pub owner: String,
    /// Holds the admin role.
    pub admin: bool,
    /// Holds the user role (or the admin role), or roles are not enforced.
    pub user_role: bool,
    /// Scopes granted; `None` when scopes are not enforced.
    pub scopes: Option<BTreeSet<String>>,
    /// The bearer token the user presented, passed on as the subject token of
    /// token-exchange credentials. `None` for the local token.
    pub bearer: Option<Secret>,
}

/// A sandbox calling with its own token.
#[derive(Clone, Debug)]
pub struct SandboxIdentity {
    /// The sandbox id.
    pub id: String,
    /// Its owner.
    pub owner: String,
}

impl Principal {
    /// A principal with no tenant or attributes.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            tenant: None,
            attributes: BTreeMap::new(),
        }
    }

    /// The user, if the caller is one.
    pub fn user(&self) -> Option<&User> {
        match &self.identity {
            Identity::User(user) => Some(user),
            Identity::Sandbox(_) => None,
        }
    }

    /// The sandbox, if the caller is one.
    pub fn sandbox(&self) -> Option<&SandboxIdentity> {
        match &self.identity {
            Identity::Sandbox(sandbox) => Some(sandbox),
            Identity::User(_) => None,
        }
    }

    /// The owner value of the caller (a sandbox acts for its owner).
    pub fn owner(&self) -> &str {
        match &self.identity {
            Identity::User(user) => &user.owner,
            Identity::Sandbox(sandbox) => &sandbox.owner,
        }
    }

    /// Whether the caller is an admin user.
    pub fn is_admin(&self) -> bool {
        self.user().is_some_and(|user| user.admin)
    }
}

/// The owner value for `subject`: the subject itself when it is a valid label value
/// (at most 63 of `[A-Za-z0-9-_.]`, alphanumeric at both ends), else `u-` and the first
/// 24 hex digits of its SHA-256.
pub fn owner_of(subject: &str) -> String {
    if is_label_value(subject) {
        subject.to_owned()
    } else {
        let digest = Sha256::digest(subject.as_bytes());
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("u-{hex}")
    }
}

/// A Kubernetes label value that is not empty.
pub fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !value.is_empty()
        && value.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::owner_of;

    #[test]
    fn label_safe_subjects_are_kept_and_others_hashed() {
        assert_eq!(owner_of("alice"), "alice");
        assert_eq!(
            owner_of("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        let hashed = owner_of("alice@example.com");
        assert!(hashed.starts_with("u-") && hashed.len() == 26, "{hashed}");
        assert_eq!(hashed, owner_of("alice@example.com"), "stable");
        assert_ne!(hashed, owner_of("bob@example.com"));
        assert!(owner_of("-x").starts_with("u-"));
        assert!(owner_of(&"a".repeat(64)).starts_with("u-"));
    }
}
