-- confhub schema 1: tenants, immutable versions, current pointers, snapshots.
CREATE TABLE confhub_tenants (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    revision INTEGER NOT NULL DEFAULT 0,
    compacted_revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE confhub_versions (
    tenant TEXT NOT NULL,
    env TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    op TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    value TEXT,
    created_at INTEGER NOT NULL,
    author TEXT,
    reason TEXT,
    metadata TEXT,
    rollback_of INTEGER,
    request_id TEXT,
    secret INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, env, namespace, key, version)
) WITHOUT ROWID;
CREATE INDEX confhub_versions_feed ON confhub_versions (tenant, revision);
CREATE TABLE confhub_current (
    tenant TEXT NOT NULL,
    env TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, env, namespace, key)
) WITHOUT ROWID;
CREATE TABLE confhub_snapshots (
    tenant TEXT NOT NULL,
    label TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, label)
);
