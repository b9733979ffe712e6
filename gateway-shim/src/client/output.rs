//! Printing API objects: aligned tables for people, JSON for scripts.

use std::io::Write as _;

use proto::pb::gateway::v1 as pb;
use serde_json::{Value, json};

use super::cli::Output;

/// Writes `rows` under `header` as aligned columns, or `json` as JSON.
pub(super) fn emit(
    output: Output,
    header: &[&str],
    rows: &[Vec<String>],
    json: &Value,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(json).unwrap_or_default()
        ),
        Output::Table => {
            // A cell is one line of printable text, whatever a record holds: another
            // user's newline or escape sequence cannot forge rows or repaint the screen.
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|row| row.iter().map(|cell| printable(cell)).collect())
                .collect();
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(cell, width)| format!("{cell:<width$}"))
                    .collect();
                padded.join("  ").trim_end().to_owned()
            };
            writeln!(out, "{}", line(header.to_vec()))?;
            for row in &rows {
                writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
            }
            Ok(())
        }
    }
}

/// `cell` with control characters escaped (`\n`, `\u{1b}`, ...).
fn printable(cell: &str) -> String {
    if cell.chars().any(char::is_control) {
        cell.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        cell.to_owned()
    }
}

/// A plain message line (table output) or JSON.
pub(super) fn message(output: Output, text: &str, json: &Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(json).unwrap_or_default()
        ),
        Output::Table => writeln!(out, "{text}"),
    }
}

pub(super) const SANDBOX_HEADER: &[&str] = &["NAME", "ID", "PHASE", "OWNER", "PROVIDERS", "REASON"];

pub(super) fn sandbox_row(s: &pb::Sandbox) -> Vec<String> {
    let status = s.status.clone().unwrap_or_default();
    let reason = status
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready" && c.status != "True")
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    vec![
        s.name.clone(),
        s.id.clone(),
        status.phase,
        s.owner.clone(),
        s.providers.join(","),
        reason,
    ]
}

pub(super) fn sandbox_json(s: &pb::Sandbox) -> Value {
    let spec = s.spec.clone().unwrap_or_default();
    let status = s.status.clone().unwrap_or_default();
    json!({
        "id": s.id, "name": s.name, "owner": s.owner, "labels": s.labels,
        "providers": s.providers, "resource_version": s.resource_version,
        "created_at_ms": s.created_at_ms,
        "spec": {
            "image": spec.image, "command": spec.command, "environment": spec.environment,
            "workspace": spec.workspace, "cpu_limit": spec.cpu_limit,
            "memory_limit": spec.memory_limit, "gpu_count": spec.gpu_count,
        },
        "status": {
            "phase": status.phase, "instance_id": status.instance_id,
            "conditions": status.conditions.iter().map(|c| json!({
                "type": c.r#type, "status": c.status, "reason": c.reason, "message": c.message,
            })).collect::<Vec<_>>(),
        },
    })
}

pub(super) const PROVIDER_HEADER: &[&str] =
    &["NAME", "TYPE", "CREDENTIAL", "ENDPOINT", "OWNER", "VERSION"];

pub(super) fn provider_row(p: &pb::Provider) -> Vec<String> {
    vec![
        p.name.clone(),
        p.r#type.clone(),
        p.credential.clone(),
        p.endpoint.clone(),
        p.owner.clone(),
        p.resource_version.to_string(),
    ]
}

pub(super) fn provider_json(p: &pb::Provider) -> Value {
    json!({
        "name": p.name, "type": p.r#type, "credential": p.credential, "endpoint": p.endpoint,
        "config": p.config, "labels": p.labels, "owner": p.owner,
        "resource_version": p.resource_version,
        "access": p.access.iter().map(|a| (a.category.clone(), a.values.clone()))
            .collect::<std::collections::BTreeMap<_, _>>(),
    })
}

pub(super) const ROUTE_HEADER: &[&str] = &["NAME", "PROVIDER", "MODEL", "OWNER", "VERSION"];

pub(super) fn route_row(r: &pb::InferenceRoute) -> Vec<String> {
    vec![
        r.name.clone(),
        r.provider.clone(),
        r.model.clone(),
        r.owner.clone(),
        r.resource_version.to_string(),
    ]
}

pub(super) fn route_json(r: &pb::InferenceRoute) -> Value {
    json!({
        "name": r.name, "provider": r.provider, "model": r.model, "owner": r.owner,
        "resource_version": r.resource_version, "headers": r.headers,
    })
}

/// Request headers as one cell: `name: value` pairs in name order.
pub(super) fn headers_cell(headers: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = headers.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_in_cells_are_escaped() {
        assert_eq!(printable("plain ü"), "plain ü");
        assert_eq!(printable("a\nforged  row"), "a\\nforged  row");
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        assert!(!printable("x\r\ty\0").chars().any(char::is_control));
    }
}
