//! Attribute rules: who besides the owner (and the tenant's admins) may read, use,
//! update or delete an object, from the object's access attributes (category →
//! values, set by its owner or an admin) and the caller's attributes (from its
//! authenticator: OIDC claims, the trusted proxy's headers).
//!
//! ```yaml
//! rules:
//!   # Contractors never use what others share with them.
//!   - effect: forbid
//!     actions: [use]
//!     caller: {teams: [contractors]}
//!   # Teammates read and use what is shared with their team.
//!   - effect: permit
//!     actions: [read, use]
//!     shared_in: teams
//! ```
//!
//! A rule matches an action on an object when it lists the action, the caller holds
//! one of the listed values of every category in `caller`, and (with `shared_in`) the
//! caller's values of that category meet the object's. The first matching rule
//! decides; none matching means owner or admin only. Rules never take anything from
//! the owner or an admin. The same decision is a SQL condition for listings
//! ([`AccessRules::list_terms`] → [`crate::store::Filter`]), checked against this
//! function by the tests.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// Object access attributes and caller attributes: category → values.
pub type Attributes = BTreeMap<String, BTreeSet<String>>;

/// What a caller does to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// See it (get, list).
    Read,
    /// Use it (resolve, attach, route to).
    Use,
    /// Change it.
    Update,
    /// Delete it.
    Delete,
}

/// What a matching rule says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allowed.
    Permit,
    /// Refused (as NOT_FOUND: the object does not exist for the caller).
    Forbid,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Permit or forbid.
    pub effect: Effect,
    /// The actions it covers.
    pub actions: Vec<Action>,
    /// Required caller attributes: for every category, one of the values.
    #[serde(default)]
    pub caller: BTreeMap<String, Vec<String>>,
    /// A category the caller's and the object's values must share one value of.
    #[serde(default)]
    pub shared_in: Option<String>,
}

/// The ordered rules (none by default: owner or admin only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRules {
    /// First match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One rule as a listing's SQL sees it, for one caller and action: `any_of` is the
/// object attribute pairs (category, value) of which one must be present (`None`: any
/// object matches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListTerm {
    /// Permit or forbid.
    pub effect: Effect,
    /// `None`: matches every object; `Some(pairs)`: objects holding one of them.
    pub any_of: Option<Vec<(String, String)>>,
}

impl AccessRules {
    /// Parses the YAML rules, checking names.
    ///
    /// # Errors
    /// A message naming the rule and what is wrong.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let rules: Self = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        for (i, rule) in rules.rules.iter().enumerate() {
            if rule.actions.is_empty() {
                return Err(format!("rules[{i}]: list at least one action"));
            }
            for category in rule.caller.keys().chain(&rule.shared_in) {
                check_name(category).map_err(|e| format!("rules[{i}]: {e}"))?;
            }
        }
        Ok(rules)
    }

    /// Loads the rules in `path`.
    ///
    /// # Errors
    /// A message naming the file and what is wrong in it.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether the rules let a caller with `caller` attributes do `action` to an
    /// object with `object` access attributes (owners and admins are decided before).
    pub fn permits(&self, caller: &Attributes, object: &Attributes, action: Action) -> bool {
        self.rules
            .iter()
            .find(|rule| rule.matches(caller, object, action))
            .is_some_and(|rule| rule.effect == Effect::Permit)
    }

    /// The rules that can match for this caller and action, as listing terms.
    pub fn list_terms(&self, caller: &Attributes, action: Action) -> Vec<ListTerm> {
        self.rules
            .iter()
            .filter(|rule| rule.actions.contains(&action) && rule.caller_matches(caller))
            .map(|rule| ListTerm {
                effect: rule.effect,
                any_of: rule.shared_in.as_ref().map(|category| {
                    caller
                        .get(category)
                        .into_iter()
                        .flatten()
                        .map(|value| (category.clone(), value.clone()))
                        .collect()
                }),
            })
            .collect()
    }
}

impl Rule {
    fn caller_matches(&self, caller: &Attributes) -> bool {
        self.caller.iter().all(|(category, wanted)| {
            caller
                .get(category)
                .is_some_and(|held| wanted.iter().any(|value| held.contains(value)))
        })
    }

    fn matches(&self, caller: &Attributes, object: &Attributes, action: Action) -> bool {
        self.actions.contains(&action)
            && self.caller_matches(caller)
            && self.shared_in.as_ref().is_none_or(|category| {
                match (caller.get(category), object.get(category)) {
                    (Some(mine), Some(its)) => !mine.is_disjoint(its),
                    _ => false,
                }
            })
    }
}

/// Whether the terms of a listing admit an object holding `object` (the SQL's
/// meaning, for tests and for the in-memory paths).
pub fn terms_admit(terms: &[ListTerm], object: &Attributes) -> bool {
    let matches = |term: &ListTerm| match &term.any_of {
        None => true,
        Some(pairs) => pairs
            .iter()
            .any(|(category, value)| object.get(category).is_some_and(|v| v.contains(value))),
    };
    terms
        .iter()
        .find(|term| matches(term))
        .is_some_and(|term| term.effect == Effect::Permit)
}

/// An attribute category or value: 1 to 63 ASCII letters, digits, `-`, `.`, `_`,
/// `@` or `:` (no `/` or quotes: they are stored in record label keys).
///
/// # Errors
/// A message saying what is allowed.
pub fn check_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._@:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid attribute name or value: use 1 to 63 letters, digits, '-', '.', '_', '@' or ':'"
        ))
    }
}

#[cfg(test)]
mod tests;
