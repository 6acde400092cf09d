-- confhub schema 4: operations (issue 13).
-- Every version stores a checksum (hex SHA-256 of its canonical JSON, see store/maintenance.py);
-- rows written before this migration are back-filled when the store opens.
ALTER TABLE confhub_versions ADD COLUMN checksum TEXT;
-- Retention: per tenant (namespace '') or per namespace, keep the last N versions of each key
-- and/or versions younger than a duration (microseconds). NULL: no limit of that kind.
CREATE TABLE confhub_retention (
    tenant TEXT NOT NULL,
    namespace TEXT NOT NULL,
    keep_last INTEGER,
    keep_for BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, namespace)
);
