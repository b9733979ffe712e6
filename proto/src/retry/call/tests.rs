//! The retry helper against scripted attempts, on paused time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Code, Request, Response, Status};

use super::{Idempotency, RetryPolicy, call};
use crate::retry::Backoff;

fn policy() -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff::try_new(Duration::from_millis(10), Duration::from_millis(200), 0.0)
            .unwrap(),
        max_attempts: 50,
        attempt_timeout: Some(Duration::from_secs(1)),
        deadline: Duration::from_secs(5),
    }
}

/// Runs `call` against a script of outcomes; returns the result and the attempt count.
async fn run_script(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    script: Vec<Result<u32, Code>>,
) -> (Result<u32, Status>, usize) {
    let script = RefCell::new(VecDeque::from(script));
    let attempts = RefCell::new(0usize);
    let result = call(
        policy,
        idempotency,
        || (),
        |_req: Request<()>| {
            *attempts.borrow_mut() += 1;
            let next = script.borrow_mut().pop_front();
            async move {
                match next {
                    Some(Ok(v)) => Ok(Response::new(v)),
                    Some(Err(code)) => Err(Status::new(code, "scripted")),
                    None => Err(Status::unavailable("script exhausted")),
                }
            }
        },
    )
    .await;
    (result, attempts.into_inner())
}

#[tokio::test(start_paused = true)]
async fn retries_unavailable_until_success() {
    let script = vec![Err(Code::Unavailable), Err(Code::Unavailable), Ok(7)];
    let (result, attempts) = run_script(&policy(), Idempotency::NonIdempotent, script).await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn retries_resource_exhausted() {
    let script = vec![Err(Code::ResourceExhausted), Ok(1)];
    let (result, attempts) = run_script(&policy(), Idempotency::NonIdempotent, script).await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn never_retries_permanent_codes() {
    for code in [
        Code::InvalidArgument,
        Code::NotFound,
        Code::Unimplemented,
        Code::AlreadyExists,
        Code::FailedPrecondition,
        Code::PermissionDenied,
        Code::Unauthenticated,
    ] {
        let (result, attempts) =
            run_script(&policy(), Idempotency::Idempotent, vec![Err(code), Ok(1)]).await;
        assert_eq!(result.unwrap_err().code(), code);
        assert_eq!(attempts, 1, "{code:?} was retried");
    }
}

#[tokio::test(start_paused = true)]
async fn retries_deadline_exceeded_only_when_idempotent() {
    let script = || vec![Err(Code::DeadlineExceeded), Ok(2)];
    let (result, attempts) = run_script(&policy(), Idempotency::Idempotent, script()).await;
    assert_eq!((result.unwrap(), attempts), (2, 2));

    let (result, attempts) = run_script(&policy(), Idempotency::NonIdempotent, script()).await;
    assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn stops_at_the_overall_deadline() {
    let policy = policy().with_deadline(Duration::from_secs(2));
    let started = Instant::now();
    let (result, attempts) = run_script(
        &policy,
        Idempotency::Idempotent,
        vec![Err(Code::Unavailable); 1000],
    )
    .await;
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("deadline reached"),
        "{}",
        status.message()
    );
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(attempts > 5 && attempts < 1000, "{attempts}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_is_cut_at_the_deadline() {
    let policy = RetryPolicy {
        attempt_timeout: None,
        ..policy().with_deadline(Duration::from_millis(300))
    };
    let started = Instant::now();
    let result: Result<(), Status> = call(
        &policy,
        Idempotency::Idempotent,
        || (),
        |_req: Request<()>| std::future::pending(),
    )
    .await;
    assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn bounds_the_number_of_attempts() {
    let policy = RetryPolicy {
        max_attempts: 3,
        ..policy()
    };
    let (result, attempts) = run_script(
        &policy,
        Idempotency::Idempotent,
        vec![Err(Code::Unavailable); 10],
    )
    .await;
    assert!(result.unwrap_err().message().contains("after 3 attempts"));
    assert_eq!(attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_carries_the_remaining_deadline_as_grpc_timeout() {
    let policy = RetryPolicy {
        attempt_timeout: None,
        ..policy().with_deadline(Duration::from_secs(3))
    };
    let seen = RefCell::new(Vec::new());
    let _ = call(
        &policy,
        Idempotency::Idempotent,
        || (),
        |req: Request<()>| {
            let header = req
                .metadata()
                .get("grpc-timeout")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.borrow_mut().push(header);
            async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Err::<Response<()>, _>(Status::unavailable("down"))
            }
        },
    )
    .await;
    let seen = seen.into_inner();
    assert!(seen.len() >= 3);
    let millis: Vec<u64> = seen
        .iter()
        .map(|h| {
            let h = h.as_deref().expect("grpc-timeout header missing");
            let (digits, unit) = h.split_at(h.len() - 1);
            let n: u64 = digits.parse().unwrap();
            match unit {
                "m" => n,
                "u" => n / 1000,
                "n" => n / 1_000_000,
                "S" => n * 1000,
                other => panic!("unexpected unit {other}"),
            }
        })
        .collect();
    assert_eq!(millis[0], 3000);
    assert!(millis.windows(2).all(|w| w[1] < w[0]), "{millis:?}");
}

#[tokio::test(start_paused = true)]
async fn honours_server_pushback() {
    let started = Instant::now();
    let mut first = true;
    let result = call(
        &policy(),
        Idempotency::NonIdempotent,
        || (),
        |_req: Request<()>| {
            let reply = if std::mem::take(&mut first) {
                let mut status = Status::resource_exhausted("slow down");
                status
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", "150".parse().unwrap());
                Err(status)
            } else {
                Ok(Response::new(()))
            };
            async move { reply }
        },
    )
    .await;
    result.unwrap();
    // Backoff alone would wait 10 ms; the hint asks for 150 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}
