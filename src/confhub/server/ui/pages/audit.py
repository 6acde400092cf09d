"""The audit log of a tenant (admins): changes, secret reveals, tokens, failed sign-ins;
filterable by action, actor, target prefix and time, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ....errors import InvalidRequest
from ...deps import call
from ..session import Session
from .common import open_tenant, param

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES"]

SHOWN = 100  # records on a page
BATCH = 1000  # records read per hub call
MAX_SCAN = 50_000  # records read to find the newest


def _time(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{what} must be a date or time like 2026-01-31 or "
                             f"2026-01-31T12:00, not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def audit(request: Request, ui: UI, session: Session) -> Response:
    name = request.path_params["tenant"]
    await open_tenant(ui, session, name, "admin", None)
    filters = {f: param(request, f).strip() or None for f in ("action", "actor", "target")}
    since, until = _time(param(request, "since"), "since"), _time(param(request, "until"),
                                                                    "until")
    # The hub pages oldest first; walk to the end (bounded) and show the newest SHOWN.
    records: list[Any] = []
    after, scanned = 0, 0
    while scanned < MAX_SCAN:
        page = await call(ui.hub.audit, name, after=after, limit=BATCH, since=since,
                          until=until, **filters)
        records = (records + page)[-SHOWN:]
        scanned += len(page)
        if len(page) < BATCH:
            break
        after = page[-1].id
    return ui.page(request, session, "audit.html", tenant=name, records=records[::-1],
                   filters=filters, since=param(request, "since"),
                   until=param(request, "until"), truncated=scanned >= MAX_SCAN)


PAGES = [("/t/{tenant}/audit", audit, ["GET"])]
