//! Shared by the gateway's benchmarks: closed-loop load from N callers with a warm-up,
//! and a Markdown table row of the figures.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use tokio::time::Instant;

/// Seconds each measurement runs (`BENCH_SECONDS`, default 3).
pub fn seconds() -> Duration {
    let secs = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    Duration::from_secs(secs)
}

/// Runs `call` from `callers` tasks for `length` after a 0.5 s warm-up; returns the
/// number of calls, p50, p99 and calls per second.
pub async fn measure<F, Fut>(
    callers: usize,
    length: Duration,
    call: F,
) -> (usize, Duration, Duration, f64)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let warm = Instant::now() + Duration::from_millis(500);
    let stop = warm + length;
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let started = Instant::now();
                if started >= stop {
                    return samples;
                }
                call().await;
                if started >= warm {
                    samples.push(started.elapsed());
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (
        all.len(),
        p(0.50),
        p(0.99),
        all.len() as f64 / length.as_secs_f64(),
    )
}

/// Prints a table row: label, callers, calls, p50, p99, calls per second.
pub fn row(label: &str, callers: usize, (calls, p50, p99, rate): (usize, Duration, Duration, f64)) {
    println!("| {label} | {callers} | {calls} | {p50:.1?} | {p99:.1?} | {rate:.0} |");
}
