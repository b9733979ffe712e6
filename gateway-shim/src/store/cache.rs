//! Records on the hot path served from memory: the sandbox, provider and inference
//! route a sandbox's resolve or bundle reads on every call.
//!
//! Only [`super::Store::get_cached`] reads through this cache; every other read (the
//! read-modify-write paths, conditional writes, lists) goes to the database. Entries
//! (found records and misses alike) live at most the configured lifetime, and every
//! write through this replica's store removes the written key at once, even when the
//! writing call is cancelled. A read that raced a write never refills the entry with
//! what it read before the write: each write bumps an epoch, and a fill is kept only
//! if no write happened since its read began.
//!
//! So a replica sees its own writes at once, and another replica's within the
//! lifetime (`--store-cache-ttl`, 1 s by default; 0 turns the cache off). The map is
//! bounded: when full, expired entries go first, then an arbitrary one.

use std::collections::HashMap;
// A short lock around a map, never held across an await.
#[allow(clippy::disallowed_types)]
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Kind, Record};

/// How many records (and misses) the cache holds at most.
pub const CAPACITY: usize = 20_000;

/// The cache of one store handle (shared by its clones).
#[derive(Debug)]
pub struct RecordCache {
    ttl: Duration,
    capacity: usize,
    epoch: AtomicU64,
    #[allow(clippy::disallowed_types)]
    entries: Mutex<HashMap<(Kind, String, String), Entry>>,
}

#[derive(Debug)]
struct Entry {
    record: Option<Record>,
    until: Instant,
}

/// A read's ticket to fill the cache: the epoch when the read began.
#[derive(Clone, Copy, Debug)]
pub struct Fill(u64);

impl RecordCache {
    /// A cache whose entries live `ttl` (zero: nothing is ever kept).
    #[allow(clippy::disallowed_types)]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            epoch: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether entries are kept at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The cached answer for `kind`/`key` (`Some(None)`: known missing), if fresh.
    pub fn get(&self, kind: Kind, tenant: &str, key: &str) -> Option<Option<Record>> {
        let entries = self.lock();
        let entry = entries.get(&(kind, tenant.to_owned(), key.to_owned()))?;
        (entry.until > Instant::now()).then(|| entry.record.clone())
    }

    /// Taken before reading the database for a miss.
    pub fn begin_fill(&self) -> Fill {
        Fill(self.epoch.load(Ordering::Acquire))
    }

    /// Keeps what a read begun at `fill` found, unless a write happened since.
    pub fn fill(&self, fill: Fill, kind: Kind, tenant: &str, key: &str, record: Option<&Record>) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.lock();
        if self.epoch.load(Ordering::Acquire) != fill.0 {
            return;
        }
        let now = Instant::now();
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.until > now);
        }
        if entries.len() >= self.capacity
            && let Some(victim) = entries.keys().next().cloned()
        {
            entries.remove(&victim);
        }
        entries.insert(
            (kind, tenant.to_owned(), key.to_owned()),
            Entry {
                record: record.cloned(),
                until: now + self.ttl,
            },
        );
    }

    /// Forgets `kind`/`key` of `tenant` (after a write to it) and voids fills begun
    /// before.
    pub fn invalidate(&self, kind: Kind, tenant: &str, key: &str) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(&(kind, tenant.to_owned(), key.to_owned()));
    }

    /// Forgets everything (after a write to many records).
    pub fn clear(&self) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Kind, String, String), Entry>> {
        // A panic while holding the lock leaves only cache entries behind; dropping
        // them all is always correct.
        self.entries.lock().unwrap_or_else(|poisoned| {
            let mut entries = poisoned.into_inner();
            entries.clear();
            self.entries.clear_poison();
            entries
        })
    }
}

/// Invalidates a key when dropped: a write's invalidation happens even when the
/// caller gives up after the database committed.
pub struct OnWrite<'a> {
    cache: &'a RecordCache,
    target: Option<(Kind, String, String)>,
}

impl<'a> OnWrite<'a> {
    /// Invalidates `kind`/`key` of `tenant` when dropped.
    pub fn key(cache: &'a RecordCache, kind: Kind, tenant: &str, key: &str) -> Self {
        Self {
            cache,
            target: Some((kind, tenant.to_owned(), key.to_owned())),
        }
    }

    /// Clears the whole cache when dropped.
    pub fn all(cache: &'a RecordCache) -> Self {
        Self {
            cache,
            target: None,
        }
    }
}

impl Drop for OnWrite<'_> {
    fn drop(&mut self) {
        match &self.target {
            Some((kind, tenant, key)) => self.cache.invalidate(*kind, tenant, key),
            None => self.cache.clear(),
        }
    }
}

#[cfg(test)]
mod tests;
