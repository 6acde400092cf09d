"""The service layer: every rule of the product lives here, whatever the interface.

``Hub`` owns one store and its cache; ``Tenant`` is the per-tenant API of DESIGN.md section 2;
``Transaction`` batches writes into one revision. Each module holds one concern:

    core            shared state (store, cache, vault, tokens, watchers, follower), commit
    cache           the in-memory view of current values, kept exact by the change feed
    rows, ops       version rows and argument checks; one write op and compare-and-set
    txn             a tenant's writes and Transaction
    reads           a tenant's reads
    feed            change feed, watches, live values
    snapshots       snapshot labels and restore
    schemas         the schema in force, write validation, restart-required flags
    schema_changes  a tenant's schema API
    sealing         secrets sealed on write, revealed on request
    credentials     token cache, the vault's data keys
    security        tokens, audit, key rotation (part of Hub)
    tenants         tenant administration (part of Hub)
    transfer        export and import (part of Hub)
    tenant, service the Tenant and Hub classes assembled from those parts

Only this package imports ``confhub.store``; it never imports an interface (server, cli,
remote, ...). ``confhub.open`` (``confhub/connect.py``) chooses between this and the remote
client.
"""

from .service import Hub, open_embedded
from .tenant import Tenant
from .txn import Transaction

__all__ = ["Hub", "Tenant", "Transaction", "open_embedded"]
