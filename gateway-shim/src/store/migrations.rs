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
];

/// The statement with the binary column type each backend spells.
pub(crate) fn for_backend(statement: &str, blob_type: &str) -> String {
    statement.replace("BYTES", blob_type)
}
