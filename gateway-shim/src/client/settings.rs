//! `sandbox settings get|set`: a sandbox's settings document, the policy as JSON.

use prost_types::value::Kind as ValueKind;
use prost_types::{ListValue, Struct, Value};
use proto::pb::gateway::v1 as pb;
use serde_json::{Map, Value as Json, json};

use super::cli::{ClientArgs, SettingsCommand};
use super::commands::reference;
use super::output::emit;
use super::{ClientError, connect, request};

/// Runs a `sandbox settings` subcommand.
pub(super) async fn run(command: &SettingsCommand) -> Result<(), ClientError> {
    match command {
        SettingsCommand::Get(sub) => {
            let mut client = connect(&sub.client).await?;
            let ask = pb::GetSandboxSettingsRequest {
                sandbox: Some(reference(sub)),
            };
            let settings = client
                .get_sandbox_settings(request(ask, &sub.client))
                .await?
                .into_inner();
            show(&sub.client, &settings)
        }
        SettingsCommand::Set(set) => {
            let args = &set.sandbox.client;
            let policy = match &set.policy_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        ClientError::Input(format!("--policy-file {}: {e}", path.display()))
                    })?;
                    let json: Json = serde_json::from_str(&text).map_err(|e| {
                        ClientError::Input(format!(
                            "--policy-file {}: not JSON: {e}",
                            path.display()
                        ))
                    })?;
                    Some(to_struct(json).map_err(|why| {
                        ClientError::Input(format!("--policy-file {}: {why}", path.display()))
                    })?)
                }
                None => None,
            };
            let mut client = connect(args).await?;
            let current = client
                .get_sandbox_settings(request(
                    pb::GetSandboxSettingsRequest {
                        sandbox: Some(reference(&set.sandbox)),
                    },
                    args,
                ))
                .await?
                .into_inner();
            let mut values = current.values.clone();
            for key in &set.unset {
                values.remove(key);
            }
            values.extend(set.values.iter().cloned());
            let change = pb::UpdateSandboxSettingsRequest {
                sandbox: Some(pb::SandboxRef {
                    id: current.sandbox_id.clone(),
                    name: String::new(),
                }),
                policy: policy.or(current.policy),
                values,
                resource_version: set.version.unwrap_or(current.resource_version),
            };
            let settings = client
                .update_sandbox_settings(request(change, args))
                .await?
                .into_inner();
            show(args, &settings)
        }
    }
}

fn show(args: &ClientArgs, settings: &pb::SandboxSettings) -> Result<(), ClientError> {
    let status = settings.policy_status.clone().unwrap_or_default();
    let policy = settings.policy.as_ref().map_or(Json::Null, to_json);
    let mut values: Vec<_> = settings.values.iter().collect();
    values.sort();
    let json = json!({
        "sandbox_id": settings.sandbox_id,
        "sandbox_name": settings.sandbox_name,
        "policy": policy,
        "policy_version": settings.policy_version,
        "policy_status": {
            "state": status.state, "message": status.message,
            "policy_version": status.policy_version, "reported_at_ms": status.reported_at_ms,
        },
        "values": settings.values,
        "resource_version": settings.resource_version,
    });
    let mut rows = vec![
        vec!["sandbox".into(), settings.sandbox_name.clone()],
        vec!["policy".into(), policy.to_string()],
        vec!["policy version".into(), settings.policy_version.to_string()],
        vec![
            "policy status".into(),
            format!("{} {}", status.state, status.message)
                .trim()
                .to_owned(),
        ],
    ];
    rows.extend(
        values
            .into_iter()
            .map(|(k, v)| vec![format!("value {k}"), v.clone()]),
    );
    rows.push(vec![
        "resource version".into(),
        settings.resource_version.to_string(),
    ]);
    Ok(emit(args.output, &["FIELD", "VALUE"], &rows, &json)?)
}

/// A JSON object as a protobuf `Struct`.
fn to_struct(json: Json) -> Result<Struct, String> {
    match json {
        Json::Object(map) => Ok(Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
        _ => Err("the policy must be a JSON object".into()),
    }
}

fn to_value(json: Json) -> Value {
    let kind = match json {
        Json::Null => ValueKind::NullValue(0),
        Json::Bool(b) => ValueKind::BoolValue(b),
        Json::Number(n) => ValueKind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => ValueKind::StringValue(s),
        Json::Array(items) => ValueKind::ListValue(ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        Json::Object(map) => ValueKind::StructValue(Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

fn to_json(structure: &Struct) -> Json {
    Json::Object(
        structure
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn value_json(value: &Value) -> Json {
    match &value.kind {
        None | Some(ValueKind::NullValue(_)) => Json::Null,
        Some(ValueKind::BoolValue(b)) => Json::Bool(*b),
        Some(ValueKind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number)
        }
        Some(ValueKind::StringValue(s)) => Json::String(s.clone()),
        Some(ValueKind::ListValue(list)) => {
            Json::Array(list.values.iter().map(value_json).collect())
        }
        Some(ValueKind::StructValue(s)) => to_json(s),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_policy_survives_the_trip_through_protobuf() {
        let policy = json!({
            "allow": ["github.com", "pypi.org"], "depth": 3.0, "strict": true,
            "nested": { "none": null, "name": "x" }
        });
        assert_eq!(to_json(&to_struct(policy.clone()).unwrap()), policy);
        assert!(to_struct(json!([1])).is_err());
    }
}
