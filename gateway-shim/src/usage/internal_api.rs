//! The internal API a control plane reads usage from, served beside `/metrics` on the
//! admin port (and optionally on a Unix socket for a sidecar control plane):
//!
//! - `GET /internal/usage?caller=<owner key>[&since_ts=<epoch s>][&bucket=day]`:
//!   counts by method, outcome and credential source, in total or per UTC day;
//! - `GET /internal/usage/recent?caller=<owner key>[&limit=<1..=1000>]`: the latest
//!   calls, newest first.
//!
//! The routes exist only when a secret is configured (404 otherwise); a request
//! without the secret in `x-internal-secret`, or with another, gets 403 (compared in
//! constant time). A bad parameter gets 400 naming it. Reads flush the meter first, so
//! they include every call already answered.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::Meter;
use crate::auth::SharedSecret;
use crate::store::usage::DAY_MS;
use crate::store::{Store, UsageCount, UsageQuery};

/// The header carrying the shared secret.
pub const SECRET_HEADER: &str = "x-internal-secret";
/// The most calls `/internal/usage/recent` returns.
pub const MAX_LIMIT: u32 = 1_000;
/// What `/internal/usage/recent` returns without `limit`.
pub const DEFAULT_LIMIT: u32 = 100;

/// Where the internal API is served and the secret it requires (`--internal-api-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalApiConfig {
    /// The flag that named the secret file (for messages).
    pub secret_flag: &'static str,
    /// The file holding the secret (not readable by others).
    pub secret_file: std::path::PathBuf,
    /// A Unix socket to serve it on too.
    pub socket: Option<std::path::PathBuf>,
    /// The group sharing that socket (mode 0660).
    pub socket_group: Option<String>,
}

impl InternalApiConfig {
    /// How the socket is published, when one is configured.
    pub fn socket_config(&self) -> Option<proto::uds::SocketConfig> {
        self.socket.as_ref().map(|path| proto::uds::SocketConfig {
            path: path.clone(),
            group: self.socket_group.clone(),
            ..proto::uds::SocketConfig::default()
        })
    }
}

#[derive(Debug)]
struct Internal {
    store: Store,
    meter: Meter,
    secret: SharedSecret,
}

/// The internal routes, gated by `secret`; none at all without one.
pub fn routes(store: &Store, meter: &Meter, secret: Option<&proto::Secret>) -> Router {
    let Some(secret) = secret else {
        return Router::new();
    };
    let state = Arc::new(Internal {
        store: store.clone(),
        meter: meter.clone(),
        secret: SharedSecret::of(secret),
    });
    Router::new()
        .route("/internal/usage", get(usage))
        .route("/internal/usage/recent", get(recent))
        .with_state(state)
}

type Params = Query<Vec<(String, String)>>;

/// A refusal: its status and the message naming what to fix.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        reply(self.0, &json!({ "error": self.1 }))
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad(message: String) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message)
}

async fn usage(
    State(internal): State<Arc<Internal>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, Refusal> {
    internal.admit(&headers)?;
    let params = parse(params, &["caller", "since_ts", "bucket"])?;
    let caller = caller(&params)?;
    let since_ts = match params.get("since_ts") {
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|ts| (0..=i64::MAX / 1000).contains(ts))
            .ok_or_else(|| {
                bad("since_ts: a whole number of seconds since the epoch (UTC)".into())
            })?,
        None => 0,
    };
    let by_day = match params.get("bucket").map(String::as_str) {
        None => false,
        Some("day") => true,
        Some(_) => return Err(bad("bucket: the only bucket is `day`".into())),
    };
    internal.flush().await?;
    let query = UsageQuery {
        caller: caller.clone(),
        since_ms: since_ts * 1000,
    };
    let counts = internal
        .store
        .usage_counts(&query, by_day)
        .await
        .map_err(unavailable)?;
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let mut body = json!({ "caller": caller, "since_ts": since_ts, "total": total });
    if by_day {
        body["bucket"] = json!("day");
        body["days"] = days(&counts);
    } else {
        body["counts"] = counts.iter().map(count_json).collect();
    }
    Ok(reply(StatusCode::OK, &body))
}

async fn recent(
    State(internal): State<Arc<Internal>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, Refusal> {
    internal.admit(&headers)?;
    let params = parse(params, &["caller", "limit"])?;
    let caller = caller(&params)?;
    let limit = match params.get("limit") {
        Some(value) => value
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| bad(format!("limit: a whole number from 1 to {MAX_LIMIT}")))?,
        None => DEFAULT_LIMIT,
    };
    internal.flush().await?;
    let calls = internal
        .store
        .recent_usage(&caller, limit)
        .await
        .map_err(unavailable)?;
    let calls: Vec<Value> = calls
        .iter()
        .map(|call| {
            json!({
                "ts_ms": call.at_ms,
                "tenant": call.tenant,
                "method": call.method,
                "outcome": call.outcome,
                "credential": non_empty(&call.credential),
                "sandbox": non_empty(&call.sandbox),
            })
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        &json!({ "caller": caller, "limit": limit, "calls": calls }),
    ))
}

impl Internal {
    fn admit(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let presented = headers.get(SECRET_HEADER).map(|v| v.as_bytes());
        if self.secret.matches(presented) {
            Ok(())
        } else {
            Err(Refusal(
                StatusCode::FORBIDDEN,
                format!("missing or wrong {SECRET_HEADER}"),
            ))
        }
    }

    async fn flush(&self) -> Result<(), Refusal> {
        self.meter
            .flush()
            .await
            .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
    }
}

/// The parameters by name: each known, each at most once.
fn parse(
    params: Vec<(String, String)>,
    known: &[&str],
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut parsed = BTreeMap::new();
    for (name, value) in params {
        if !known.contains(&name.as_str()) {
            return Err(bad(format!(
                "{name}: not a parameter of this route (it takes {})",
                known.join(", ")
            )));
        }
        if parsed.insert(name.clone(), value).is_some() {
            return Err(bad(format!("{name}: given more than once")));
        }
    }
    Ok(parsed)
}

fn caller(params: &BTreeMap<String, String>) -> Result<String, Refusal> {
    match params.get("caller") {
        Some(caller)
            if !caller.is_empty()
                && caller.len() <= 253
                && !caller.chars().any(char::is_control) =>
        {
            Ok(caller.clone())
        }
        Some(_) => Err(bad(
            "caller: an owner key of 1 to 253 characters (e.g. key.<consumer>)".into(),
        )),
        None => Err(bad(
            "caller: required (the caller's owner key, e.g. key.<consumer>)".into(),
        )),
    }
}

fn unavailable(error: crate::store::StoreError) -> Refusal {
    tracing::warn!(%error, "usage read failed");
    Refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store cannot be read now; retry".into(),
    )
}

fn non_empty(value: &str) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        json!(value)
    }
}

fn count_json(count: &UsageCount) -> Value {
    json!({
        "method": count.method,
        "outcome": count.outcome,
        "credential": non_empty(&count.credential),
        "count": count.count,
    })
}

/// Counts grouped by day (already ordered by day).
fn days(counts: &[UsageCount]) -> Value {
    let mut days: Vec<Value> = Vec::new();
    let mut current: Option<i64> = None;
    for count in counts {
        let day = count.day.unwrap_or_default();
        if current != Some(day) {
            current = Some(day);
            days.push(json!({
                "day": civil_date(day),
                "start_ts": day * DAY_MS / 1000,
                "total": 0,
                "counts": [],
            }));
        }
        if let Some(entry) = days.last_mut() {
            entry["total"] = json!(entry["total"].as_u64().unwrap_or_default() + count.count);
            if let Some(list) = entry["counts"].as_array_mut() {
                list.push(count_json(count));
            }
        }
    }
    Value::Array(days)
}

/// `YYYY-MM-DD` of `days` since 1970-01-01 (proleptic Gregorian calendar).
fn civil_date(days: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm, on eras of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::civil_date;

    #[test]
    fn days_since_the_epoch_are_calendar_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(59), "1970-03-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_789), "2026-12-02");
        assert_eq!(civil_date(-1), "1969-12-31");
    }
}
