//! Which records a listing returns, as one SQL condition (built by
//! [`crate::authz::Access`]): the caller's own records, the tenant's shared ones, and
//! those the attribute rules admit, where the first rule matching a record decides.
//!
//! A record's access attributes are record labels `openshell.io/access/<category>/
//! <value>` (clients cannot set `openshell.io/` labels); the condition looks for the
//! label's key in the stored labels JSON (`{"<key>":` or `,"<key>":`, which only a key
//! can produce: inside a JSON string every quote is escaped), with a case-sensitive
//! substring function of the backend (`instr` in SQLite, `strpos` in PostgreSQL), no
//! pattern syntax involved.

use std::collections::BTreeMap;

/// Prefix of the record labels holding access attributes.
pub const ACCESS_LABEL_PREFIX: &str = "openshell.io/access/";

/// The record label key of the access attribute `category` = `value`.
pub fn access_label(category: &str, value: &str) -> String {
    format!("{ACCESS_LABEL_PREFIX}{category}/{value}")
}

/// One attribute rule as a listing applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTerm {
    /// A permit (else a forbid).
    pub permit: bool,
    /// Records holding one of these labels match (`None`: every record matches).
    pub labels: Option<Vec<String>>,
}

/// Which records a list returns, applied in the query.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only records of these owners (`None`: everyone's).
    pub owners: Option<Vec<String>>,
    /// With `owners`: also shared records (keys without `/`).
    pub shared: bool,
    /// With `owners`: also records the attribute rules admit (first match decides).
    pub rules: Vec<AccessTerm>,
}

impl Filter {
    /// Whether a record with `key`, `owner` and `labels` passes (what the query's
    /// `WHERE` says).
    pub fn admits(&self, key: &str, owner: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(owners) = &self.owners else {
            return true;
        };
        let matches = |term: &AccessTerm| {
            term.labels
                .as_ref()
                .is_none_or(|wanted| wanted.iter().any(|label| labels.contains_key(label)))
        };
        owners.iter().any(|o| o == owner)
            || (self.shared && !key.contains('/'))
            || self
                .rules
                .iter()
                .find(|term| matches(term))
                .is_some_and(|term| term.permit)
    }

    /// The `WHERE` clause after `kind = $1` (`tenant = $2` when `in_tenant`) and the
    /// values to bind after those, in order; `contains` is the backend's
    /// `(haystack, needle)` position function.
    pub(crate) fn sql(&self, in_tenant: bool, contains: &str) -> (String, Vec<String>) {
        let tenant = if in_tenant { " AND tenant = $2" } else { "" };
        let Some(owners) = &self.owners else {
            return (tenant.to_owned(), Vec::new());
        };
        let mut binds: Vec<String> = Vec::new();
        let first = if in_tenant { 3 } else { 2 };
        let placeholder = |value: String, binds: &mut Vec<String>| {
            binds.push(value);
            format!("${}", binds.len() + first - 1)
        };
        let mut alternatives = Vec::new();
        if !owners.is_empty() {
            let list: Vec<String> = owners
                .iter()
                .map(|o| placeholder(o.clone(), &mut binds))
                .collect();
            alternatives.push(format!("owner IN ({})", list.join(", ")));
        }
        if self.shared {
            alternatives.push("key NOT LIKE '%/%'".to_owned());
        }
        // Each term's condition, its placeholders numbered at first use (SQLite numbers
        // `$n` by first appearance; a repeated `$n` is the same value).
        let mut conditions: Vec<Option<String>> = vec![None; self.rules.len()];
        let mut condition = |i: usize, binds: &mut Vec<String>| -> String {
            if let Some(done) = &conditions[i] {
                return done.clone();
            }
            let text = match &self.rules[i].labels {
                None => "TRUE".to_owned(),
                Some(labels) if labels.is_empty() => "FALSE".to_owned(),
                Some(labels) => {
                    // A key is preceded by `{` or `,`; inside a JSON string every
                    // quote is preceded by `\`, so no string can hold either needle.
                    let tests: Vec<String> = labels
                        .iter()
                        .flat_map(|label| ['{', ','].map(|before| (before, label)))
                        .map(|(before, label)| {
                            let at = placeholder(format!("{before}\"{label}\":"), binds);
                            format!("{contains}(labels, {at}) > 0")
                        })
                        .collect();
                    format!("({})", tests.join(" OR "))
                }
            };
            conditions[i] = Some(text.clone());
            text
        };
        for (i, term) in self.rules.iter().enumerate() {
            if !term.permit {
                continue;
            }
            let mut parts = vec![condition(i, &mut binds)];
            for (j, earlier) in self.rules[..i].iter().enumerate() {
                if !earlier.permit {
                    parts.push(format!("NOT {}", condition(j, &mut binds)));
                }
            }
            alternatives.push(format!("({})", parts.join(" AND ")));
        }
        let clause = if alternatives.is_empty() {
            "FALSE".to_owned()
        } else {
            format!("({})", alternatives.join(" OR "))
        };
        (format!("{tenant} AND {clause}"), binds)
    }
}
