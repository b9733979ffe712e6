//! Usage metering, printed as tables:
//! 1. what a metered call pays on its own path: starting and finishing a metered call
//!    (the event handed to the writer; no store access), from 1 and 16 callers;
//! 2. what the writer sustains: events appended per second in its batches, on a SQLite
//!    file and on PostgreSQL (the Debian server the store suite uses), measured from
//!    the first event handed over until a flush returns (every event in the store);
//! 3. what the writer costs at a steady call rate (10,000 calls/s, as a busy gateway):
//!    the process's CPU time per call, on the same two stores.
//!
//! Run: `cargo bench -p gateway-shim --bench metering` (`BENCH_SECONDS`, default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/measure.rs"]
mod measure;

use gateway_shim::auth::{Identity, Principal, User};
use gateway_shim::store::Store;
use gateway_shim::usage::Meter;
use measure::{measure, seconds};
use tokio::time::Instant;

/// Events per writer measurement.
const EVENTS: usize = 200_000;

fn caller() -> Principal {
    Principal::new(Identity::User(User {
        subject: "ci-bot".into(),
        owner: "key.ci-bot".into(),
        admin: false,
        platform_admin: false,
        user_role: true,
        scopes: None,
        bearer: None,
    }))
    .in_tenant("acme")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let length = seconds();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("usage.db").display());

    println!("\n## a metered call's own cost: begin + finish ({length:?} per level)\n");
    println!("| callers | calls | p50 | p99 | calls/s |\n|---:|---:|---:|---:|---:|");
    let (meter, _writer) = Meter::start(Store::open(&sqlite).await.unwrap());
    let who = caller();
    for callers in [1, 16] {
        let meter = meter.clone();
        let who = who.clone();
        let call = move || {
            let meter = meter.clone();
            let who = who.clone();
            async move {
                let mut metered = meter.begin(&who, "ResolveProviderCredential");
                metered.credential("cached");
                metered.finish(tonic::Code::Ok);
            }
        };
        let (calls, p50, p99, rate) = measure(callers, length, call).await;
        println!("| {callers} | {calls} | {p50:.1?} | {p99:.1?} | {rate:.0} |");
    }
    meter.flush().await.unwrap();

    println!("\n## the writer: {EVENTS} events handed over at once, until all are stored\n");
    println!("| store | events | elapsed | events/s |\n|---|---:|---:|---:|");
    writer("SQLite file", Store::open(&sqlite).await.unwrap()).await;
    match conformance::postgres::PostgresPeer::start() {
        Ok(peer) => {
            let url = peer.fresh_database("metering").unwrap();
            writer("PostgreSQL", Store::open(&url).await.unwrap()).await;
        }
        Err(why) => println!("| PostgreSQL | skipped: {why} | | |"),
    }

    println!(
        "\n## the writer at a steady {STEADY_RATE} calls/s: the process's CPU per call ({length:?})\n"
    );
    println!(
        "| store | calls | elapsed | CPU | of one core | CPU per call |\n|---|---:|---:|---:|---:|---:|"
    );
    steady("SQLite file", Store::open(&sqlite).await.unwrap(), length).await;
    match conformance::postgres::PostgresPeer::start() {
        Ok(peer) => {
            let url = peer.fresh_database("steady").unwrap();
            steady(
                "PostgreSQL (gateway side)",
                Store::open(&url).await.unwrap(),
                length,
            )
            .await;
        }
        Err(why) => println!("| PostgreSQL | skipped: {why} | | | | |"),
    }
}

async fn writer(label: &str, store: Store) {
    let (meter, _writer) = Meter::start(store);
    let who = caller();
    let started = Instant::now();
    for _ in 0..EVENTS {
        meter
            .begin(&who, "GetInferenceBundle")
            .finish(tonic::Code::Ok);
    }
    meter.flush().await.unwrap();
    let elapsed = started.elapsed();
    let rate = EVENTS as f64 / elapsed.as_secs_f64();
    println!("| {label} | {EVENTS} | {elapsed:.2?} | {rate:.0} |");
}

/// Calls per second in the steady-rate measurement (handed over 10 per millisecond).
const STEADY_RATE: u32 = 10_000;

/// The whole process's CPU time (user and system, every thread) so far.
fn cpu_time() -> std::time::Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let (user, system) = (usage.user_time(), usage.system_time());
    let micros = |t: nix::sys::time::TimeVal| {
        std::time::Duration::from_secs(u64::try_from(t.tv_sec()).unwrap())
            + std::time::Duration::from_micros(u64::try_from(t.tv_usec()).unwrap())
    };
    micros(user) + micros(system)
}

/// Metered calls at [`STEADY_RATE`] for `length`, then a flush: the CPU the process
/// spent per call (the calls' own share, about a microsecond each, and the
/// millisecond ticks handing them over included).
async fn steady(label: &str, store: Store, length: std::time::Duration) {
    let (meter, _writer) = Meter::start(store);
    let who = caller();
    let per_tick = STEADY_RATE / 1_000;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let cpu_before = cpu_time();
    let mut calls = 0u64;
    while started.elapsed() < length {
        tick.tick().await;
        for _ in 0..per_tick {
            meter
                .begin(&who, "ResolveProviderCredential")
                .finish(tonic::Code::Ok);
            calls += 1;
        }
    }
    meter.flush().await.unwrap();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let elapsed = started.elapsed();
    let per_call = cpu.as_secs_f64() * 1e6 / calls as f64;
    println!(
        "| {label} | {calls} | {elapsed:.2?} | {:.0} ms | {:.0}% | {per_call:.1} µs |",
        cpu.as_secs_f64() * 1e3,
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64()
    );
}
