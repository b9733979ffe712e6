//! Who may see, use and change which record: one pure decision per question, derived
//! from the caller ([`Access::of`] a [`Principal`]), and the store filters that express
//! the same decisions in SQL for listings. Every handler, the watch stream and every
//! list ask here.
//!
//! The rules: admins see, use and change everything. A user (or a sandbox, acting for
//! its owner) sees and changes their own records; they also see and use shared
//! providers (stored under keys without `/`, created by admins), but cannot change
//! them. Anything else does not exist for them (NOT_FOUND, never PERMISSION_DENIED, so
//! nothing leaks).

use crate::auth::Principal;
use crate::store::Filter;

/// The caller as authorization sees it.
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    owner: &'a str,
    admin: bool,
}

impl<'a> Access<'a> {
    /// The access of `principal`.
    pub fn of(principal: &'a Principal) -> Self {
        Self {
            owner: principal.owner(),
            admin: principal.is_admin(),
        }
    }

    /// The access of a plain user (or sandbox) of `owner`.
    pub fn user(owner: &'a str) -> Self {
        Self {
            owner,
            admin: false,
        }
    }

    /// The owner key stamped on what this caller creates.
    pub fn owner(&self) -> &'a str {
        self.owner
    }

    /// Whether this is an admin.
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// May see, and change, a sandbox (or route) owned by `owner`.
    pub fn owns(&self, owner: &str) -> bool {
        self.admin || owner == self.owner
    }

    /// May see and use the provider stored under `key`: their own (`<owner>/…`) or a
    /// shared one.
    pub fn may_use_provider(&self, key: &str) -> bool {
        self.admin
            || match key.split_once('/') {
                Some((key_owner, _)) => key_owner == self.owner,
                None => true,
            }
    }

    /// May change (update, delete) the provider stored under `key`.
    pub fn may_change_provider(&self, key: &str) -> bool {
        self.admin
            || key
                .split_once('/')
                .is_some_and(|(owner, _)| owner == self.owner)
    }

    /// The sandboxes this caller may list, as a store filter.
    pub fn sandbox_filter(&self) -> Filter {
        Filter {
            owners: (!self.admin).then(|| vec![self.owner.to_owned()]),
            shared: false,
        }
    }

    /// The providers this caller may list (own and shared), as a store filter.
    pub fn provider_filter(&self) -> Filter {
        Filter {
            owners: (!self.admin).then(|| vec![self.owner.to_owned()]),
            shared: !self.admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (caller owner, admin, question, subject, allowed)
    const TABLE: &[(&str, bool, &str, &str, bool)] = &[
        ("alice", false, "owns", "alice", true),
        ("alice", false, "owns", "bob", false),
        ("alice", false, "owns", "", false),
        ("root", true, "owns", "bob", true),
        ("alice", false, "use", "alice/openai", true),
        ("alice", false, "use", "openai", true),
        ("alice", false, "use", "bob/openai", false),
        ("alice", false, "use", "alice-x/openai", false),
        ("root", true, "use", "bob/openai", true),
        ("alice", false, "change", "alice/openai", true),
        ("alice", false, "change", "openai", false),
        ("alice", false, "change", "bob/openai", false),
        ("root", true, "change", "openai", true),
        ("root", true, "change", "bob/openai", true),
    ];

    #[test]
    fn decision_table() {
        for (owner, admin, question, subject, allowed) in TABLE {
            let access = Access {
                owner,
                admin: *admin,
            };
            let got = match *question {
                "owns" => access.owns(subject),
                "use" => access.may_use_provider(subject),
                "change" => access.may_change_provider(subject),
                other => panic!("unknown question {other}"),
            };
            assert_eq!(
                got, *allowed,
                "{owner} (admin {admin}) {question} {subject}"
            );
        }
    }

    #[test]
    fn filters_say_the_same_as_the_decisions() {
        let alice = Access::user("alice");
        let sandboxes = alice.sandbox_filter();
        assert_eq!(sandboxes.owners.as_deref(), Some(&["alice".to_owned()][..]));
        assert!(!sandboxes.shared);
        let providers = alice.provider_filter();
        assert!(providers.shared, "users list shared providers too");
        let admin = Access {
            owner: "root",
            admin: true,
        };
        assert!(admin.sandbox_filter().owners.is_none());
        assert!(admin.provider_filter().owners.is_none());
        for (key, owner) in [("alice/p", "alice"), ("p", "root"), ("bob/p", "bob")] {
            assert_eq!(
                providers.admits(key, owner),
                alice.may_use_provider(key),
                "{key}"
            );
        }
    }
}
