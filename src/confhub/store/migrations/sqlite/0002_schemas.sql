-- confhub schema 2: versioned validation schemas per namespace (issue 5).
-- scope is a tenant id, or '*' for a schema that applies to every tenant (a tenant's own
-- schema for the namespace wins). The latest version of (scope, namespace) is the one in force;
-- a deleted version is a tombstone, as for keys. document is canonical JSON text:
-- {"schema": ..., "rules": [...], "key_pattern": ...}.
CREATE TABLE confhub_schemas (
    scope TEXT NOT NULL,
    namespace TEXT NOT NULL,
    version INTEGER NOT NULL,
    document TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    author TEXT,
    reason TEXT,
    rollback_of INTEGER,
    PRIMARY KEY (scope, namespace, version)
);
-- Every env layer of one key (validating a base write re-resolves each overlay).
CREATE INDEX confhub_current_key ON confhub_current (tenant, namespace, key);
