//! The usage table: metered calls appended in batches ([`crate::usage::Meter`]) and
//! read back by caller and time for the internal API. Unlike records, usage is not
//! bound to a tenant: the control plane that asks bills every tenant, and each row
//! carries its own.

/// One metered call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageEvent {
    /// When the call started, in epoch milliseconds.
    pub at_ms: i64,
    /// The caller's tenant.
    pub tenant: String,
    /// The caller's owner key (a sandbox's calls count for its owner).
    pub caller: String,
    /// The gRPC method.
    pub method: String,
    /// Its status code's name (`OK`, `NOT_FOUND`, ..., `CANCELLED` when the caller
    /// gave up).
    pub outcome: String,
    /// Where a credential came from (`cached`, `fresh`, `file`, `tenant-key`,
    /// `unknown`); empty for calls that resolve none.
    pub credential: String,
    /// The sandbox the call was about (or made by); empty when none.
    pub sandbox: String,
}

/// What a usage query selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageQuery {
    /// The caller's owner key.
    pub caller: String,
    /// Only calls at or after this time (epoch milliseconds).
    pub since_ms: i64,
}

/// A count of calls alike in method, outcome and credential source (and day).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageCount {
    /// Days since the epoch (UTC) of the calls; `None` for totals.
    pub day: Option<i64>,
    /// The method.
    pub method: String,
    /// The outcome.
    pub outcome: String,
    /// The credential source (empty: none).
    pub credential: String,
    /// How many calls.
    pub count: u64,
}

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The rows inserted by one statement (7 bound values each, within every backend's
/// limit on bound values).
pub(crate) const INSERT_CHUNK: usize = 500;

pub(crate) const TOTALS_SQL: &str = "SELECT method, outcome, credential, COUNT(*)
     FROM usage_events WHERE caller = $1 AND ts_ms >= $2
     GROUP BY method, outcome, credential ORDER BY method, outcome, credential";
pub(crate) const DAYS_SQL: &str = "SELECT ts_ms / 86400000, method, outcome, credential, COUNT(*)
     FROM usage_events WHERE caller = $1 AND ts_ms >= $2
     GROUP BY ts_ms / 86400000, method, outcome, credential
     ORDER BY 1, 2, 3, 4";
pub(crate) const RECENT_SQL: &str =
    "SELECT ts_ms, tenant, caller, method, outcome, credential, sandbox
     FROM usage_events WHERE caller = $1 ORDER BY ts_ms DESC LIMIT $2";

pub(crate) type EventTuple = (i64, String, String, String, String, String, String);

impl From<EventTuple> for UsageEvent {
    fn from((at_ms, tenant, caller, method, outcome, credential, sandbox): EventTuple) -> Self {
        Self {
            at_ms,
            tenant,
            caller,
            method,
            outcome,
            credential,
            sandbox,
        }
    }
}

pub(crate) fn count_of(count: i64) -> u64 {
    u64::try_from(count).unwrap_or_default()
}

/// Generates the usage operations for a store type holding `pool: $pool` of
/// database `$db`.
macro_rules! usage_operations {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(crate) async fn append_usage(
                &self,
                events: &[crate::store::usage::UsageEvent],
            ) -> Result<(), sqlx::Error> {
                // Committed without waiting for the disk: see `Store::append_usage`.
                let _turn = self.write_turn().await;
                let mut tx = self
                    .begin_locked_for_writes(crate::store::Durability::Deferred)
                    .await?;
                for chunk in events.chunks(crate::store::usage::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO usage_events \
                         (ts_ms, tenant, caller, method, outcome, credential, sandbox) ",
                    );
                    insert.push_values(chunk, |mut row, event| {
                        row.push_bind(event.at_ms)
                            .push_bind(&event.tenant)
                            .push_bind(&event.caller)
                            .push_bind(&event.method)
                            .push_bind(&event.outcome)
                            .push_bind(&event.credential)
                            .push_bind(&event.sandbox);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await
            }

            pub(crate) async fn usage_counts(
                &self,
                query: &crate::store::usage::UsageQuery,
                by_day: bool,
            ) -> Result<Vec<crate::store::usage::UsageCount>, sqlx::Error> {
                use crate::store::usage::{DAYS_SQL, TOTALS_SQL, UsageCount, count_of};
                if by_day {
                    let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(DAYS_SQL)
                        .bind(&query.caller)
                        .bind(query.since_ms)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(day, method, outcome, credential, count)| UsageCount {
                            day: Some(day),
                            method,
                            outcome,
                            credential,
                            count: count_of(count),
                        })
                        .collect())
                } else {
                    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(TOTALS_SQL)
                        .bind(&query.caller)
                        .bind(query.since_ms)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(method, outcome, credential, count)| UsageCount {
                            day: None,
                            method,
                            outcome,
                            credential,
                            count: count_of(count),
                        })
                        .collect())
                }
            }

            pub(crate) async fn recent_usage(
                &self,
                caller: &str,
                limit: u32,
            ) -> Result<Vec<crate::store::usage::UsageEvent>, sqlx::Error> {
                let rows: Vec<crate::store::usage::EventTuple> =
                    sqlx::query_as(crate::store::usage::RECENT_SQL)
                        .bind(caller)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }
        }
    };
}

pub(crate) use usage_operations;

impl super::Store {
    /// Appends `events` (of any tenant) in one transaction, committed with
    /// [`super::Durability::Deferred`]: usage is written in the background after the
    /// calls it counts were answered, so a power loss may lose the last appends as a
    /// crash loses the meter's queue, and an append costs no disk flush. A later synced
    /// write, of any kind, makes them durable.
    ///
    /// # Errors
    /// [`super::StoreError::Database`]; nothing is appended then.
    pub async fn append_usage(&self, events: &[UsageEvent]) -> Result<(), super::StoreError> {
        match &self.backend {
            super::Backend::Sqlite(s) => s.append_usage(events).await?,
            super::Backend::Postgres(s) => s.append_usage(events).await?,
        }
        Ok(())
    }

    /// Counts of `query`'s calls by method, outcome and credential source, and by day
    /// (UTC) when `by_day`, ordered by day, method, outcome, source.
    ///
    /// # Errors
    /// [`super::StoreError::Database`].
    pub async fn usage_counts(
        &self,
        query: &UsageQuery,
        by_day: bool,
    ) -> Result<Vec<UsageCount>, super::StoreError> {
        Ok(match &self.backend {
            super::Backend::Sqlite(s) => s.usage_counts(query, by_day).await?,
            super::Backend::Postgres(s) => s.usage_counts(query, by_day).await?,
        })
    }

    /// `caller`'s latest `limit` calls, newest first.
    ///
    /// # Errors
    /// [`super::StoreError::Database`].
    pub async fn recent_usage(
        &self,
        caller: &str,
        limit: u32,
    ) -> Result<Vec<UsageEvent>, super::StoreError> {
        Ok(match &self.backend {
            super::Backend::Sqlite(s) => s.recent_usage(caller, limit).await?,
            super::Backend::Postgres(s) => s.recent_usage(caller, limit).await?,
        })
    }
}
