//! The record cache on its own: fills, invalidation, the epoch guard, expiry, bounds.

use std::time::Duration;

use super::{OnWrite, RecordCache};
use crate::store::{Kind, Record};

fn record(key: &str, version: u64) -> Record {
    let mut record = Record::new(Kind::Sandbox, key, key, "alice");
    record.version = version;
    record
}

/// The tenant of most entries here.
const T: &str = "acme";

fn cache() -> RecordCache {
    RecordCache::new(Duration::from_secs(60), 100)
}

#[test]
fn a_fill_is_served_until_the_key_is_written() {
    let cache = cache();
    assert_eq!(cache.get(Kind::Sandbox, T, "a"), None);
    let fill = cache.begin_fill();
    cache.fill(fill, Kind::Sandbox, T, "a", Some(&record("a", 1)));
    assert_eq!(cache.get(Kind::Sandbox, T, "a"), Some(Some(record("a", 1))));
    // Another kind, or another tenant, with the same key is another entry.
    assert_eq!(cache.get(Kind::Provider, T, "a"), None);
    assert_eq!(cache.get(Kind::Sandbox, "other", "a"), None);
    cache.invalidate(Kind::Sandbox, "other", "a");
    assert!(cache.get(Kind::Sandbox, T, "a").is_some());
    cache.invalidate(Kind::Sandbox, T, "a");
    assert_eq!(cache.get(Kind::Sandbox, T, "a"), None);
}

#[test]
fn misses_are_remembered_too() {
    let cache = cache();
    cache.fill(cache.begin_fill(), Kind::InferenceRoute, T, "r", None);
    assert_eq!(cache.get(Kind::InferenceRoute, T, "r"), Some(None));
}

#[test]
fn a_read_that_raced_a_write_does_not_refill_the_entry() {
    let cache = cache();
    let before_write = cache.begin_fill();
    // The write commits and invalidates while the read (which saw version 1) runs.
    cache.invalidate(Kind::Sandbox, T, "a");
    cache.fill(before_write, Kind::Sandbox, T, "a", Some(&record("a", 1)));
    assert_eq!(cache.get(Kind::Sandbox, T, "a"), None);
    // A read begun after the write fills as usual.
    cache.fill(
        cache.begin_fill(),
        Kind::Sandbox,
        T,
        "a",
        Some(&record("a", 2)),
    );
    assert_eq!(cache.get(Kind::Sandbox, T, "a"), Some(Some(record("a", 2))));
}

#[test]
fn entries_expire_after_the_lifetime() {
    let cache = RecordCache::new(Duration::from_millis(20), 100);
    cache.fill(
        cache.begin_fill(),
        Kind::Sandbox,
        T,
        "a",
        Some(&record("a", 1)),
    );
    assert!(cache.get(Kind::Sandbox, T, "a").is_some());
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(cache.get(Kind::Sandbox, T, "a"), None);
}

#[test]
fn a_zero_lifetime_keeps_nothing() {
    let cache = RecordCache::new(Duration::ZERO, 100);
    assert!(!cache.enabled());
    cache.fill(
        cache.begin_fill(),
        Kind::Sandbox,
        T,
        "a",
        Some(&record("a", 1)),
    );
    assert_eq!(cache.get(Kind::Sandbox, T, "a"), None);
    assert!(cache.is_empty());
}

#[test]
fn the_map_stays_within_its_capacity_and_keeps_the_newest_fill() {
    let cache = RecordCache::new(Duration::from_secs(60), 3);
    for key in ["a", "b", "c", "d", "e"] {
        cache.fill(
            cache.begin_fill(),
            Kind::Sandbox,
            T,
            key,
            Some(&record(key, 1)),
        );
        assert!(cache.len() <= 3);
        assert!(
            cache.get(Kind::Sandbox, T, key).is_some(),
            "{key} was just filled"
        );
    }
    assert_eq!(cache.len(), 3);
}

#[test]
fn a_dropped_write_guard_invalidates_even_when_the_write_never_finished() {
    let cache = cache();
    cache.fill(
        cache.begin_fill(),
        Kind::Provider,
        T,
        "p",
        Some(&record("p", 1)),
    );
    cache.fill(
        cache.begin_fill(),
        Kind::Provider,
        T,
        "q",
        Some(&record("q", 1)),
    );
    drop(OnWrite::key(&cache, Kind::Provider, T, "p"));
    assert_eq!(cache.get(Kind::Provider, T, "p"), None);
    assert!(cache.get(Kind::Provider, T, "q").is_some());
    drop(OnWrite::all(&cache));
    assert!(cache.is_empty());
}
