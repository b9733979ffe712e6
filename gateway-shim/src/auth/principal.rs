//! Who is calling: the principal every handler receives.
//!
//! A struct, so handlers never match on how a caller authenticated: who it is, the
//! tenant it belongs to (every read and write is confined to it), and its attribute
//! categories (teams, namespaces, ...) for the attribute rules on objects.

use std::collections::{BTreeMap, BTreeSet};

use proto::Secret;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    /// A person (or service account) or a sandbox.
    pub identity: Identity,
    /// The tenant partition the caller acts in ([`crate::store::DEFAULT_TENANT`]
    /// when its authenticator names none).
    pub tenant: String,
    /// Attribute categories (teams, namespaces, ...) the attribute rules compare with
    /// an object's access attributes.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// The caller's rate limit, as its authenticator resolved it (an API key's plan);
    /// `None`: the gateway's default for users.
    pub rate: Option<super::rate_limit::Rate>,
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
    /// The owner key stamped on what this user creates ([`super::owner`]).
    pub owner: String,
    /// Holds the admin role of its tenant.
    pub admin: bool,
    /// Holds the platform admin role: may also change the platform layer (providers
    /// and the inference route every tenant falls back to).
    pub platform_admin: bool,
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
    /// A principal of the default tenant with no attributes.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            tenant: crate::store::DEFAULT_TENANT.to_owned(),
            attributes: BTreeMap::new(),
            rate: None,
        }
    }

    /// This principal in `tenant`.
    #[must_use]
    pub fn in_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
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

    /// Whether the caller is an admin user of its tenant.
    pub fn is_admin(&self) -> bool {
        self.user().is_some_and(|user| user.admin)
    }

    /// Whether the caller may change the platform layer.
    pub fn is_platform_admin(&self) -> bool {
        self.user().is_some_and(|user| user.platform_admin)
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
