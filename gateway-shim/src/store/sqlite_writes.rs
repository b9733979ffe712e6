//! How the SQLite store's writers of one process take turns and share disk flushes.
//!
//! Turns: writers wait on a first-come async lock before they ask SQLite for its write
//! lock. SQLite's busy handler does not queue a writer that finds the lock taken, it
//! sleeps (1, 2, 5, 10 … 100 ms) and tries again, so writers racing inside one busy
//! gateway slept through much of the time the lock stood free. Writers of other
//! processes on the same file still meet the busy handler.
//!
//! Group commit: a write that must be on disk before it returns
//! ([`Durability::Synced`]) commits on a connection that waits for the disk
//! (`synchronous=FULL`) when no other writer of this process is under way. When others
//! are, it commits on one that does not wait (`synchronous=NORMAL`), takes a ticket and
//! gives up its turn, then waits for a flush: one waiter at a time takes the next turn
//! and makes a one-row write on a waiting connection, whose commit syncs the write-ahead
//! log and with it every commit before it, so one flush covers every ticket taken
//! before that turn. Until that flush such a write is visible to readers but not yet on
//! disk: a power loss in that window (about one flush long) can lose a write whose
//! writer had not been answered yet; a process crash cannot (the log is in the
//! operating system's cache).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sqlx::sqlite::SqlitePool;
use tokio::sync::{Mutex, MutexGuard};

use super::Durability;
use super::sqlite::SqliteStore;

/// The table whose one row the flushing write changes (created at open).
pub(super) const CREATE_FLUSH_TABLE: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS wal_flushes (n INTEGER NOT NULL)",
    "INSERT INTO wal_flushes (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM wal_flushes)",
];
/// The flushing write.
const FLUSH_SQL: &str = "UPDATE wal_flushes SET n = n + 1";

/// The writers of one store, shared by its clones.
#[derive(Debug, Default)]
pub(crate) struct Writers {
    /// Whose turn it is to write (first come, first served).
    turn: Mutex<()>,
    /// Writers between asking for a turn and returning (their flush included).
    pending: AtomicUsize,
    /// Tickets taken: unflushed commits made so far.
    committed: AtomicU64,
    /// Tickets a flush has covered; held by the one waiter that flushes next.
    flushed: Mutex<u64>,
    /// Flushing writes made (for tests and figures).
    flushes: AtomicU64,
}

/// One writer's turn and the connections it writes on; its turn ends when it drops or
/// when [`WriteTurn::committed`] hands it on.
pub(crate) struct WriteTurn<'a> {
    writers: &'a Writers,
    turn: Option<MutexGuard<'a, ()>>,
    /// Where the write commits.
    pool: &'a SqlitePool,
    /// Set when the commit does not wait for the disk but the writer must: the waiting
    /// connections that flush it.
    flush_on: Option<&'a SqlitePool>,
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        self.writers.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SqliteStore {
    /// This process's turn to write with `durability`, held until dropped or
    /// [`WriteTurn::committed`].
    pub(crate) async fn turn_for(&self, durability: Durability) -> WriteTurn<'_> {
        let writers = self.writers();
        writers.pending.fetch_add(1, Ordering::SeqCst);
        let mut turn = WriteTurn {
            writers,
            turn: None,
            pool: self.synced_pool(),
            flush_on: None,
        };
        turn.turn = Some(writers.turn.lock().await);
        if let Some(unsynced) = self.unsynced_pool() {
            match durability {
                Durability::Deferred => turn.pool = unsynced,
                Durability::Synced if writers.pending.load(Ordering::SeqCst) > 1 => {
                    turn.pool = unsynced;
                    turn.flush_on = Some(self.synced_pool());
                }
                Durability::Synced => {}
            }
        }
        turn
    }

    /// This process's turn to write on the waiting connections, with no flush to
    /// share (migrations, and tests holding the turn).
    pub(crate) async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        Some(self.writers().turn.lock().await)
    }
}

impl WriteTurn<'_> {
    /// The connections this write runs on.
    pub(crate) fn pool(&self) -> &SqlitePool {
        self.pool
    }

    /// A transaction holding the database's write lock from its first statement.
    pub(crate) async fn begin(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// After the write committed: hands the turn on and, if its commit did not wait
    /// for the disk but its durability does, waits for a flush covering it.
    pub(crate) async fn committed(mut self) -> Result<(), sqlx::Error> {
        let Some(synced) = self.flush_on else {
            return Ok(());
        };
        // Taken while the turn is held: a flush made in a later turn covers it.
        let ticket = self.writers.committed.fetch_add(1, Ordering::SeqCst) + 1;
        self.turn = None;
        self.writers.flush(synced, ticket).await
    }
}

impl Writers {
    /// Returns once a flush made after `ticket` was taken has committed, making one
    /// if none has.
    async fn flush(&self, synced: &SqlitePool, ticket: u64) -> Result<(), sqlx::Error> {
        let mut flushed = self.flushed.lock().await;
        if *flushed >= ticket {
            return Ok(());
        }
        let _turn = self.turn.lock().await;
        let covers = self.committed.load(Ordering::SeqCst);
        sqlx::query(FLUSH_SQL).execute(synced).await?;
        self.flushes.fetch_add(1, Ordering::SeqCst);
        *flushed = covers;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use crate::store::sqlite::SqliteStore;
    use crate::store::{Kind, Record};

    async fn file_store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite:{}", dir.path().join("turns.db").display());
        SqliteStore::open(&url).await.unwrap()
    }

    fn provider(key: &str) -> Record {
        Record::new(Kind::Provider, key, key, "alice")
    }

    #[tokio::test]
    async fn a_writer_waits_for_its_turn_and_then_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let turn = store.write_turn().await;
        let writer = store.clone();
        let mut create =
            tokio::spawn(async move { writer.create("t", &provider("p"), "{}").await });
        // Another writer holds the turn: this one waits (a busy handler would have
        // let it in at once, SQLite's write lock being free).
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut create)
                .await
                .is_err(),
            "the write went ahead while another writer held the turn"
        );
        drop(turn);
        assert_eq!(create.await.unwrap().unwrap(), Some(1));
        assert!(store.get("t", Kind::Provider, "p").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_writer_giving_up_while_waiting_leaves_nothing_and_the_turns_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let turn = store.write_turn().await;
        let given_up = tokio::time::timeout(
            Duration::from_millis(50),
            store.create("t", &provider("gone"), "{}"),
        )
        .await;
        assert!(given_up.is_err());
        drop(turn);
        assert!(
            store
                .get("t", Kind::Provider, "gone")
                .await
                .unwrap()
                .is_none()
        );
        // Racing writers each get their turn: all of them written.
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..32 {
            let store = store.clone();
            writes.spawn(async move { store.create("t", &provider(&format!("p{n}")), "{}").await });
        }
        while let Some(written) = writes.join_next().await {
            assert_eq!(written.unwrap().unwrap(), Some(1));
        }
        assert_eq!(
            store
                .count_up_to("t", Kind::Provider, "alice", i64::MAX)
                .await
                .unwrap(),
            32
        );
    }

    /// Flushing writes the database recorded.
    async fn flushes_recorded(store: &SqliteStore) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT n FROM wal_flushes")
            .fetch_one(store.synced_pool())
            .await
            .unwrap();
        n
    }

    /// Holds the turn until `writers` writers wait for one (or for a flush).
    async fn release_when_waiting(store: &SqliteStore, writers: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while store.writers().pending() < writers {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_lone_synced_write_waits_for_the_disk_itself_without_a_shared_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        assert_eq!(
            store.create("t", &provider("p"), "{}").await.unwrap(),
            Some(1)
        );
        assert_eq!(store.writers().flushes(), 0);
        assert_eq!(flushes_recorded(&store).await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_synced_writes_share_one_flush_and_each_returns_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let held = store.write_turn().await;
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..16 {
            let store = store.clone();
            writes.spawn(async move {
                let written = store.create("t", &provider(&format!("p{n}")), "{}").await;
                (written.unwrap(), flushes_recorded(&store).await)
            });
        }
        release_when_waiting(&store, 16).await;
        drop(held);
        while let Some(done) = writes.join_next().await {
            let (version, flushes) = done.unwrap();
            assert_eq!(version, Some(1));
            assert!(flushes >= 1, "a write returned before a flush covered it");
        }
        // Every writer but the first committed while the first waited for its turn to
        // flush: one flush covered all sixteen.
        assert_eq!(store.writers().flushes(), 1);
        assert_eq!(flushes_recorded(&store).await, 1);
        assert_eq!(
            store
                .count_up_to("t", Kind::Provider, "alice", i64::MAX)
                .await
                .unwrap(),
            16
        );
        assert_eq!(store.writers().pending(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_giving_up_at_any_step_leave_the_others_flushed_and_no_turn_held() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        for round in 0..8u64 {
            let held = store.write_turn().await;
            let mut writes = tokio::task::JoinSet::new();
            let mut given_up = Vec::new();
            for n in 0..16 {
                let store = store.clone();
                let key = format!("r{round}-p{n}");
                let handle = writes.spawn(async move {
                    let written = store.create("t", &provider(&key), "{}").await;
                    (written.unwrap(), flushes_recorded(&store).await)
                });
                if n % 2 == 0 {
                    given_up.push(handle);
                }
            }
            release_when_waiting(&store, 16).await;
            drop(held);
            // Each round gives up a little later: waiting for the turn, writing,
            // waiting for the flush, or flushing.
            tokio::time::sleep(Duration::from_micros(200 * round)).await;
            for handle in given_up {
                handle.abort();
            }
            let before = store.writers().flushes();
            while let Some(done) = writes.join_next().await {
                if let Ok((version, flushes)) = done {
                    assert_eq!(version, Some(1));
                    assert!(flushes >= 1, "a write returned before a flush covered it");
                }
            }
            assert!(store.writers().flushes() >= before);
            assert_eq!(store.writers().pending(), 0, "a turn outlived its writer");
        }
        // The turns go on: a lone write gets its turn and waits for the disk itself.
        let flushes = store.writers().flushes();
        assert_eq!(
            store.create("t", &provider("last"), "{}").await.unwrap(),
            Some(1)
        );
        assert_eq!(store.writers().flushes(), flushes);
    }
}
