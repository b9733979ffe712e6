//! `platform_config` for Kubernetes: the pod fields a request may set, validated, with
//! any other key rejected by name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use prost_types::value::Kind;
use serde_json::{Map, Value};

use crate::validate::InvalidField;

const FIELD: &str = "sandbox.spec.template.platform_config";
const KEYS: &str = "runtimeClassName, nodeSelector, tolerations or annotations";

/// The pod settings `platform_config` may carry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlatformConfig {
    /// `spec.runtimeClassName` (e.g. gvisor, kata).
    pub runtime_class_name: Option<String>,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

fn invalid(key: &str, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field: format!("{FIELD}.{key}"),
        reason: reason.into(),
    }
}

/// Reads and checks `config`.
///
/// # Errors
/// [`InvalidField`] naming the key: unknown keys, wrong types, malformed tolerations.
pub fn parse(config: Option<&prost_types::Struct>) -> Result<PlatformConfig, InvalidField> {
    let mut parsed = PlatformConfig::default();
    let Some(config) = config else {
        return Ok(parsed);
    };
    for (key, value) in &config.fields {
        let value = to_json(value);
        match key.as_str() {
            "runtimeClassName" => match value {
                Value::String(name) if !name.is_empty() => parsed.runtime_class_name = Some(name),
                _ => return Err(invalid(key, "must be a non-empty string")),
            },
            "nodeSelector" => parsed.node_selector = string_map(key, value)?,
            "annotations" => parsed.annotations = string_map(key, value)?,
            "tolerations" => {
                parsed.tolerations = serde_json::from_value(value).map_err(|e| {
                    invalid(
                        key,
                        format!("must be a list of Kubernetes tolerations: {e}"),
                    )
                })?;
            }
            other => return Err(invalid(other, format!("unknown key: use {KEYS}"))),
        }
    }
    Ok(parsed)
}

fn string_map(key: &str, value: Value) -> Result<BTreeMap<String, String>, InvalidField> {
    let Value::Object(map) = value else {
        return Err(invalid(key, "must be a map of strings"));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(invalid(&format!("{key}[{k:?}]"), "must be a string")),
        })
        .collect()
}

/// A protobuf `Value` as JSON.
pub fn to_json(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(to_json).collect()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost_types::{ListValue, Struct, Value as PValue};

    fn string(s: &str) -> PValue {
        PValue {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    fn object(fields: &[(&str, PValue)]) -> PValue {
        PValue {
            kind: Some(Kind::StructValue(Struct {
                fields: fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            })),
        }
    }

    fn config(fields: &[(&str, PValue)]) -> Struct {
        Struct {
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn known_keys_are_read() {
        let toleration = object(&[
            ("key", string("gpu")),
            ("operator", string("Exists")),
            ("effect", string("NoSchedule")),
        ]);
        let parsed = parse(Some(&config(&[
            ("runtimeClassName", string("gvisor")),
            ("nodeSelector", object(&[("pool", string("sandboxes"))])),
            ("annotations", object(&[("team", string("ml"))])),
            (
                "tolerations",
                PValue {
                    kind: Some(Kind::ListValue(ListValue {
                        values: vec![toleration],
                    })),
                },
            ),
        ])))
        .unwrap();
        assert_eq!(parsed.runtime_class_name.as_deref(), Some("gvisor"));
        assert_eq!(parsed.node_selector["pool"], "sandboxes");
        assert_eq!(parsed.tolerations[0].key.as_deref(), Some("gpu"));
    }

    #[test]
    fn bad_keys_are_named() {
        let unknown = parse(Some(&config(&[(
            "hostNetwork",
            PValue {
                kind: Some(Kind::BoolValue(true)),
            },
        )])))
        .unwrap_err();
        assert_eq!(
            unknown.field,
            "sandbox.spec.template.platform_config.hostNetwork"
        );
        assert!(unknown.reason.contains("runtimeClassName"));
        let wrong_type = parse(Some(&config(&[(
            "nodeSelector",
            object(&[(
                "pool",
                PValue {
                    kind: Some(Kind::NumberValue(1.0)),
                },
            )]),
        )])))
        .unwrap_err();
        assert_eq!(
            wrong_type.field,
            "sandbox.spec.template.platform_config.nodeSelector[\"pool\"]"
        );
        let bad_toleration = parse(Some(&config(&[("tolerations", string("all"))]))).unwrap_err();
        assert_eq!(
            bad_toleration.field,
            "sandbox.spec.template.platform_config.tolerations"
        );
    }
}
