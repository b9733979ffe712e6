//! The SQL both backends run, written once: SQLite accepts PostgreSQL's `$n`
//! placeholders (numbered in order of first use), so one macro generates the
//! statements for each pool type.

/// Creates a record at version 1 unless its key or its owner's name is taken.
pub(crate) const CREATE_SQL: &str =
    "INSERT INTO objects (kind, tenant, key, name, owner, labels, body, version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 1)
     ON CONFLICT DO NOTHING RETURNING version";
/// Replaces a record if it is still at the version read.
pub(crate) const UPDATE_SQL: &str =
    "UPDATE objects SET name = $1, owner = $2, labels = $3, body = $4,
         version = version + 1
     WHERE kind = $5 AND key = $6 AND version = $7 AND tenant = $8 RETURNING version";
/// The columns a [`crate::store::Row`] is read from.
pub(crate) type RowTuple = (String, String, String, String, String, Vec<u8>, i64);

/// Placeholders must appear in the order they are bound: SQLite numbers `$n` by first
/// use, not by `n`.
///
/// Generates the record operations for a store type holding `pool: $pool`.
macro_rules! record_operations {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn create(
                &self,
                tenant: &str,
                record: &crate::store::Record,
                labels: &str,
            ) -> Result<Option<u64>, sqlx::Error> {
                let _turn = self.write_turn().await;
                let row: Option<(i64,)> = sqlx::query_as(crate::store::backend::CREATE_SQL)
                    .bind(record.kind.as_str())
                    .bind(tenant)
                    .bind(&record.key)
                    .bind(&record.name)
                    .bind(&record.owner)
                    .bind(labels)
                    .bind(&record.body)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|(version,)| u64::try_from(version).unwrap_or_default()))
            }

            pub(crate) async fn update(
                &self,
                tenant: &str,
                record: &crate::store::Record,
                labels: &str,
            ) -> Result<Option<u64>, sqlx::Error> {
                let _turn = self.write_turn().await;
                let row: Option<(i64,)> = sqlx::query_as(crate::store::backend::UPDATE_SQL)
                    .bind(&record.name)
                    .bind(&record.owner)
                    .bind(labels)
                    .bind(&record.body)
                    .bind(record.kind.as_str())
                    .bind(&record.key)
                    .bind(crate::store::db_version(record.version))
                    .bind(tenant)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|(version,)| u64::try_from(version).unwrap_or_default()))
            }

            pub(crate) async fn delete(
                &self,
                tenant: &str,
                kind: crate::store::Kind,
                key: &str,
                expected: Option<u64>,
            ) -> Result<bool, sqlx::Error> {
                let _turn = self.write_turn().await;
                let result = match expected {
                    Some(version) => {
                        sqlx::query(
                            "DELETE FROM objects
                             WHERE kind = $1 AND key = $2 AND version = $3 AND tenant = $4",
                        )
                        .bind(kind.as_str())
                        .bind(key)
                        .bind(crate::store::db_version(version))
                        .bind(tenant)
                        .execute(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query(
                            "DELETE FROM objects WHERE kind = $1 AND key = $2 AND tenant = $3",
                        )
                        .bind(kind.as_str())
                        .bind(key)
                        .bind(tenant)
                        .execute(&self.pool)
                        .await?
                    }
                };
                Ok(result.rows_affected() > 0)
            }

            pub(crate) async fn get(
                &self,
                tenant: &str,
                kind: crate::store::Kind,
                key: &str,
            ) -> Result<Option<crate::store::Row>, sqlx::Error> {
                let row: Option<crate::store::backend::RowTuple> = sqlx::query_as(
                    "SELECT tenant, key, name, owner, labels, body, version FROM objects
                     WHERE kind = $1 AND key = $2 AND tenant = $3",
                )
                .bind(kind.as_str())
                .bind(key)
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(crate::store::Row::from))
            }

            pub(crate) async fn get_by_name(
                &self,
                tenant: &str,
                kind: crate::store::Kind,
                owner: &str,
                name: &str,
            ) -> Result<Option<crate::store::Row>, sqlx::Error> {
                let row: Option<crate::store::backend::RowTuple> = sqlx::query_as(
                    "SELECT tenant, key, name, owner, labels, body, version FROM objects
                     WHERE kind = $1 AND owner = $2 AND name = $3 AND tenant = $4",
                )
                .bind(kind.as_str())
                .bind(owner)
                .bind(name)
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(crate::store::Row::from))
            }

            /// Records of `kind` passing `filter`, in `tenant` (`None`: in every
            /// tenant, for the gateway's own bookkeeping).
            pub(crate) async fn list(
                &self,
                tenant: Option<&str>,
                kind: crate::store::Kind,
                filter: &crate::store::Filter,
            ) -> Result<Vec<crate::store::Row>, sqlx::Error> {
                let (clause, binds) = filter.sql(tenant.is_some(), Self::CONTAINS);
                let sql = format!(
                    "SELECT tenant, key, name, owner, labels, body, version FROM objects
                     WHERE kind = $1{clause} ORDER BY tenant, key"
                );
                // Our own text: placeholders only, the values are bound.
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind.as_str());
                if let Some(tenant) = tenant {
                    query = query.bind(tenant);
                }
                for value in binds {
                    query = query.bind(value);
                }
                let rows: Vec<crate::store::backend::RowTuple> =
                    query.fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(crate::store::Row::from).collect())
            }

            /// Records of `kind` `owner` has, counted up to `limit` (reading at most
            /// `limit` index entries).
            pub(crate) async fn count_up_to(
                &self,
                tenant: &str,
                kind: crate::store::Kind,
                owner: &str,
                limit: i64,
            ) -> Result<i64, sqlx::Error> {
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT count(*) FROM (SELECT 1 FROM objects
                         WHERE kind = $1 AND owner = $2 AND tenant = $3 LIMIT $4) AS counted",
                )
                .bind(kind.as_str())
                .bind(owner)
                .bind(tenant)
                .bind(limit)
                .fetch_one(&self.pool)
                .await?;
                Ok(count)
            }

            /// Rewrites every record `rewrite` changes, in one transaction holding the
            /// migration lock, unless the setting `marker` exists; records the marker.
            /// Returns how many records changed (0 when already done).
            pub(crate) async fn rewrite_once(
                &self,
                marker: &str,
                rewrite: &(
                     dyn Fn(&crate::store::Record) -> Option<crate::store::Record> + Send + Sync
                 ),
            ) -> Result<usize, crate::store::StoreError> {
                let setting = crate::store::Kind::Setting.as_str();
                let _turn = self.write_turn().await;
                let mut tx = Self::begin_locked(&self.pool).await?;
                let platform = crate::store::PLATFORM_TENANT;
                let done: Option<(i64,)> = sqlx::query_as(
                    "SELECT version FROM objects WHERE kind = $1 AND key = $2 AND tenant = $3",
                )
                .bind(setting)
                .bind(marker)
                .bind(platform)
                .fetch_optional(&mut *tx)
                .await?;
                if done.is_some() {
                    return Ok(0);
                }
                let rows: Vec<(String, String, String, String, String, String, Vec<u8>, i64)> =
                    sqlx::query_as(
                        "SELECT kind, tenant, key, name, owner, labels, body, version FROM objects",
                    )
                    .fetch_all(&mut *tx)
                    .await?;
                let mut changed = Vec::new();
                for (kind, tenant, key, name, owner, labels, body, version) in rows {
                    let Some(kind) = crate::store::Kind::parse(&kind) else {
                        continue;
                    };
                    let record =
                        crate::store::Row::from((tenant, key, name, owner, labels, body, version))
                            .into_record(kind)?;
                    if let Some(new) = rewrite(&record) {
                        changed.push((record, new));
                    }
                }
                // Every old row goes before any new one is written: new keys and names
                // never meet an old row.
                for (old, _) in &changed {
                    sqlx::query(
                        "DELETE FROM objects WHERE kind = $1 AND key = $2 AND tenant = $3",
                    )
                    .bind(old.kind.as_str())
                    .bind(&old.key)
                    .bind(&old.tenant)
                    .execute(&mut *tx)
                    .await?;
                }
                // A rewrite never moves a record to another tenant.
                for ((old, _), (_, new)) in changed.iter().zip(&changed) {
                    sqlx::query(
                        "INSERT INTO objects (kind, tenant, key, name, owner, labels, body, version)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(new.kind.as_str())
                    .bind(&old.tenant)
                    .bind(&new.key)
                    .bind(&new.name)
                    .bind(&new.owner)
                    .bind(crate::store::encode_labels(&new.labels))
                    .bind(&new.body)
                    .bind(crate::store::db_version(new.version))
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO objects (kind, tenant, key, name, owner, labels, body, version)
                     VALUES ($1, $2, $3, $3, '', '{}', $4, 1)",
                )
                .bind(setting)
                .bind(platform)
                .bind(marker)
                .bind(Vec::<u8>::new())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(changed.len())
            }

            /// Applies the migrations not yet applied, each in its own transaction.
            ///
            /// Every transaction here, the one creating the bookkeeping table included,
            /// takes the migration lock before it touches the schema (on its own
            /// connection), so replicas or processes opening one fresh database at the
            /// same moment apply each step once, one after the other, and none fails on
            /// a concurrent twin's `CREATE TABLE`.
            async fn migrate(&self) -> Result<(), sqlx::Error> {
                // One turn for every step: nothing else of this store writes yet.
                let _turn = self.write_turn().await;
                let mut tx = Self::begin_locked(&self.pool).await?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                for (version, statements) in crate::store::migrations::MIGRATIONS {
                    let mut tx = Self::begin_locked(&self.pool).await?;
                    let applied: Option<(i64,)> =
                        sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                            .bind(*version)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if applied.is_none() {
                        for statement in *statements {
                            let sql =
                                crate::store::migrations::for_backend(statement, Self::BLOB_TYPE);
                            // Our own constant with the column type substituted; no input reaches it.
                            sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut *tx)
                                .await?;
                        }
                        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                            .bind(*version)
                            .execute(&mut *tx)
                            .await?;
                        tracing::info!(backend = Self::NAME, version, "store: migration applied");
                    }
                    tx.commit().await?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use record_operations;
