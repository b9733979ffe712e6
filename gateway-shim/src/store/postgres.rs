//! PostgreSQL: for more than one gateway replica sharing one database.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::Durability;
use super::backend::record_operations;
use super::guarded::guarded_operations;
use super::usage::usage_operations;

/// Advisory lock key that serializes migrations of replicas starting together.
const MIGRATION_LOCK: i64 = 0x6f70_656e_7368_656c;

/// A PostgreSQL database.
#[derive(Clone, Debug)]
pub(crate) struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    const NAME: &'static str = "postgres";
    const BLOB_TYPE: &'static str = "BYTEA";
    const LOCK_SHARED: &'static str = " FOR SHARE";
    const LOCK_EXCLUSIVE: &'static str = " FOR UPDATE";
    /// `(haystack, needle)` → 1-based position, 0 when absent (case-sensitive).
    const CONTAINS: &'static str = "strpos";

    /// Connects to and migrates the database at `url`.
    pub(crate) async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Writers need no turns here: the server queues them on its row locks.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    /// A transaction for guarded writes (row locks do the serializing); with
    /// `durability` deferred, its commit does not wait for the server's WAL flush
    /// (`synchronous_commit` off for this transaction alone).
    async fn begin_locked_for_writes(
        &self,
        durability: Durability,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if durability == Durability::Deferred {
            sqlx::query("SET LOCAL synchronous_commit TO OFF")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// A transaction holding the migration lock (released at its commit or rollback).
    async fn begin_locked(
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

record_operations!(PostgresStore);
guarded_operations!(PostgresStore);
usage_operations!(PostgresStore, sqlx::Postgres);
