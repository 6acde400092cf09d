-- confhub schema 3: security. Independent of schema 2 (validation): touches no table of it.
-- Tokens keep only a SHA-256 of the secret part; the token itself is shown once at creation.
CREATE TABLE confhub_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    tenant TEXT,
    role TEXT NOT NULL,
    namespaces TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    created_by TEXT
);
-- Data keys (AES-256) wrapped by a master key; ciphertexts name their data key by id.
CREATE TABLE confhub_data_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    master_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX confhub_data_keys_tenant ON confhub_data_keys (tenant, created_at);
-- The audit log: only ever appended to (the store offers no update or delete of it).
CREATE TABLE confhub_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT,
    tenant TEXT,
    action TEXT NOT NULL,
    target TEXT,
    request_id TEXT,
    client TEXT,
    reason TEXT,
    details TEXT
);
CREATE INDEX confhub_audit_tenant ON confhub_audit (tenant, id);
