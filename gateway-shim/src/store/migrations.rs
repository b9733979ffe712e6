//! Schema migrations, shared by both backends: numbered steps applied in order, each
//! once, recorded in `schema_migrations`.

/// `(version, statements)`; append, never edit a released step.
pub(crate) const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &["CREATE TABLE IF NOT EXISTS objects (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            name TEXT NOT NULL,
            owner TEXT NOT NULL,
            labels TEXT NOT NULL,
            body BYTES NOT NULL,
            version BIGINT NOT NULL,
            PRIMARY KEY (kind, key),
            UNIQUE (kind, owner, name)
        )"],
    ),
    // Listings filtered by owner, in key order, without scanning everyone's records.
    (
        2,
        &["CREATE INDEX IF NOT EXISTS objects_by_owner ON objects (kind, owner, key)"],
    ),
    // Tenants: every record belongs to one, keys and names are unique within it (the
    // primary key and the unique name gain `tenant`). Records before tenants belong to
    // `default`; gateway settings to the platform.
    (
        3,
        &[
            "CREATE TABLE objects_t (
                kind TEXT NOT NULL,
                tenant TEXT NOT NULL,
                key TEXT NOT NULL,
                name TEXT NOT NULL,
                owner TEXT NOT NULL,
                labels TEXT NOT NULL,
                body BYTES NOT NULL,
                version BIGINT NOT NULL,
                PRIMARY KEY (kind, tenant, key),
                UNIQUE (kind, tenant, owner, name)
            )",
            "INSERT INTO objects_t (kind, tenant, key, name, owner, labels, body, version)
             SELECT kind, CASE WHEN kind = 'setting' THEN '_platform' ELSE 'default' END,
                    key, name, owner, labels, body, version
             FROM objects",
            "DROP TABLE objects",
            "ALTER TABLE objects_t RENAME TO objects",
            "CREATE INDEX IF NOT EXISTS objects_by_tenant_owner ON objects (kind, tenant, owner, key)",
        ],
    ),
    // Usage metering: one row per metered call, appended in batches, read by caller and
    // time (the internal API).
    (
        4,
        &[
            "CREATE TABLE IF NOT EXISTS usage_events (
                ts_ms BIGINT NOT NULL,
                tenant TEXT NOT NULL,
                caller TEXT NOT NULL,
                method TEXT NOT NULL,
                outcome TEXT NOT NULL,
                credential TEXT NOT NULL,
                sandbox TEXT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS usage_by_caller ON usage_events (caller, ts_ms)",
        ],
    ),
];

/// The statement with the binary column type each backend spells.
pub(crate) fn for_backend(statement: &str, blob_type: &str) -> String {
    statement.replace("BYTES", blob_type)
}
