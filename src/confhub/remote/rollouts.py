"""``tenant.rollouts`` over HTTP: the embedded ``cfg.rollouts`` surface, as REST calls.

Paths (DESIGN.md section 8)::

    GET/POST /v1/tenants/{t}/rollouts                 list, start
    GET      /v1/tenants/{t}/rollouts/{id}            one, with its cohort's health
    POST     /v1/tenants/{t}/rollouts/{id}/advance|pause|resume|rollback
    GET      /v1/tenants/{t}/consumers[/{client_id}]  the consumer registry
    POST     /v1/tenants/{t}/consumers/{client_id}/reports   a consumer's report
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..identity import Consumer, reporter
from ..rollout import Rollout, Strategy
from .plans import _Call

if TYPE_CHECKING:
    from .sync import RemoteTenant

__all__ = ["RemoteRollouts"]


def _rollout(data: Any) -> Rollout:
    return Rollout.from_dict(data)


def _seg(text: str) -> str:
    return quote(text, safe="")


class RemoteRollouts:
    """The rollouts of one remote tenant; the methods of the embedded ``cfg.rollouts``."""

    def __init__(self, tenant: RemoteTenant) -> None:
        self._tenant = tenant
        self._base = f"/v1/tenants/{_seg(tenant.name)}"

    def __repr__(self) -> str:
        return f"<confhub rollouts of {self._tenant.name!r} (remote)>"

    def list(self, *, state: str | None = None) -> builtins.list[Rollout]:
        return self._tenant._run(_Call(
            "GET", f"{self._base}/rollouts",
            lambda d: [_rollout(item) for item in d["items"]], params={"state": state}))

    def get(self, rollout_id: str, *, health: bool = True) -> Rollout:
        return self._tenant._run(_Call("GET", f"{self._base}/rollouts/{_seg(rollout_id)}",
                                       _rollout, params={"health": health}))

    def start(self, ops: Sequence[Mapping[str, Any]], *, strategy: str | Strategy | None = None,
              steps: str | Sequence[object] | None = None, bake: object = None,
              final_bake: object = None, max_failure: object = 0.0, min_reports: object = 1,
              min_ack: object = 0.0, auto: bool = True, selector: str | None = None,
              clients: Sequence[str] | None = None, reason: str | None = None,
              author: str | None = None, gate_prometheus: str | None = None,
              gate_query: str | None = None) -> Rollout:
        body: dict[str, Any] = {"ops": [dict(op) for op in ops]}
        if isinstance(strategy, Strategy):
            body.update(steps=list(strategy.steps), bake=list(strategy.bake),
                        max_failure=strategy.max_failure, min_reports=strategy.min_reports,
                        min_ack=strategy.min_ack, auto=strategy.auto)
        else:
            body.update(strategy=strategy, steps=steps if isinstance(steps, str | None)
                        else list(steps), bake=bake, final_bake=final_bake,
                        max_failure=max_failure, min_reports=min_reports, min_ack=min_ack,
                        auto=auto)
        body.update(selector=selector, clients=list(clients) if clients is not None else None,
                    reason=reason, author=author, gate_prometheus=gate_prometheus,
                    gate_query=gate_query)
        body = {k: v for k, v in body.items() if v is not None}
        return self._tenant._run(_Call("POST", f"{self._base}/rollouts", _rollout, body=body))

    def _move(self, rollout_id: str, action: str, reason: str | None,
              author: str | None) -> Rollout:
        body = {k: v for k, v in (("reason", reason), ("author", author)) if v is not None}
        return self._tenant._run(_Call(
            "POST", f"{self._base}/rollouts/{_seg(rollout_id)}/{action}", _rollout, body=body))

    def advance(self, rollout_id: str, *, reason: str | None = None,
                author: str | None = None) -> Rollout:
        return self._move(rollout_id, "advance", reason, author)

    def pause(self, rollout_id: str, *, reason: str | None = None,
              author: str | None = None) -> Rollout:
        return self._move(rollout_id, "pause", reason, author)

    def resume(self, rollout_id: str, *, reason: str | None = None,
               author: str | None = None) -> Rollout:
        return self._move(rollout_id, "resume", reason, author)

    def rollback(self, rollout_id: str, *, reason: str | None = None,
                 author: str | None = None) -> Rollout:
        return self._move(rollout_id, "rollback", reason, author)

    # ------------------------------------------------------------------ consumers

    def consumers(self, client_id: str | None = None) -> builtins.list[Consumer]:
        if client_id is not None:
            return [self._tenant._run(_Call(
                "GET", f"{self._base}/consumers/{_seg(client_id)}", Consumer.from_dict))]
        return self._tenant._run(_Call(
            "GET", f"{self._base}/consumers",
            lambda d: [Consumer.from_dict(item) for item in d["items"]]))

    def report(self, rollout_id: str, status: str, reason: str | None = None, *,
               client_id: str | None = None) -> None:
        who = reporter(client_id, self._tenant.identity)
        body = {"rollout": rollout_id, "status": status}
        if reason is not None:
            body["reason"] = reason
        self._tenant._run(_Call(
            "POST", f"{self._base}/consumers/{_seg(who)}/reports",
            lambda d: None, body=body))

    def report_health(self, ok: bool = True, reason: str | None = None) -> builtins.list[str]:
        """Report to every running rollout whose cohort this consumer is in; their ids."""
        who = reporter(None, self._tenant.identity)
        listed = self.consumers(who)
        rollouts = list(listed[0].rollouts) if listed else []
        for rollout_id in rollouts:
            self.report(rollout_id, "healthy" if ok else "unhealthy", reason)
        return rollouts
