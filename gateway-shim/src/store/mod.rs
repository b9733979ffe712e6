//! The gateway's store: versioned records behind one interface, two backends.
//!
//! Every object (sandbox, provider, inference route, the gateway's signing key) is a
//! [`Record`] of one tenant: a kind, a key unique within the kind and tenant, a name
//! unique per owner, labels, an opaque body and a resource version.
//!
//! Tenants are a hard partition: a [`Store`] handle is bound to one tenant
//! ([`Store::in_tenant`]) and every read and write it makes is confined to it in the
//! query itself, so code holding a tenant's handle cannot reach another tenant's
//! records. Gateway settings and the platform layer (providers and the route an operator
//! sets for every tenant) live in [`PLATFORM_TENANT`]. Writes are conditional: [`Store::create`] must
//! create, [`Store::update`] and [`Store::delete`] must match the version read, so two
//! writers racing on one record get [`StoreError::Conflict`] (ABORTED) instead of one
//! silently overwriting the other.
//!
//! Backends: SQLite (`sqlite:<path>` or `sqlite::memory:`), the embedded default, and
//! PostgreSQL (`postgres://…`) for more than one gateway replica. Both run the same
//! migrations at start-up and pass the same test suite (`tests/store_suite.rs`).

mod backend;
pub mod cache;
mod filter;
mod guarded;
mod migrations;
mod postgres;
mod sqlite;
pub mod usage;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cache::{OnWrite, RecordCache};
pub use filter::{ACCESS_LABEL_PREFIX, AccessTerm, Filter, access_label};
pub use usage::{UsageCount, UsageEvent, UsageQuery};

/// The tenant of callers whose authenticator names none, and of every record stored
/// before tenants existed.
pub const DEFAULT_TENANT: &str = "default";
/// Where gateway settings and the platform layer live; never a caller's tenant (tenant
/// names start with a letter or digit).
pub const PLATFORM_TENANT: &str = "_platform";

/// How long [`Store::get_cached`] may serve a record another replica has since changed.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(1);

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A sandbox record.
    Sandbox,
    /// A provider.
    Provider,
    /// An inference route.
    InferenceRoute,
    /// Gateway-internal settings (the sandbox-token signing key).
    Setting,
    /// A sandbox's settings document (keyed by the sandbox's id).
    SandboxSettings,
    /// A local API key (keyed by the hex SHA-256 of the key; in the platform's
    /// partition, owned by the key's tenant).
    ApiKey,
}

impl Kind {
    /// The kind stored as `value` in the `kind` column.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Sandbox,
            Self::Provider,
            Self::InferenceRoute,
            Self::Setting,
            Self::SandboxSettings,
            Self::ApiKey,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }

    /// The value stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Provider => "provider",
            Self::InferenceRoute => "inference_route",
            Self::Setting => "setting",
            Self::SandboxSettings => "sandbox_settings",
            Self::ApiKey => "api_key",
        }
    }
}

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// What it is.
    pub kind: Kind,
    /// The tenant it belongs to: stamped by the store handle that created it (the
    /// field is ignored on writes) and never changed.
    pub tenant: String,
    /// Unique within the kind.
    pub key: String,
    /// Unique among the owner's records of the kind.
    pub name: String,
    /// Who owns it (the stamped subject).
    pub owner: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The object itself (protobuf-encoded).
    pub body: Vec<u8>,
    /// Bumped by every write; starts at 1.
    pub version: u64,
}

impl Record {
    /// A record to create (its version is assigned by the store).
    pub fn new(
        kind: Kind,
        key: impl Into<String>,
        name: impl Into<String>,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            tenant: String::new(),
            key: key.into(),
            name: name.into(),
            owner: owner.into(),
            labels: BTreeMap::new(),
            body: Vec::new(),
            version: 0,
        }
    }
}

/// When a write's commit returns, relative to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Flushed to disk first (SQLite `synchronous=FULL`, PostgreSQL's
    /// `synchronous_commit`): survives a power loss. Every write but the next.
    Synced,
    /// Committed, atomic and visible to every reader at once, but an operating-system
    /// crash or power loss (with PostgreSQL, a server crash too) may lose it, never
    /// leaving it half-written. Only for a write that a later synced write confirms
    /// before anyone is told it happened, and whose loss repair handles: a sandbox's
    /// record marked `create`, written before the driver is asked (lost, the driver's
    /// sandbox has no record and repair deletes it; the caller was never told it
    /// exists). Saves one disk flush per create. Usage appends are the other use
    /// ([`Store::append_usage`]): a crash already loses the meter's queue.
    Deferred,
}

/// A write guarded by [`Store::write_if_present`].
#[derive(Clone, Copy, Debug)]
pub enum Write<'a> {
    /// Must create.
    Create(&'a Record),
    /// Must match the version read.
    Update(&'a Record),
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create found the key (or the owner's name) taken.
    #[error("{kind} {key:?} already exists")]
    AlreadyExists {
        /// Kind name.
        kind: &'static str,
        /// The key.
        key: String,
    },
    /// No record with that key.
    #[error("{kind} {key:?} not found")]
    NotFound {
        /// Kind name.
        kind: &'static str,
        /// The key.
        key: String,
    },
    /// The record changed since it was read.
    #[error(
        "{kind} {key:?} was changed by another writer (expected version {expected}); read it again and retry"
    )]
    Conflict {
        /// Kind name.
        kind: &'static str,
        /// The key.
        key: String,
        /// The version the writer had read.
        expected: u64,
    },
    /// A guarded write needs a record that does not exist.
    #[error("{kind} {key:?} does not exist")]
    MissingReference {
        /// Kind name.
        kind: &'static str,
        /// The key.
        key: String,
    },
    /// A guarded delete found a record referring to it.
    #[error("{} {:?} refers to it", by.kind.as_str(), by.key)]
    Referenced {
        /// The referring record.
        by: Box<Record>,
    },
    /// The `--db-url` is not one we can use.
    #[error("--db-url {0}")]
    BadUrl(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored labels could not be decoded.
    #[error("corrupt labels in {kind} {key:?}: {source}")]
    CorruptLabels {
        /// Kind name.
        kind: &'static str,
        /// The key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// The store, bound to one tenant: one of the two backends, and the cache of hot
/// records ([`Store::get_cached`]) that every write through it keeps current.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    cache: Arc<RecordCache>,
    tenant: Arc<str>,
}

/// One of the two databases.
#[derive(Clone, Debug)]
enum Backend {
    /// SQLite (embedded).
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL (shared by replicas).
    Postgres(postgres::PostgresStore),
}

impl Store {
    /// Opens the database `url` names and runs the migrations.
    ///
    /// # Errors
    /// [`StoreError::BadUrl`] for an unknown scheme; [`StoreError::Database`] when it
    /// cannot be opened or migrated.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::SqliteStore::open(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::PostgresStore::open(url).await?)
        } else {
            return Err(StoreError::BadUrl(format!(
                "{:?}: use sqlite:<path>, sqlite::memory: or postgres://user@host/db",
                redact_url(url)
            )));
        };
        Ok(Self {
            backend,
            cache: Arc::new(RecordCache::new(DEFAULT_CACHE_TTL, cache::CAPACITY)),
            tenant: Arc::from(DEFAULT_TENANT),
        })
    }

    /// This store bound to `tenant` (same database and cache).
    #[must_use]
    pub fn in_tenant(&self, tenant: &str) -> Self {
        Self {
            backend: self.backend.clone(),
            cache: Arc::clone(&self.cache),
            tenant: Arc::from(tenant),
        }
    }

    /// The tenant this handle reads and writes.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// This store with hot records cached for `ttl` (zero: not cached). Another
    /// replica's writes show in [`Store::get_cached`] within `ttl`.
    #[must_use]
    pub fn with_cache_ttl(self, ttl: Duration) -> Self {
        Self {
            backend: self.backend,
            cache: Arc::new(RecordCache::new(ttl, cache::CAPACITY)),
            tenant: self.tenant,
        }
    }

    /// Checks `url`'s syntax without connecting (`--check-config`); for a SQLite file,
    /// also that its directory is one only we control (or can be created so).
    ///
    /// # Errors
    /// A message naming what is wrong, the URL's password redacted.
    pub fn check_url(url: &str) -> Result<String, String> {
        use std::str::FromStr as _;
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .map_err(|e| format!("{shown:?}: {e}"))?;
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Ok("SQLite in memory (records are lost at exit)".into());
            }
            let file = options.get_filename();
            let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(std::path::Path::new("."));
            if parent.exists() {
                proto::private::check_dir(parent)?;
            }
            if file.exists() {
                proto::private::check_secret_file(file)?;
            }
            Ok(format!("SQLite file {}", file.display()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = sqlx::postgres::PgConnectOptions::from_str(url)
                .map_err(|e| format!("{shown:?}: {e}"))?;
            Ok(format!(
                "PostgreSQL at {}:{} (not connected by the check)",
                options.get_host(),
                options.get_port()
            ))
        } else {
            Err(format!(
                "{shown:?}: use sqlite:<path>, sqlite::memory: or postgres://user@host/db"
            ))
        }
    }

    /// Which backend this is ("sqlite" or "postgres").
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Creates `record`; fails if its key, or its owner's name, is taken.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], [`StoreError::Database`].
    pub async fn create(&self, record: &Record) -> Result<u64, StoreError> {
        let labels = encode_labels(&record.labels);
        let _invalidate = OnWrite::key(&self.cache, record.kind, &self.tenant, &record.key);
        let created = match &self.backend {
            Backend::Sqlite(s) => s.create(&self.tenant, record, &labels).await?,
            Backend::Postgres(s) => s.create(&self.tenant, record, &labels).await?,
        };
        created.ok_or_else(|| StoreError::AlreadyExists {
            kind: record.kind.as_str(),
            key: record.key.clone(),
        })
    }

    /// Replaces the record with `record.kind`/`record.key` if its version is still
    /// `record.version`; returns the new version.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`], [`StoreError::AlreadyExists`]
    /// (the new name is taken), [`StoreError::Database`].
    pub async fn update(&self, record: &Record) -> Result<u64, StoreError> {
        let labels = encode_labels(&record.labels);
        let _invalidate = OnWrite::key(&self.cache, record.kind, &self.tenant, &record.key);
        let updated = match &self.backend {
            Backend::Sqlite(s) => s.update(&self.tenant, record, &labels).await,
            Backend::Postgres(s) => s.update(&self.tenant, record, &labels).await,
        };
        match updated {
            Ok(Some(version)) => Ok(version),
            Ok(None) => Err(self.miss(record.kind, &record.key, record.version).await),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::AlreadyExists {
                    kind: record.kind.as_str(),
                    key: record.name.clone(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes the record if present and (when `expected` is given) still at that
    /// version. Returns whether a record was removed.
    ///
    /// # Errors
    /// [`StoreError::Conflict`], [`StoreError::Database`].
    pub async fn delete(
        &self,
        kind: Kind,
        key: &str,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let _invalidate = OnWrite::key(&self.cache, kind, &self.tenant, key);
        let removed = match &self.backend {
            Backend::Sqlite(s) => s.delete(&self.tenant, kind, key, expected).await?,
            Backend::Postgres(s) => s.delete(&self.tenant, kind, key, expected).await?,
        };
        if removed {
            return Ok(true);
        }
        match expected {
            Some(version) => match self.miss(kind, key, version).await {
                StoreError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
            None => Ok(false),
        }
    }

    /// The record with this key, if any.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn get(&self, kind: Kind, key: &str) -> Result<Option<Record>, StoreError> {
        let row = match &self.backend {
            Backend::Sqlite(s) => s.get(&self.tenant, kind, key).await?,
            Backend::Postgres(s) => s.get(&self.tenant, kind, key).await?,
        };
        row.map(|row| row.into_record(kind)).transpose()
    }

    /// The record with this key as [`Store::get`] reads it, or as it was up to the
    /// cache's lifetime ago when another replica changed it since (this replica's own
    /// writes show at once). For the hot read-only paths (a sandbox's resolve and
    /// bundle); a read that feeds a conditional write uses [`Store::get`].
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn get_cached(&self, kind: Kind, key: &str) -> Result<Option<Record>, StoreError> {
        if let Some(answer) = self.cache.get(kind, &self.tenant, key) {
            return Ok(answer);
        }
        let fill = self.cache.begin_fill();
        let record = self.get(kind, key).await?;
        self.cache
            .fill(fill, kind, &self.tenant, key, record.as_ref());
        Ok(record)
    }

    /// The record `owner` has named `name`, if any.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn get_by_name(
        &self,
        kind: Kind,
        owner: &str,
        name: &str,
    ) -> Result<Option<Record>, StoreError> {
        let row = match &self.backend {
            Backend::Sqlite(s) => s.get_by_name(&self.tenant, kind, owner, name).await?,
            Backend::Postgres(s) => s.get_by_name(&self.tenant, kind, owner, name).await?,
        };
        row.map(|row| row.into_record(kind)).transpose()
    }

    /// How many records of `kind` `owner` has.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn count(&self, kind: Kind, owner: &str) -> Result<usize, StoreError> {
        self.count_up_to(kind, owner, usize::MAX).await
    }

    /// How many records of `kind` `owner` has, counted no further than `limit`: the
    /// cost of a per-owner limit check stays within the limit however many the owner
    /// has.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn count_up_to(
        &self,
        kind: Kind,
        owner: &str,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let count = match &self.backend {
            Backend::Sqlite(s) => s.count_up_to(&self.tenant, kind, owner, limit).await?,
            Backend::Postgres(s) => s.count_up_to(&self.tenant, kind, owner, limit).await?,
        };
        Ok(usize::try_from(count).unwrap_or_default())
    }

    /// Records of `kind` that pass `filter`, ordered by key.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list(&self, kind: Kind, filter: &Filter) -> Result<Vec<Record>, StoreError> {
        self.list_in(Some(&self.tenant), kind, filter).await
    }

    /// Every record of `kind` in every tenant, ordered by tenant and key: for the
    /// gateway's own bookkeeping (reconciling with the drivers), never for a caller.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_every_tenant(&self, kind: Kind) -> Result<Vec<Record>, StoreError> {
        self.list_in(None, kind, &Filter::default()).await
    }

    async fn list_in(
        &self,
        tenant: Option<&str>,
        kind: Kind,
        filter: &Filter,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = match &self.backend {
            Backend::Sqlite(s) => s.list(tenant, kind, filter).await?,
            Backend::Postgres(s) => s.list(tenant, kind, filter).await?,
        };
        rows.into_iter().map(|row| row.into_record(kind)).collect()
    }

    /// `write` if every record in `requires` (kind, tenant, key: a route or sandbox
    /// may name a platform provider) exists, checked and written in one
    /// transaction (a concurrent delete of a required record either happens before,
    /// and this fails, or waits and then sees this write). Returns the new version.
    ///
    /// # Errors
    /// [`StoreError::MissingReference`] naming the first missing record, then as
    /// [`Store::create`] or [`Store::update`].
    pub async fn write_if_present(
        &self,
        write: Write<'_>,
        requires: &[(Kind, &str, &str)],
    ) -> Result<u64, StoreError> {
        self.write_if_present_with(write, requires, Durability::Synced)
            .await
    }

    /// [`Store::write_if_present`] with the commit's [`Durability`].
    ///
    /// # Errors
    /// As [`Store::write_if_present`].
    pub async fn write_if_present_with(
        &self,
        write: Write<'_>,
        requires: &[(Kind, &str, &str)],
        durability: Durability,
    ) -> Result<u64, StoreError> {
        let record = match write {
            Write::Create(record) | Write::Update(record) => record,
        };
        let labels = encode_labels(&record.labels);
        let _invalidate = OnWrite::key(&self.cache, record.kind, &self.tenant, &record.key);
        let tenant = &self.tenant;
        let written = match &self.backend {
            Backend::Sqlite(s) => {
                s.write_if_present(tenant, write, &labels, requires, durability)
                    .await
            }
            Backend::Postgres(s) => {
                s.write_if_present(tenant, write, &labels, requires, durability)
                    .await
            }
        };
        match written {
            Ok(Ok(Some(version))) => Ok(version),
            Ok(Ok(None)) => match write {
                Write::Create(_) => Err(StoreError::AlreadyExists {
                    kind: record.kind.as_str(),
                    key: record.key.clone(),
                }),
                Write::Update(_) => Err(self.miss(record.kind, &record.key, record.version).await),
            },
            Ok(Err((kind, key))) => Err(StoreError::MissingReference {
                kind: kind.as_str(),
                key,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::AlreadyExists {
                    kind: record.kind.as_str(),
                    key: record.name.clone(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes `kind`/`key` at `version` unless a record of a kind in `by`, in any
    /// tenant (`refers` sees each one's tenant), refers to it, checked and deleted in one transaction (a concurrent
    /// [`Store::write_if_present`] naming it either lands first and is found, or
    /// waits and then finds it gone).
    ///
    /// # Errors
    /// [`StoreError::Referenced`] with the first referrer; [`StoreError::NotFound`] or
    /// [`StoreError::Conflict`] when the record is gone or moved on.
    pub async fn delete_unless_referenced(
        &self,
        kind: Kind,
        key: &str,
        version: u64,
        by: &[Kind],
        refers: &(dyn Fn(&Record) -> bool + Send + Sync),
    ) -> Result<(), StoreError> {
        let _invalidate = OnWrite::key(&self.cache, kind, &self.tenant, key);
        let tenant = &self.tenant;
        let deleted = match &self.backend {
            Backend::Sqlite(s) => {
                s.delete_unless_referenced(tenant, kind, key, version, by, refers)
                    .await?
            }
            Backend::Postgres(s) => {
                s.delete_unless_referenced(tenant, kind, key, version, by, refers)
                    .await?
            }
        };
        match deleted {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.miss(kind, key, version).await),
            Err(referrer) => Err(StoreError::Referenced {
                by: Box::new(referrer),
            }),
        }
    }

    /// Applies `rewrite` to every record, once per `marker`: all changed records are
    /// replaced in one transaction (serialized across replicas) that also records the
    /// marker, so a crash leaves either nothing or everything done. Returns how many
    /// records changed (0 when the marker was already there).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::CorruptLabels`].
    pub async fn rewrite_once(
        &self,
        marker: &str,
        rewrite: &(dyn Fn(&Record) -> Option<Record> + Send + Sync),
    ) -> Result<usize, StoreError> {
        let _invalidate = OnWrite::all(&self.cache);
        match &self.backend {
            Backend::Sqlite(s) => s.rewrite_once(marker, rewrite).await,
            Backend::Postgres(s) => s.rewrite_once(marker, rewrite).await,
        }
    }

    /// Why a conditional write matched nothing: the record is gone, or it moved on.
    async fn miss(&self, kind: Kind, key: &str, expected: u64) -> StoreError {
        match self.get(kind, key).await {
            Ok(Some(_)) => StoreError::Conflict {
                kind: kind.as_str(),
                key: key.to_owned(),
                expected,
            },
            Ok(None) => StoreError::NotFound {
                kind: kind.as_str(),
                key: key.to_owned(),
            },
            Err(error) => error,
        }
    }
}

/// A row as both backends read it.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) tenant: String,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) owner: String,
    pub(crate) labels: String,
    pub(crate) body: Vec<u8>,
    pub(crate) version: i64,
}

impl From<backend::RowTuple> for Row {
    fn from((tenant, key, name, owner, labels, body, version): backend::RowTuple) -> Self {
        Self {
            tenant,
            key,
            name,
            owner,
            labels,
            body,
            version,
        }
    }
}

impl Row {
    pub(crate) fn into_record(self, kind: Kind) -> Result<Record, StoreError> {
        let labels =
            serde_json::from_str(&self.labels).map_err(|source| StoreError::CorruptLabels {
                kind: kind.as_str(),
                key: self.key.clone(),
                source,
            })?;
        Ok(Record {
            kind,
            tenant: self.tenant,
            key: self.key,
            name: self.name,
            owner: self.owner,
            labels,
            body: self.body,
            version: u64::try_from(self.version).unwrap_or_default(),
        })
    }
}

pub(crate) fn encode_labels(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_owned())
}

/// Versions are BIGINT in the database.
pub(crate) fn db_version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// `url` without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:[redacted]{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://gw:s3cret@db:5432/gw"),
            "postgres://gw:[redacted]@db:5432/gw"
        );
        assert_eq!(redact_url("postgres://gw@db/gw"), "postgres://gw@db/gw");
        assert_eq!(redact_url("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    }
}
