//! Input limits of the public API, as pure checks. Every refusal is INVALID_ARGUMENT
//! (RESOURCE_EXHAUSTED for per-owner counts) naming the field and the limit, and never
//! echoes an oversized or unprintable value ([`shown`]).
//!
//! | what | limit |
//! |---|---|
//! | a request | 4 MiB (`Limits::max_request_bytes`; OUT_OF_RANGE beyond, from the decoder) |
//! | labels | 64 per object; keys 128 bytes, values 256; no control characters |
//! | provider `type`, `credential` | 256 bytes, no control characters |
//! | provider `endpoint` | 2,048 bytes, an `http://` or `https://` URL (or empty) |
//! | provider `config` | 64 entries; keys 128 bytes, values 4,096 |
//! | sandbox `command` | 1,024 arguments, each under the kernel's 128 KiB |
//! | sandbox `environment` | 1,024 variables, each `NAME=value` under 128 KiB |
//! | `command` and `environment` together | 1 MiB |
//! | other sandbox spec strings | 256 bytes, no control characters |
//! | `providers` in a create | 64 |
//! | sandboxes per owner | `--max-sandboxes-per-owner` (default 1,000) |
//! | providers per owner | `--max-providers-per-owner` (default 100) |

use std::collections::HashMap;

use super::error::ApiError;
use proto::pb::gateway::v1 as pb;

/// The limits in force.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request message the API decodes.
    pub max_request_bytes: usize,
    /// Sandboxes one owner may have.
    pub max_sandboxes_per_owner: usize,
    /// Providers one owner may have.
    pub max_providers_per_owner: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 4 * 1024 * 1024,
            max_sandboxes_per_owner: 1000,
            max_providers_per_owner: 100,
        }
    }
}

const MAX_LABELS: usize = 64;
const MAX_KEY: usize = 128;
const MAX_LABEL_VALUE: usize = 256;
const MAX_TEXT: usize = 256;
const MAX_ENDPOINT: usize = 2048;
const MAX_CONFIG_VALUE: usize = 4096;
const MAX_ITEMS: usize = 1024;
/// The kernel's limit on one argument or environment string, NUL included.
const MAX_ARG_STRLEN: usize = 128 * 1024;
const MAX_ARGS_TOTAL: usize = 1024 * 1024;
const MAX_PROVIDERS: usize = 64;

/// How a caller's value may appear in a message: quoted when short and printable,
/// else only its size.
pub fn shown(value: &str) -> String {
    if value.len() <= 64 && !value.chars().any(char::is_control) {
        format!("{value:?}")
    } else {
        format!("(a value of {} bytes)", value.len())
    }
}

fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("{field}: {why}"))
}

/// A string of at most `max` bytes without control characters.
///
/// # Errors
/// INVALID_ARGUMENT naming `field` and the limit.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(invalid(
            field,
            &format!("{} bytes, over the limit of {max}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A map of at most `max_entries`, keys and values within their limits.
fn map(
    field: &str,
    entries: &HashMap<String, String>,
    max_entries: usize,
    max_value: usize,
) -> Result<(), ApiError> {
    if entries.len() > max_entries {
        return Err(invalid(
            field,
            &format!("{} entries, over the limit of {max_entries}", entries.len()),
        ));
    }
    for (key, value) in entries {
        text(&format!("{field} key"), key, MAX_KEY)?;
        if key.is_empty() {
            return Err(invalid(&format!("{field} key"), "must not be empty"));
        }
        text(&format!("{field}[{}]", shown(key)), value, max_value)?;
    }
    Ok(())
}

/// Object labels.
///
/// # Errors
/// INVALID_ARGUMENT naming the label and the limit.
pub fn labels(labels: &HashMap<String, String>) -> Result<(), ApiError> {
    map("labels", labels, MAX_LABELS, MAX_LABEL_VALUE)
}

/// A provider's fields.
///
/// # Errors
/// INVALID_ARGUMENT naming the field and the limit.
pub fn provider(provider: &pb::Provider) -> Result<(), ApiError> {
    text("type", &provider.r#type, MAX_TEXT)?;
    text("credential", &provider.credential, MAX_TEXT)?;
    text("endpoint", &provider.endpoint, MAX_ENDPOINT)?;
    if !provider.endpoint.is_empty() {
        let url = reqwest::Url::parse(&provider.endpoint)
            .map_err(|e| invalid("endpoint", &format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "endpoint",
                "must be an http:// or https:// URL with a host",
            ));
        }
    }
    map("config", &provider.config, MAX_LABELS, MAX_CONFIG_VALUE)?;
    labels(&provider.labels)
}

/// A sandbox create: labels, providers and the spec's strings, argv and environment
/// within the kernel's limits.
///
/// # Errors
/// INVALID_ARGUMENT naming the field and the limit.
pub fn create(request: &pb::CreateSandboxRequest) -> Result<(), ApiError> {
    labels(&request.labels)?;
    if request.providers.len() > MAX_PROVIDERS {
        return Err(invalid(
            "providers",
            &format!(
                "{} entries, over the limit of {MAX_PROVIDERS}",
                request.providers.len()
            ),
        ));
    }
    let Some(spec) = &request.spec else {
        return Ok(());
    };
    for (field, value) in [
        ("spec.image", &spec.image),
        ("spec.workspace", &spec.workspace),
        ("spec.cpu_request", &spec.cpu_request),
        ("spec.cpu_limit", &spec.cpu_limit),
        ("spec.memory_request", &spec.memory_request),
        ("spec.memory_limit", &spec.memory_limit),
        ("spec.log_level", &spec.log_level),
    ] {
        text(field, value, MAX_TEXT)?;
    }
    arguments(&spec.command, &spec.environment)
}

/// argv and the environment within what `execve` accepts.
fn arguments(command: &[String], environment: &HashMap<String, String>) -> Result<(), ApiError> {
    for (field, count) in [
        ("spec.command", command.len()),
        ("spec.environment", environment.len()),
    ] {
        if count > MAX_ITEMS {
            return Err(invalid(
                field,
                &format!("{count} entries, over the limit of {MAX_ITEMS}"),
            ));
        }
    }
    let mut total = 0;
    for (i, arg) in command.iter().enumerate() {
        if arg.len() + 1 > MAX_ARG_STRLEN {
            return Err(invalid(
                &format!("spec.command[{i}]"),
                &format!(
                    "{} bytes, over the kernel's limit of {} on one argument",
                    arg.len(),
                    MAX_ARG_STRLEN - 1
                ),
            ));
        }
        total += arg.len() + 1;
    }
    for (name, value) in environment {
        let size = name.len() + value.len() + 2;
        if size > MAX_ARG_STRLEN {
            return Err(invalid(
                &format!("spec.environment[{}]", shown(name)),
                &format!(
                    "{size} bytes as NAME=value, over the kernel's limit of {MAX_ARG_STRLEN} on one variable"
                ),
            ));
        }
        total += size;
    }
    if total > MAX_ARGS_TOTAL {
        return Err(invalid(
            "spec.command and spec.environment",
            &format!("{total} bytes together, over the limit of {MAX_ARGS_TOTAL}"),
        ));
    }
    Ok(())
}

/// Refuses one more record of `kind` (`what`, in messages) when `owner` has `max`
/// already. The owner's records are counted no further than `max`, and not at all
/// when `max` is `usize::MAX` (no count reaches it: no limit).
///
/// # Errors
/// RESOURCE_EXHAUSTED naming what and the limit; [`ApiError`] from the store.
pub async fn owner_count(
    store: &crate::store::Store,
    kind: crate::store::Kind,
    owner: &str,
    what: &str,
    max: usize,
) -> Result<(), ApiError> {
    if max == usize::MAX {
        return Ok(());
    }
    count(what, store.count_up_to(kind, owner, max).await?, max)
}

/// A per-owner count (`have`, counted no further than `max`) before one more is
/// created.
///
/// # Errors
/// RESOURCE_EXHAUSTED naming what and the limit.
pub fn count(what: &str, have: usize, max: usize) -> Result<(), ApiError> {
    if have >= max {
        return Err(ApiError::limit(format!(
            "you have {max} {what} or more, the limit per owner is {max}: delete some first"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_and_unprintable_values_are_never_echoed() {
        assert_eq!(shown("abc"), "\"abc\"");
        assert_eq!(shown(&"x".repeat(65)), "(a value of 65 bytes)");
        assert_eq!(shown("a\u{1b}[31m"), "(a value of 6 bytes)");
        let huge = "y".repeat(200_000);
        let error = arguments(std::slice::from_ref(&huge), &HashMap::new()).unwrap_err();
        assert!(
            error.to_string().starts_with("spec.command[0]:"),
            "{error:?}"
        );
        assert!(!error.to_string().contains("yyyy"), "{error:?}");
        let error = labels(&HashMap::from([(huge.clone(), "v".into())])).unwrap_err();
        assert!(error.to_string().starts_with("labels key:"), "{error:?}");
        assert!(!error.to_string().contains("yyyy"), "{error:?}");
    }

    #[test]
    fn the_kernel_limits_hold_for_argv_and_environment_together() {
        let arg = "a".repeat(100_000);
        let command: Vec<String> = (0..11).map(|_| arg.clone()).collect();
        let error = arguments(&command, &HashMap::new()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("spec.command and spec.environment"),
            "{error:?}"
        );
        assert!(arguments(&command[..10], &HashMap::new()).is_ok());
        let env = HashMap::from([("BIG".to_owned(), "v".repeat(MAX_ARG_STRLEN))]);
        let error = arguments(&[], &env).unwrap_err();
        assert!(
            error.to_string().starts_with("spec.environment[\"BIG\"]"),
            "{error:?}"
        );
    }
}
