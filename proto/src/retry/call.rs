//! The one retry helper for typed client calls.
//!
//! Tower's retry layer cannot wrap a tonic channel (request bodies are not cloneable),
//! so this wraps the typed call instead: the message is rebuilt for every attempt, each
//! attempt carries the remaining deadline as `grpc-timeout`, only codes the status
//! table marks retryable are retried, and the overall deadline always wins.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::{Backoff, RetryClass, classify};

/// Whether repeating a call has the same effect as making it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to repeat even when an attempt may have taken effect (timed out).
    Idempotent,
    /// Repeat only when the server surely did not act (UNAVAILABLE, RESOURCE_EXHAUSTED).
    NonIdempotent,
}

/// Limits of one logical call.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Attempts at most, the first included (default 5).
    pub max_attempts: u32,
    /// Bound on one attempt; `None` lets an attempt use the whole remaining deadline
    /// (default 5 s).
    pub attempt_timeout: Option<Duration>,
    /// Overall deadline across attempts and delays (default 15 s).
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            backoff: Backoff::CALL,
            max_attempts: 5,
            attempt_timeout: Some(Duration::from_secs(5)),
            deadline: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// This policy with another overall deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// Server pushback hint (gRPC retry design): wait this long before retrying.
const PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";

/// Runs one logical call with retries.
///
/// `message` builds the request message for each attempt; `send` performs one attempt
/// on a typed client. Each attempt gets `grpc-timeout` = min(attempt timeout, time left).
/// A `grpc-retry-pushback-ms` hint from the server lengthens the next delay (up to the
/// backoff maximum).
///
/// # Errors
/// The first non-retryable status; or, once attempts or time run out, the last status
/// with a note of how many attempts were made. A deadline that passes during an
/// attempt yields DEADLINE_EXCEEDED.
pub async fn call<M, T, B, S, Fut>(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    mut message: B,
    mut send: S,
) -> Result<T, Status>
where
    B: FnMut() -> M,
    S: FnMut(Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<T>, Status>>,
{
    let started = Instant::now();
    let deadline = started + policy.deadline;
    let mut backoff = policy.backoff.session();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeout = policy
            .attempt_timeout
            .map_or(remaining, |limit| limit.min(remaining));
        let mut request = Request::new(message());
        request.set_timeout(timeout);
        let status = match tokio::time::timeout(timeout, send(request)).await {
            Ok(Ok(response)) => return Ok(response.into_inner()),
            Ok(Err(status)) => server_timeout_as_deadline(status),
            Err(_) => Status::deadline_exceeded(format!("no answer within {timeout:?}")),
        };

        let retryable = match classify(status.code()) {
            RetryClass::WithBackoff => true,
            RetryClass::IfIdempotent => idempotency == Idempotency::Idempotent,
            RetryClass::Never | RetryClass::AfterReauthentication => false,
        };
        if !retryable {
            return Err(status);
        }
        if attempt >= policy.max_attempts {
            return Err(gave_up(status, attempt, started, "attempts exhausted"));
        }
        let mut delay = backoff.next_delay();
        if let Some(hint) = pushback(&status) {
            delay = delay.max(hint.min(policy.backoff.max()));
        }
        if Instant::now() + delay >= deadline {
            return Err(gave_up(status, attempt, started, "deadline reached"));
        }
        tracing::debug!(attempt, code = ?status.code(), ?delay, "retrying call");
        tokio::time::sleep(delay).await;
    }
}

/// tonic servers end a call whose `grpc-timeout` passed with CANCELLED "Timeout
/// expired"; for the caller that is its deadline passing.
fn server_timeout_as_deadline(status: Status) -> Status {
    if status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired" {
        Status::deadline_exceeded("the server's deadline for this call passed")
    } else {
        status
    }
}

fn pushback(status: &Status) -> Option<Duration> {
    let value = status.metadata().get(PUSHBACK_HEADER)?.to_str().ok()?;
    value.parse::<u64>().ok().map(Duration::from_millis)
}

fn gave_up(last: Status, attempts: u32, started: Instant, why: &str) -> Status {
    Status::new(
        last.code(),
        format!(
            "{} ({why} after {attempts} attempts in {:?})",
            last.message(),
            started.elapsed()
        ),
    )
}

#[cfg(test)]
mod tests;
