//! Who may see, use and change which record: one pure decision per question, derived
//! from the caller ([`Access::of`] a [`Principal`]), and the store filters that express
//! the same decisions in SQL for listings. Every handler, the watch stream and every
//! list ask here.
//!
//! The rules, all within the caller's tenant (the store handle confines every read):
//! admins see, use and change everything. A user (or a sandbox, acting for its owner)
//! sees and changes their own records; they also see and use shared providers (stored
//! under keys without `/`, created by admins), but cannot change them. Beyond that, the
//! operator's attribute rules ([`super::access_rules`]) may let them act on a
//! provider by the attributes they share with it. Anything else does not exist for
//! them (NOT_FOUND, never PERMISSION_DENIED, so nothing leaks).

use std::collections::BTreeMap;

use super::access_rules::{AccessRules, Action, Attributes, Effect};
use crate::auth::Principal;
use crate::store::{ACCESS_LABEL_PREFIX, AccessTerm, Filter, access_label};

/// No rules: owner or admin only.
static NO_RULES: AccessRules = AccessRules { rules: Vec::new() };
/// No attributes.
static NO_ATTRIBUTES: Attributes = BTreeMap::new();

/// The caller as authorization sees it.
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    owner: &'a str,
    admin: bool,
    attributes: &'a Attributes,
    rules: &'a AccessRules,
}

impl<'a> Access<'a> {
    /// The access of `principal`, without attribute rules.
    pub fn of(principal: &'a Principal) -> Self {
        Self {
            owner: principal.owner(),
            admin: principal.is_admin(),
            attributes: &principal.attributes,
            rules: &NO_RULES,
        }
    }

    /// The access of `principal` under the operator's attribute `rules`.
    pub fn with_rules(principal: &'a Principal, rules: &'a AccessRules) -> Self {
        Self {
            rules,
            ..Self::of(principal)
        }
    }

    /// The access of a plain user (or sandbox) of `owner`, without attributes.
    pub fn user(owner: &'a str) -> Self {
        Self {
            owner,
            admin: false,
            attributes: &NO_ATTRIBUTES,
            rules: &NO_RULES,
        }
    }

    /// This access with the caller's `attributes` (a sandbox's owner's, as stamped).
    #[must_use]
    pub fn having(self, attributes: &'a Attributes, rules: &'a AccessRules) -> Self {
        Self {
            attributes,
            rules,
            ..self
        }
    }

    /// May do `action` to the provider stored under `key` whose record `labels` hold
    /// its access attributes: as [`Access::may_use_provider`] and
    /// [`Access::may_change_provider`] say, or as the attribute rules permit.
    pub fn may(&self, action: Action, key: &str, labels: &BTreeMap<String, String>) -> bool {
        let base = match action {
            Action::Read | Action::Use => self.may_use_provider(key),
            Action::Update | Action::Delete => self.may_change_provider(key),
        };
        base || self
            .rules
            .permits(self.attributes, &object_attributes(labels), action)
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
            rules: Vec::new(),
        }
    }

    /// The providers this caller may list (own, shared, and those the attribute rules
    /// let it read), as a store filter.
    pub fn provider_filter(&self) -> Filter {
        let rules = self
            .rules
            .list_terms(self.attributes, Action::Read)
            .into_iter()
            .map(|term| AccessTerm {
                permit: term.effect == Effect::Permit,
                labels: term.any_of.map(|pairs| {
                    pairs
                        .iter()
                        .map(|(category, value)| access_label(category, value))
                        .collect()
                }),
            })
            .collect();
        Filter {
            owners: (!self.admin).then(|| vec![self.owner.to_owned()]),
            shared: !self.admin,
            rules: if self.admin { Vec::new() } else { rules },
        }
    }
}

/// The access attributes an object's record `labels` hold.
pub fn object_attributes(labels: &BTreeMap<String, String>) -> Attributes {
    let mut attributes = Attributes::new();
    for key in labels.keys() {
        if let Some((category, value)) = key
            .strip_prefix(ACCESS_LABEL_PREFIX)
            .and_then(|rest| rest.split_once('/'))
        {
            attributes
                .entry(category.to_owned())
                .or_default()
                .insert(value.to_owned());
        }
    }
    attributes
}

/// The record labels holding `attributes` (added to an object's record labels).
pub fn access_labels(attributes: &Attributes) -> BTreeMap<String, String> {
    attributes
        .iter()
        .flat_map(|(category, values)| {
            values
                .iter()
                .map(move |value| (access_label(category, value), String::new()))
        })
        .collect()
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
                ..Access::user(owner)
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
            admin: true,
            ..Access::user("root")
        };
        assert!(admin.sandbox_filter().owners.is_none());
        assert!(admin.provider_filter().owners.is_none());
        for (key, owner) in [("alice/p", "alice"), ("p", "root"), ("bob/p", "bob")] {
            assert_eq!(
                providers.admits(key, owner, &BTreeMap::new()),
                alice.may_use_provider(key),
                "{key}"
            );
        }
    }
}
