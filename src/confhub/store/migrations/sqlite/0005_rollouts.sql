-- confhub schema 5: staged rollouts. Independent of schemas 4 and 6: touches no table of them.
-- A rollout itself is a versioned document in its tenant's feed (reserved namespace .rollouts);
-- this index names the rollouts still running or paused, so a server finds them without
-- reading every tenant.
CREATE TABLE confhub_rollouts (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX confhub_rollouts_state ON confhub_rollouts (state, tenant);
-- Consumers seen per tenant: identity, labels, last seen, revision applied.
CREATE TABLE confhub_consumers (
    tenant TEXT NOT NULL,
    client_id TEXT NOT NULL,
    labels TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (tenant, client_id)
);
-- Each consumer's latest health report per rollout (applied / failed / healthy / unhealthy).
CREATE TABLE confhub_rollout_reports (
    tenant TEXT NOT NULL,
    rollout_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    step INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant, rollout_id, client_id)
);
CREATE INDEX confhub_rollout_reports_client ON confhub_rollout_reports (tenant, client_id, at);
