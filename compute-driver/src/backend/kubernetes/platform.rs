//! `platform_config` for Kubernetes: the pod fields a request may set, validated, with
//! any other key rejected by name. Keys are taken as upstream OpenShell's gateway
//! writes them (snake_case: `runtime_class_name`, `node_selector`, `tolerations`,
//! `annotations`, `host_users`, `resources_raw`) and in the camelCase of the pod spec.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use prost_types::value::Kind;
use serde_json::{Map, Value};

use crate::validate::InvalidField;

const FIELD: &str = "sandbox.spec.template.platform_config";
const KEYS: &str = "runtime_class_name, node_selector, tolerations, annotations, host_users or resources_raw (or the camelCase pod-spec names)";

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
    /// `spec.hostUsers`: `false` runs the pod in a user namespace.
    pub host_users: Option<bool>,
    /// The container's `resources` as given (`limits`/`requests` maps of quantities,
    /// custom resource names included); the typed CPU and memory fields win.
    pub resources_raw: Option<Map<String, Value>>,
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
            "runtimeClassName" | "runtime_class_name" => match value {
                Value::String(name) if !name.is_empty() => parsed.runtime_class_name = Some(name),
                _ => return Err(invalid(key, "must be a non-empty string")),
            },
            "nodeSelector" | "node_selector" => parsed.node_selector = string_map(key, value)?,
            "hostUsers" | "host_users" => match value {
                Value::Bool(host_users) => parsed.host_users = Some(host_users),
                _ => return Err(invalid(key, "must be true or false")),
            },
            "resources_raw" | "resources" => parsed.resources_raw = Some(resources(key, value)?),
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

/// `{limits: {name: quantity}, requests: {…}}`, nothing else.
fn resources(key: &str, value: Value) -> Result<Map<String, Value>, InvalidField> {
    let Value::Object(map) = value else {
        return Err(invalid(key, "must be a map with limits and/or requests"));
    };
    for (section, quantities) in &map {
        if !matches!(section.as_str(), "limits" | "requests") {
            return Err(invalid(
                &format!("{key}.{section}"),
                "unknown key: use limits or requests",
            ));
        }
        string_map(&format!("{key}.{section}"), quantities.clone())?;
    }
    Ok(map)
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
        assert!(unknown.reason.contains("runtime_class_name"));
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

    #[test]
    fn upstream_snake_case_keys_are_read() {
        let parsed = parse(Some(&config(&[
            ("runtime_class_name", string("kata")),
            ("node_selector", object(&[("gpu", string("a100"))])),
            (
                "host_users",
                PValue {
                    kind: Some(Kind::BoolValue(false)),
                },
            ),
            (
                "resources_raw",
                object(&[("limits", object(&[("nvidia.com/gpu", string("1"))]))]),
            ),
        ])))
        .unwrap();
        assert_eq!(parsed.runtime_class_name.as_deref(), Some("kata"));
        assert_eq!(parsed.node_selector["gpu"], "a100");
        assert_eq!(parsed.host_users, Some(false));
        assert_eq!(
            parsed.resources_raw.unwrap()["limits"]["nvidia.com/gpu"],
            "1"
        );
        let bad = parse(Some(&config(&[(
            "resources_raw",
            object(&[("claims", object(&[]))]),
        )])))
        .unwrap_err();
        assert_eq!(
            bad.field,
            "sandbox.spec.template.platform_config.resources_raw.claims"
        );
    }
}
