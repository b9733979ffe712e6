//! Kubernetes label selectors (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`), parsed and
//! matched as the API server does for `?labelSelector=`, plus the equality field
//! selectors of `?fieldSelector=` (`involvedObject.kind=Pod`, `metadata.name!=x`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A field requirement: the string at a dotted path equals (or not) a value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldRequirement {
    path: Vec<String>,
    equal: bool,
    value: String,
}

/// A parsed selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>, Vec<FieldRequirement>);

impl Selector {
    /// Whether it selects everything (no requirement at all).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_empty()
    }

    /// Parses `text`.
    ///
    /// # Errors
    /// A message naming the requirement that does not parse.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(
                requirement(part)
                    .ok_or_else(|| format!("unable to parse requirement: {part:?}"))?,
            );
        }
        Ok(Self(requirements, Vec::new()))
    }

    /// Adds the field selector `text` (`path=value`, `path==value`, `path!=value`, comma
    /// separated).
    ///
    /// # Errors
    /// A message naming the requirement that does not parse.
    pub fn with_fields(mut self, text: &str) -> Result<Self, String> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, equal, value) = if let Some((path, value)) = part.split_once("!=") {
                (path, false, value)
            } else if let Some((path, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                (path, true, value)
            } else {
                return Err(format!("invalid field selector: {part:?}"));
            };
            self.1.push(FieldRequirement {
                path: path.trim().split('.').map(str::to_owned).collect(),
                equal,
                value: value.trim().to_owned(),
            });
        }
        Ok(self)
    }

    /// Whether `object` is selected (labels and fields).
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(object["metadata"]["labels"].as_object())
            && self.1.iter().all(|field| {
                let found = field
                    .path
                    .iter()
                    .try_fold(object, |value, key| value.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                (found == field.value) == field.equal
            })
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::In(key, values) => value(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => value(key).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(key) => value(key).is_some(),
            Requirement::DoesNotExist(key) => value(key).is_none(),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn requirement(part: &str) -> Option<Requirement> {
    let set = |list: &str| -> Option<BTreeSet<String>> {
        let inner = list.trim().strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_owned()).collect())
    };
    if let Some(key) = part.strip_prefix('!') {
        return valid_key(key.trim()).then(|| Requirement::DoesNotExist(key.trim().to_owned()));
    }
    if let Some((key, rest)) = part.split_once(" notin ") {
        return Some(Requirement::NotIn(key.trim().to_owned(), set(rest)?));
    }
    if let Some((key, rest)) = part.split_once(" in ") {
        return Some(Requirement::In(key.trim().to_owned(), set(rest)?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Some(Requirement::NotIn(
            key.trim().to_owned(),
            [value.trim().to_owned()].into(),
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Some(Requirement::In(
            key.trim().to_owned(),
            [value.trim().to_owned()].into(),
        ));
    }
    valid_key(part).then(|| Requirement::Exists(part.to_owned()))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn every_operator_matches_like_the_api_server() {
        let pod = labels(json!({"app": "sandbox", "tier": "gpu", "openshell.io/id": "sb-1"}));
        for (selector, expected) in [
            ("", true),
            ("app=sandbox", true),
            ("app==sandbox", true),
            ("app!=sandbox", false),
            ("app=other", false),
            ("tier in (gpu, cpu)", true),
            ("tier notin (gpu)", false),
            ("missing notin (x)", true),
            ("openshell.io/id", true),
            ("!openshell.io/id", false),
            ("!missing", true),
            ("app=sandbox,tier in (cpu)", false),
            ("app=sandbox,tier in (cpu,gpu),!missing", true),
        ] {
            assert_eq!(
                Selector::parse(selector).unwrap().matches(Some(&pod)),
                expected,
                "{selector}"
            );
        }
        assert!(!Selector::parse("app").unwrap().matches(None));
        let event = json!({"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod"}});
        for (fields, expected) in [
            ("involvedObject.kind=Pod", true),
            ("involvedObject.kind!=Pod", false),
            ("involvedObject.kind=Node,metadata.name=e1", false),
            ("metadata.name==e1", true),
        ] {
            let selector = Selector::default().with_fields(fields).unwrap();
            assert_eq!(selector.matches_object(&event), expected, "{fields}");
        }
        assert!(Selector::default().with_fields("nonsense").is_err());
        assert!(Selector::parse("tier in gpu").is_err());
    }
}
