//! Usage metering, printed as tables:
//! 1. what a metered call pays on its own path: starting and finishing a metered call
//!    (the event handed to the writer; no store access), from 1 and 16 callers;
//! 2. what the writer sustains: events appended per second in its batches, on a SQLite
//!    file and on PostgreSQL (the Debian server the store suite uses), measured from
//!    the first event handed over until a flush returns (every event in the store).
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
