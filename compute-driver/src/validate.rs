//! Request validation, shared by every backend: pure functions of the request.
//!
//! Every rejection names the field (by its path in the request) and says what is
//! allowed, so a caller can fix the request without reading the driver's code.

use std::collections::HashMap;

use proto::pb::compute::v1 as pb;

use crate::quantity::Quantity;

/// A rejected field: `field` is its path in the request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// Path of the field, e.g. `sandbox.spec.environment["1X"]`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Resource limits resolved from the request's quantities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// CPU limit in millicores.
    pub cpu_millis: Option<u64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
}

/// Checks a sandbox for create/validate (a missing command has been filled in with the
/// default shell before).
///
/// # Errors
/// The first [`InvalidField`] found.
pub fn sandbox(sandbox: &pb::DriverSandbox) -> Result<Limits, InvalidField> {
    sandbox_id("sandbox.id", &sandbox.id)?;
    dns_label("sandbox.name", &sandbox.name, true)?;
    dns_label("sandbox.workspace", &sandbox.workspace, false)?;
    no_control_chars("sandbox.namespace", &sandbox.namespace)?;
    let spec = sandbox
        .spec
        .as_ref()
        .ok_or_else(|| invalid("sandbox.spec", "required"))?;
    log_level(&spec.log_level)?;
    environment("sandbox.spec.environment", &spec.environment)?;
    command(&spec.command)?;
    exec_size(&spec.command, &spec.environment)?;
    if spec.sandbox_token.chars().any(char::is_control) {
        return Err(invalid(
            "sandbox.spec.sandbox_token",
            "must not contain control characters",
        ));
    }
    let Some(template) = &spec.template else {
        return Ok(Limits::default());
    };
    no_control_chars("sandbox.spec.template.image", &template.image)?;
    no_control_chars(
        "sandbox.spec.template.agent_socket_path",
        &template.agent_socket_path,
    )?;
    environment("sandbox.spec.template.environment", &template.environment)?;
    labels(&template.labels)?;
    match &template.resources {
        Some(resources) => limits(resources),
        None => Ok(Limits::default()),
    }
}

/// Checks a sandbox reference (Get/Stop/Start/Delete): an id, or else a name.
///
/// # Errors
/// [`InvalidField`] when both are empty or the one given is malformed.
pub fn reference(id: &str, name: &str) -> Result<(), InvalidField> {
    match (id.is_empty(), name.is_empty()) {
        (true, true) => Err(invalid("sandbox_id", "required (or sandbox_name)")),
        (false, _) => sandbox_id("sandbox_id", id),
        (true, false) => dns_label("sandbox_name", name, true),
    }
}

/// Checks a workspace name (EnsureWorkspace/DeleteWorkspace).
///
/// # Errors
/// [`InvalidField`] when empty or not a DNS-1123 label.
pub fn workspace(name: &str) -> Result<(), InvalidField> {
    dns_label("workspace", name, true)
}

/// Ids become directory and resource names: `[A-Za-z0-9._-]`, 1 to 128 characters,
/// not `.` or `..`.
fn sandbox_id(field: &str, id: &str) -> Result<(), InvalidField> {
    if id.is_empty() {
        return Err(invalid(field, "required"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.len() > 128 || !id.chars().all(allowed) || id == "." || id == ".." {
        return Err(invalid(
            field,
            "must be 1-128 characters of letters, digits, '.', '_' or '-' (and not '.' or '..')",
        ));
    }
    Ok(())
}

/// RFC 1123 label: lowercase letters, digits and '-', at most 63, alphanumeric ends.
fn dns_label(field: &str, value: &str, required: bool) -> Result<(), InvalidField> {
    if value.is_empty() {
        return if required {
            Err(invalid(field, "required"))
        } else {
            Ok(())
        };
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if value.len() > 63
        || !value.chars().all(allowed)
        || !alnum(value.chars().next())
        || !alnum(value.chars().last())
    {
        return Err(invalid(
            field,
            format!(
                "{:?} is not a DNS-1123 label: use at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
                value.escape_debug().to_string()
            ),
        ));
    }
    Ok(())
}

fn no_control_chars(field: &str, value: &str) -> Result<(), InvalidField> {
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn log_level(level: &str) -> Result<(), InvalidField> {
    const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
    if level.is_empty() || LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    Err(invalid(
        "sandbox.spec.log_level",
        format!(
            "unknown level {:?}: use one of {}",
            level.escape_debug().to_string(),
            LEVELS.join(", ")
        ),
    ))
}

fn environment(field: &str, env: &HashMap<String, String>) -> Result<(), InvalidField> {
    for (name, value) in env {
        let mut chars = name.chars();
        let valid_name = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(invalid(
                format!("{field}[{}]", shown(name)),
                "variable names are letters, digits and '_', not starting with a digit",
            ));
        }
        if value.contains('\0') {
            return Err(invalid(
                format!("{field}[{name:?}]"),
                "value must not contain NUL",
            ));
        }
    }
    Ok(())
}

/// The kernel's limit on one argument or `NAME=value` string, NUL included
/// (`MAX_ARG_STRLEN`).
const MAX_ARG_STRLEN: usize = 128 * 1024;
/// Limit on argv and the environment together: well under a quarter of the default
/// 8 MiB stack (the kernel's `ARG_MAX` rule), leaving room for what is added at launch.
const MAX_EXEC_TOTAL: usize = 1024 * 1024;

/// A caller's string in a field path: quoted when short and printable, else its size.
fn shown(value: &str) -> String {
    if value.len() <= 64 && !value.chars().any(char::is_control) {
        format!("{value:?}")
    } else {
        format!("(a name of {} bytes)", value.len())
    }
}

/// argv and the environment within what `execve` accepts (both backends: a pod's
/// container runs the same `execve`).
fn exec_size(argv: &[String], env: &HashMap<String, String>) -> Result<(), InvalidField> {
    let mut total = 0;
    for (i, arg) in argv.iter().enumerate() {
        if arg.len() + 1 > MAX_ARG_STRLEN {
            return Err(invalid(
                format!("sandbox.spec.command[{i}]"),
                format!(
                    "{} bytes, over the kernel's limit of {} on one argument",
                    arg.len(),
                    MAX_ARG_STRLEN - 1
                ),
            ));
        }
        total += arg.len() + 1;
    }
    for (name, value) in env {
        let size = name.len() + value.len() + 2;
        if size > MAX_ARG_STRLEN {
            return Err(invalid(
                format!("sandbox.spec.environment[{}]", shown(name)),
                format!("{size} bytes as NAME=value, over the kernel's limit of {MAX_ARG_STRLEN}"),
            ));
        }
        total += size;
    }
    if total > MAX_EXEC_TOTAL {
        return Err(invalid(
            "sandbox.spec.command and sandbox.spec.environment",
            format!("{total} bytes together, over the limit of {MAX_EXEC_TOTAL}"),
        ));
    }
    Ok(())
}

fn command(argv: &[String]) -> Result<(), InvalidField> {
    if argv.first().is_some_and(String::is_empty) {
        return Err(invalid(
            "sandbox.spec.command[0]",
            "the program must not be empty",
        ));
    }
    if let Some(i) = argv.iter().position(|arg| arg.contains('\0')) {
        return Err(invalid(
            format!("sandbox.spec.command[{i}]"),
            "must not contain NUL",
        ));
    }
    Ok(())
}

fn labels(labels: &HashMap<String, String>) -> Result<(), InvalidField> {
    let part = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    for (key, value) in labels {
        let name = key.rsplit('/').next().unwrap_or(key);
        let prefix_ok = key.rsplit_once('/').is_none_or(|(prefix, _)| {
            prefix.len() <= 253 && prefix.split('.').all(|p| dns_label("", p, true).is_ok())
        });
        let field = format!(
            "sandbox.spec.template.labels[{:?}]",
            key.escape_debug().to_string()
        );
        if !part(name) || !prefix_ok {
            return Err(invalid(
                field,
                "label keys are [prefix/]name, name up to 63 of [A-Za-z0-9-_.]",
            ));
        }
        if !value.is_empty() && !part(value) {
            return Err(invalid(
                field,
                "label values are up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends",
            ));
        }
    }
    Ok(())
}

fn limits(resources: &pb::DriverResourceRequirements) -> Result<Limits, InvalidField> {
    let parse = |field: &str, text: &str| -> Result<Option<Quantity>, InvalidField> {
        if text.is_empty() {
            return Ok(None);
        }
        Quantity::parse(text).map(Some).map_err(|e| {
            invalid(
                format!("sandbox.spec.template.resources.{field}"),
                e.to_string(),
            )
        })
    };
    let cpu_request = parse("cpu_request", &resources.cpu_request)?;
    let cpu_limit = parse("cpu_limit", &resources.cpu_limit)?;
    let memory_request = parse("memory_request", &resources.memory_request)?;
    let memory_limit = parse("memory_limit", &resources.memory_limit)?;
    if let (Some(request), Some(limit)) = (cpu_request, cpu_limit)
        && request > limit
    {
        return Err(invalid(
            "sandbox.spec.template.resources.cpu_request",
            "must not exceed cpu_limit",
        ));
    }
    if let (Some(request), Some(limit)) = (memory_request, memory_limit)
        && request > limit
    {
        return Err(invalid(
            "sandbox.spec.template.resources.memory_request",
            "must not exceed memory_limit",
        ));
    }
    Ok(Limits {
        cpu_millis: cpu_limit.map(Quantity::millis),
        memory_bytes: memory_limit.map(Quantity::units),
    })
}

#[cfg(test)]
mod tests;
