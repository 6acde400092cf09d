-- confhub schema 1: tenants, immutable versions, current pointers, snapshots.
-- Values are TEXT (not jsonb) so a value reads back byte for byte as written, key order included,
-- exactly as on SQLite.
CREATE TABLE confhub_tenants (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    revision BIGINT NOT NULL DEFAULT 0,
    compacted_revision BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE confhub_versions (
    tenant TEXT NOT NULL,
    env TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    op TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    value TEXT,
    created_at BIGINT NOT NULL,
    author TEXT,
    reason TEXT,
    metadata TEXT,
    rollback_of BIGINT,
    request_id TEXT,
    secret BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (tenant, env, namespace, key, version)
);
CREATE INDEX confhub_versions_feed ON confhub_versions (tenant, revision);
CREATE TABLE confhub_current (
    tenant TEXT NOT NULL,
    env TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, env, namespace, key)
);
CREATE TABLE confhub_snapshots (
    tenant TEXT NOT NULL,
    label TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, label)
);
