//! The credential policy: which credential names (as the credentials driver serves
//! them) the owner of a provider may reference. A user's provider is only a pointer to a
//! credential; without this check, naming another user's credential would read it.
//!
//! ```yaml
//! # Token-exchange credentials return a token bounded by the caller's own subject
//! # token: `open` lets every user reference them (the default); `granted` treats them
//! # like any other credential.
//! token_exchange: open
//! grants:
//!   # Every user may reference credentials under their own owner key.
//!   - credentials: ["users/{owner}/*"]
//!   # Two named owners may use the team's credentials.
//!   - credentials: ["team-ml/*", "ml-shared"]
//!     owners: ["oidc-1a2b3c4d.alice", "oidc-1a2b3c4d.bob"]
//! ```
//!
//! Admins may reference any credential; shared providers (created by admins) are
//! decided as the admin's. Patterns: `*` matches any run of characters, `{owner}` the
//! holder's owner key (taken literally, never as a pattern). Unknown keys are refused.

use serde::Deserialize;

/// Who a decision is about: the owner of the provider that names the credential.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    /// The owner key.
    pub owner: &'a str,
    /// An admin (or a shared provider, which only admins create).
    pub admin: bool,
}

/// The parsed policy.
#[derive(Clone, Debug)]
pub struct CredentialPolicy {
    exchange_open: bool,
    grants: Vec<Grant>,
}

#[derive(Clone, Debug)]
struct Grant {
    patterns: Vec<Pattern>,
    owners: Vec<String>,
}

#[derive(Clone, Debug)]
struct Pattern(Vec<Part>);

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Literal(String),
    Owner,
    Star,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    token_exchange: Exchange,
    #[serde(default)]
    grants: Vec<GrantDocument>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Exchange {
    #[default]
    Open,
    Granted,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantDocument {
    credentials: Vec<String>,
    #[serde(default)]
    owners: Vec<String>,
}

impl Default for CredentialPolicy {
    /// A new deployment's policy: users may reference token-exchange credentials only.
    fn default() -> Self {
        Self {
            exchange_open: true,
            grants: Vec::new(),
        }
    }
}

impl CredentialPolicy {
    /// A policy that grants users nothing (used while the policy file is broken).
    pub fn deny_users() -> Self {
        Self {
            exchange_open: false,
            grants: Vec::new(),
        }
    }

    /// Parses the YAML policy.
    ///
    /// # Errors
    /// A message naming the key (`grants[2].credentials[0]`) and the fix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let document: Document = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut grants = Vec::with_capacity(document.grants.len());
        for (index, grant) in document.grants.into_iter().enumerate() {
            if grant.credentials.is_empty() {
                return Err(format!(
                    "grants[{index}].credentials: list at least one credential name or pattern"
                ));
            }
            let patterns = grant
                .credentials
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    Pattern::parse(text)
                        .map_err(|e| format!("grants[{index}].credentials[{i}] {text:?}: {e}"))
                })
                .collect::<Result<_, _>>()?;
            grants.push(Grant {
                patterns,
                owners: grant.owners,
            });
        }
        Ok(Self {
            exchange_open: matches!(document.token_exchange, Exchange::Open),
            grants,
        })
    }

    /// Whether `holder` may reference `credential` by a grant (admins: always).
    pub fn grants(&self, holder: Holder<'_>, credential: &str) -> bool {
        holder.admin
            || self.grants.iter().any(|grant| {
                (grant.owners.is_empty() || grant.owners.iter().any(|o| o == holder.owner))
                    && grant
                        .patterns
                        .iter()
                        .any(|pattern| pattern.matches(credential, holder.owner))
            })
    }

    /// Whether every user may reference token-exchange credentials.
    pub fn token_exchange_open(&self) -> bool {
        self.exchange_open
    }

    /// The whole decision, given whether the credential is a token exchange (`None`:
    /// not known, e.g. the driver does not list it).
    pub fn allows(&self, holder: Holder<'_>, credential: &str, exchange: Option<bool>) -> bool {
        self.grants(holder, credential) || (self.exchange_open && exchange == Some(true))
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty pattern".into());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if c == '*' {
                push_literal(&mut parts, &mut literal);
                if parts.last() != Some(&Part::Star) {
                    parts.push(Part::Star);
                }
                rest = &rest[1..];
            } else if c == '{' {
                let Some(end) = rest.find('}') else {
                    return Err("unclosed `{`: the only placeholder is {owner}".into());
                };
                if &rest[..=end] != "{owner}" {
                    return Err(format!(
                        "unknown placeholder {}: the only placeholder is {{owner}}",
                        &rest[..=end]
                    ));
                }
                push_literal(&mut parts, &mut literal);
                parts.push(Part::Owner);
                rest = &rest[end + 1..];
            } else {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        push_literal(&mut parts, &mut literal);
        Ok(Self(parts))
    }

    fn matches(&self, name: &str, owner: &str) -> bool {
        matches_parts(&self.0, name, owner)
    }
}

fn push_literal(parts: &mut Vec<Part>, literal: &mut String) {
    if !literal.is_empty() {
        parts.push(Part::Literal(std::mem::take(literal)));
    }
}

/// Glob matching where `*` spans any characters and `{owner}` is a literal.
fn matches_parts(parts: &[Part], name: &str, owner: &str) -> bool {
    match parts.split_first() {
        None => name.is_empty(),
        Some((Part::Literal(text), rest)) => name
            .strip_prefix(text.as_str())
            .is_some_and(|tail| matches_parts(rest, tail, owner)),
        Some((Part::Owner, rest)) => {
            !owner.is_empty()
                && name
                    .strip_prefix(owner)
                    .is_some_and(|tail| matches_parts(rest, tail, owner))
        }
        Some((Part::Star, rest)) => name
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(name.len()))
            .any(|i| matches_parts(rest, &name[i..], owner)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
token_exchange: open
grants:
  - credentials: ["users/{owner}/*"]
  - credentials: ["team-ml/*", "ml-shared"]
    owners: ["alice"]
"#;

    fn user(owner: &str) -> Holder<'_> {
        Holder {
            owner,
            admin: false,
        }
    }

    /// (holder, admin, credential, exchange, allowed)
    const TABLE: &[(&str, bool, &str, Option<bool>, bool)] = &[
        ("alice", false, "users/alice/openai", Some(false), true),
        ("alice", false, "users/alice/a/b", None, true),
        ("alice", false, "users/bob/openai", Some(false), false),
        ("bob", false, "users/bob/openai", Some(false), true),
        ("alice", false, "team-ml/gpu", Some(false), true),
        ("alice", false, "ml-shared", Some(false), true),
        ("alice", false, "ml-shared-2", Some(false), false),
        ("bob", false, "team-ml/gpu", Some(false), false),
        ("bob", false, "alice-cred", Some(false), false),
        ("bob", false, "alice-cred", None, false),
        ("bob", false, "keycloak-exchange", Some(true), true),
        ("root", true, "alice-cred", Some(false), true),
        ("root", true, "anything", None, true),
        // An owner key that looks like a pattern is still a literal.
        ("*", false, "users/alice/openai", Some(false), false),
        ("", false, "users//x", Some(false), false),
    ];

    #[test]
    fn decision_table() {
        let policy = CredentialPolicy::parse(POLICY).unwrap();
        for (owner, admin, credential, exchange, allowed) in TABLE {
            let holder = Holder {
                owner,
                admin: *admin,
            };
            assert_eq!(
                policy.allows(holder, credential, *exchange),
                *allowed,
                "{owner} (admin {admin}) -> {credential} (exchange {exchange:?})"
            );
        }
    }

    #[test]
    fn the_default_grants_users_exchange_credentials_only() {
        let policy = CredentialPolicy::default();
        assert!(policy.allows(user("bob"), "kc", Some(true)));
        assert!(!policy.allows(user("bob"), "static", Some(false)));
        assert!(!policy.allows(user("bob"), "unknown", None));
        let closed = CredentialPolicy::parse("token_exchange: granted").unwrap();
        assert!(!closed.allows(user("bob"), "kc", Some(true)));
        let broken = CredentialPolicy::deny_users();
        assert!(!broken.allows(user("bob"), "kc", Some(true)));
        assert!(broken.allows(
            Holder {
                owner: "root",
                admin: true
            },
            "kc",
            Some(false)
        ));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, want) in [
            ("grants: [{credentials: []}]", "grants[0].credentials"),
            (
                "grants: [{credentials: [\"a/{user}\"]}]",
                "grants[0].credentials[0]",
            ),
            ("grants: [{credentials: [\"{owner\"]}]", "unclosed"),
            ("grants: [{credentials: [\"\"]}]", "empty pattern"),
            ("grant: []", "unknown field `grant`"),
            ("token_exchange: maybe", "unknown variant"),
            (
                "grants: [{credentials: [x], roles: [user]}]",
                "unknown field `roles`",
            ),
        ] {
            let error = CredentialPolicy::parse(text).unwrap_err();
            assert!(error.contains(want), "{text}: {error}");
        }
    }

    #[test]
    fn stars_match_any_run() {
        let policy =
            CredentialPolicy::parse("grants: [{credentials: [\"a*b*c\", \"x-*\"]}]").unwrap();
        for (name, ok) in [
            ("abc", true),
            ("a--b--c", true),
            ("acb", false),
            ("x-", true),
            ("x", false),
        ] {
            assert_eq!(policy.grants(user("u"), name), ok, "{name}");
        }
    }
}
