//! Writes guarded by other records, each check and its write in one transaction: a
//! write that needs records to exist (a sandbox or route naming providers), and a delete
//! that must find no record referring to it (a provider still attached or routed).
//!
//! PostgreSQL: the write takes `FOR SHARE` locks on the rows it needs, the delete a
//! `FOR UPDATE` lock on its row *before* it looks for referrers, so whichever commits
//! second sees the first: a delete waiting behind an attach then finds the reference;
//! an attach waiting behind a delete finds the provider gone. SQLite: the transaction
//! begins `IMMEDIATE`, which serializes writers outright.

/// Generates the guarded operations for a store type with `begin_locked_for_writes`,
/// `LOCK_SHARED` and `LOCK_EXCLUSIVE`.
macro_rules! guarded_operations {
    ($store:ty) => {
        impl $store {
            /// `write` (in `tenant`) if every record in `requires` (kind, tenant, key)
            /// exists. `Ok(Err(missing))` names
            /// the first that does not; `Ok(Ok(None))` is a create that found its key
            /// or name taken, or an update whose version moved on.
            pub(crate) async fn write_if_present(
                &self,
                tenant: &str,
                write: crate::store::Write<'_>,
                labels: &str,
                requires: &[(crate::store::Kind, &str, &str)],
                durability: crate::store::Durability,
            ) -> Result<Result<Option<u64>, (crate::store::Kind, String)>, sqlx::Error> {
                let _turn = self.write_turn().await;
                let mut tx = self.begin_locked_for_writes(durability).await?;
                for (kind, required_tenant, key) in requires {
                    let sql = format!(
                        "SELECT version FROM objects WHERE kind = $1 AND key = $2 AND tenant = $3{}",
                        Self::LOCK_SHARED
                    );
                    // Our own constant with the lock clause appended; no input reaches it.
                    let found: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(kind.as_str())
                        .bind(*key)
                        .bind(*required_tenant)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if found.is_none() {
                        return Ok(Err((*kind, (*key).to_owned())));
                    }
                }
                let row: Option<(i64,)> = match write {
                    crate::store::Write::Create(record) => {
                        sqlx::query_as(crate::store::backend::CREATE_SQL)
                            .bind(record.kind.as_str())
                            .bind(tenant)
                            .bind(&record.key)
                            .bind(&record.name)
                            .bind(&record.owner)
                            .bind(labels)
                            .bind(&record.body)
                            .fetch_optional(&mut *tx)
                            .await?
                    }
                    crate::store::Write::Update(record) => {
                        sqlx::query_as(crate::store::backend::UPDATE_SQL)
                            .bind(&record.name)
                            .bind(&record.owner)
                            .bind(labels)
                            .bind(&record.body)
                            .bind(record.kind.as_str())
                            .bind(&record.key)
                            .bind(crate::store::db_version(record.version))
                            .bind(tenant)
                            .fetch_optional(&mut *tx)
                            .await?
                    }
                };
                tx.commit().await?;
                Ok(Ok(row.map(|(version,)| {
                    u64::try_from(version).unwrap_or_default()
                })))
            }

            /// Deletes `kind`/`key` of `tenant` at `version` unless a record of one of
            /// `by`, in any tenant, refers to it (`refers`). `Ok(Err(referrer))` is the
            /// first referrer found; `Ok(Ok(false))` means the record is gone or its
            /// version moved on.
            pub(crate) async fn delete_unless_referenced(
                &self,
                tenant: &str,
                kind: crate::store::Kind,
                key: &str,
                version: u64,
                by: &[crate::store::Kind],
                refers: &(dyn Fn(&crate::store::Record) -> bool + Send + Sync),
            ) -> Result<Result<bool, crate::store::Record>, crate::store::StoreError> {
                let _turn = self.write_turn().await;
                let mut tx = self
                    .begin_locked_for_writes(crate::store::Durability::Synced)
                    .await?;
                let sql = format!(
                    "SELECT version FROM objects WHERE kind = $1 AND key = $2 AND tenant = $3{}",
                    Self::LOCK_EXCLUSIVE
                );
                // Our own constant with the lock clause appended; no input reaches it.
                let current: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(kind.as_str())
                    .bind(key)
                    .bind(tenant)
                    .fetch_optional(&mut *tx)
                    .await?;
                if current.is_none_or(|(v,)| v != crate::store::db_version(version)) {
                    return Ok(Ok(false));
                }
                for referring in by {
                    let rows: Vec<crate::store::backend::RowTuple> = sqlx::query_as(
                        "SELECT tenant, key, name, owner, labels, body, version FROM objects
                             WHERE kind = $1",
                    )
                    .bind(referring.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                    for row in rows {
                        let record = crate::store::Row::from(row).into_record(*referring)?;
                        if refers(&record) {
                            return Ok(Err(record));
                        }
                    }
                }
                sqlx::query("DELETE FROM objects WHERE kind = $1 AND key = $2 AND tenant = $3")
                    .bind(kind.as_str())
                    .bind(key)
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Ok(true))
            }
        }
    };
}

pub(crate) use guarded_operations;
