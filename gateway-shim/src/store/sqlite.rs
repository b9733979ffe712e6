//! SQLite: the embedded default (a file, or `sqlite::memory:` for tests).
//!
//! Opening a file is serialized across processes: switching a fresh database to WAL
//! answers "database is locked" at once (SQLite's busy handler does not wait for it)
//! when another process does the same, so each opener first takes an exclusive lock on
//! `<file>-open.lock` and holds it while it connects and migrates. The database and
//! the lock file are created 0600: the store holds the sandbox-token signing key.
//!
//! Writers of one process take turns on an async lock ([`SqliteStore::write_turn`])
//! before they ask SQLite for its write lock: SQLite's busy handler does not queue a
//! writer that finds the lock taken, it sleeps (1, 2, 5, 10 … 100 ms) and tries again,
//! so writers racing inside one busy gateway slept through much of the time the lock
//! stood free. Writers of other processes on the same file still meet the busy handler.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::Durability;
use super::backend::record_operations;
use super::guarded::guarded_operations;
use super::usage::usage_operations;

/// A SQLite database.
#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// For a file: connections that commit without waiting for the disk
    /// (`synchronous=NORMAL`), for [`Durability::Deferred`] writes; a later commit on
    /// `pool` syncs the write-ahead log and so everything before it.
    unsynced: Option<SqlitePool>,
    /// Whose turn it is to write, among this process's writers (first come, first
    /// served).
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// For an in-memory database: a connection outside the pool, open as long as the
    /// store, so the database outlives any pooled connection (sqlx closes one whose
    /// caller gave up mid-query; the last connection closing would drop every table).
    _anchor: Option<std::sync::Arc<tokio::sync::Mutex<sqlx::SqliteConnection>>>,
}

impl SqliteStore {
    const NAME: &'static str = "sqlite";
    const BLOB_TYPE: &'static str = "BLOB";
    // `BEGIN IMMEDIATE` already serializes writers: no row locks needed (or spelled).
    const LOCK_SHARED: &'static str = "";
    const LOCK_EXCLUSIVE: &'static str = "";
    /// `(haystack, needle)` → 1-based position, 0 when absent (case-sensitive).
    const CONTAINS: &'static str = "instr";

    /// Opens (creating if missing) and migrates the database at `url`.
    pub(crate) async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let (options, _open_lock) = if in_memory {
            (options, None)
        } else {
            let file = options.get_filename().to_owned();
            let parent = file.parent().unwrap_or(Path::new("."));
            proto::private::prepare_dir(parent).map_err(|e| {
                sqlx::Error::Io(std::io::Error::other(format!("the store's directory: {e}")))
            })?;
            let lock = lock_for_opening(&file).await?;
            create_private(&file)?;
            (options.journal_mode(SqliteJournalMode::Wal), Some(lock))
        };
        // One pooled connection to memory: sqlx names the database once per parsed URL
        // and shares it between connections made from these options (the anchor's
        // too), but its table locks do not wait like a file's busy handler does.
        let max = if in_memory { 1 } else { 4 };
        let anchor = if in_memory {
            use sqlx::ConnectOptions as _;
            Some(std::sync::Arc::new(tokio::sync::Mutex::new(
                options.clone().connect().await?,
            )))
        } else {
            None
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .connect_with(options.clone())
            .await?;
        let unsynced = (!in_memory).then(|| {
            SqlitePoolOptions::new()
                .max_connections(2)
                .min_connections(0)
                .idle_timeout(None::<Duration>)
                .max_lifetime(None::<Duration>)
                .connect_lazy_with(options.clone().synchronous(SqliteSynchronous::Normal))
        });
        let store = Self {
            pool,
            unsynced,
            writer: std::sync::Arc::default(),
            _anchor: anchor,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// This process's turn to write, held until dropped: taken before every write
    /// (before its transaction, so it is dropped after the transaction's rollback is
    /// queued).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.writer.lock().await)
    }

    /// A transaction for guarded writes: the write lock from its first statement, on a
    /// connection that waits for the disk at commit unless `durability` defers it (in
    /// WAL mode a commit that does not wait stays atomic and consistent).
    async fn begin_locked_for_writes(
        &self,
        durability: Durability,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        let pool = match (durability, &self.unsynced) {
            (Durability::Deferred, Some(unsynced)) => unsynced,
            _ => &self.pool,
        };
        Self::begin_locked(pool).await
    }

    /// A transaction holding the database's write lock from its first statement
    /// (`BEGIN IMMEDIATE`, waiting out other writers up to the busy timeout), so two
    /// processes opening one file never interleave a check and a schema change.
    async fn begin_locked(
        pool: &SqlitePool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
}

record_operations!(SqliteStore);
guarded_operations!(SqliteStore);
usage_operations!(SqliteStore, sqlx::Sqlite);

/// How long a writer (or an opener) waits for another before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Takes the exclusive open lock of the database `file`, waiting up to
/// [`BUSY_TIMEOUT`] for another opener; released when the returned value drops.
async fn lock_for_opening(file: &Path) -> Result<Flock<File>, sqlx::Error> {
    let path = suffixed(file, "-open.lock");
    let mut lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((file, nix::errno::Errno::EWOULDBLOCK))
                if tokio::time::Instant::now() < deadline =>
            {
                lock_file = file;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((_, errno)) => {
                return Err(io_error(&path, std::io::Error::from(errno)));
            }
        }
    }
}

/// Creates the database file 0600 if it does not exist yet (SQLite gives its `-wal` and
/// `-shm` files the same mode), and makes an existing one 0600 if others could read it
/// (stores made before this rule).
fn create_private(file: &Path) -> Result<(), sqlx::Error> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(file)
        .map(drop)
        .map_err(|e| io_error(file, e))?;
    for path in [
        file.to_path_buf(),
        suffixed(file, "-wal"),
        suffixed(file, "-shm"),
    ] {
        match proto::private::tighten(&path) {
            Ok(Some(mode)) => tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:04o}"),
                "the store holds the signing key: made it 0600"
            ),
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&path, e)),
        }
    }
    Ok(())
}

fn suffixed(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(path: &Path, error: std::io::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        error.kind(),
        format!("{}: {error}", path.display()),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::SqliteStore;
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
        let counted = store.count_up_to("t", Kind::Provider, "alice", 1000).await;
        assert_eq!(counted.unwrap(), 32);
    }
}
