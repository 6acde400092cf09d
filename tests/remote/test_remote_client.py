"""What the remote client adds to the shared contract: transport, retries, errors, async.

The shared behaviour (every Hub/Tenant method) is tested by tests/store/test_contract.py with
the ``remote`` backend. Transport behaviour is tested here with ``httpx.MockTransport`` (a
real transport implementation, not a patch) and a real server for the async client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import confhub
from confhub.errors import (
    ConfhubError,
    InvalidName,
    InvalidRequest,
    InvalidValue,
    NotFound,
    TooLarge,
    Unavailable,
    VersionConflict,
)
from confhub.remote import AsyncRemoteHub, RemoteHub, error_from_response
from confhub.server.testing import free_port, threaded_server

ENTRY = {"tenant": "default", "env": "base", "namespace": "m", "key": "k", "value": {"a": 1},
         "version": 1, "revision": 1, "created_at": "2026-01-01T00:00:00+00:00",
         "updated_at": "2026-01-01T00:00:00+00:00", "updated_by": None, "secret": False}


def error(status: int, code: str, **details: object) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": "m",
                                                  "details": details}})


def mock_hub(handler: Callable[[httpx.Request], httpx.Response]) -> RemoteHub:
    return RemoteHub("http://confhub.test", transport=httpx.MockTransport(handler), backoff=0)


class TestOpen:
    def test_open_of_an_http_url_is_a_remote_hub(self) -> None:
        hub = confhub.open("http://127.0.0.1:1", token="s3cret")
        assert isinstance(hub, RemoteHub)
        assert "s3cret" not in repr(hub)
        hub.close()

    def test_token_is_sent_as_bearer(self) -> None:
        seen: list[str | None] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers.get("authorization"))
            return httpx.Response(200, json=ENTRY)

        hub = RemoteHub("http://x.test", token="t0k", transport=httpx.MockTransport(handler))
        hub.tenant().get("m", "k")
        assert seen == ["Bearer t0k"]


class TestErrors:
    @pytest.mark.parametrize(("response", "cls"), [
        (error(404, "not_found"), NotFound),
        (error(412, "version_conflict", current_version=3), VersionConflict),
        (error(413, "too_large"), TooLarge),
        (error(400, "invalid_name"), InvalidName),
        (error(415, "unsupported_media_type"), InvalidRequest),
        (error(405, "method_not_allowed"), InvalidRequest),
        (error(503, "unavailable"), Unavailable),
        (error(502, "bad_gateway"), Unavailable),
        (httpx.Response(500, text="<html>oops</html>"), ConfhubError),
    ])
    def test_error_bodies_become_the_embedded_exceptions(
            self, response: httpx.Response, cls: type[ConfhubError]) -> None:
        assert type(error_from_response(response)) is cls

    def test_conflict_carries_current_version(self) -> None:
        exc = error_from_response(error(412, "version_conflict", current_version=3))
        assert isinstance(exc, VersionConflict) and exc.current_version == 3

    def test_details_named_like_constructor_args_do_not_break(self) -> None:
        exc = error_from_response(error(404, "not_found", message="x"))
        assert isinstance(exc, NotFound) and exc.details == {"message": "x"}

    def test_bad_names_and_values_fail_before_any_request(self) -> None:
        hub = mock_hub(lambda request: pytest.fail("no request expected"))
        with pytest.raises(InvalidName):
            hub.tenant().set("a/b", "k", 1)
        with pytest.raises(InvalidValue):
            hub.tenant().set("a", "k", float("nan"))
        with pytest.raises(InvalidValue):
            hub.tenant().set("a", "k", {1: "non-string key"})
        with pytest.raises(InvalidRequest):
            hub.tenant().set("a", "k", 1, expected_version=-1)


class TestRetries:
    def test_reads_are_retried_on_503(self) -> None:
        answers = [error(503, "unavailable"), error(503, "unavailable"),
                   httpx.Response(200, json=ENTRY)]
        hub = mock_hub(lambda request: answers.pop(0))
        assert hub.tenant().get("m", "k").version == 1 and not answers

    def test_reads_give_up_after_the_retries(self) -> None:
        calls: list[int] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(1)
            return error(503, "unavailable")

        hub = mock_hub(handler)
        with pytest.raises(Unavailable):
            hub.tenant().get("m", "k")
        assert len(calls) == hub.retries + 1

    def test_sent_writes_are_never_retried(self) -> None:
        calls: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(request.method)
            raise httpx.ReadTimeout("slow", request=request)

        hub = mock_hub(handler)
        with pytest.raises(Unavailable, match="may or may not have been applied"):
            hub.tenant().set("m", "k", 1)
        assert calls == ["PUT"]

    def test_writes_are_retried_when_the_connection_failed(self) -> None:
        calls: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(request.method)
            if len(calls) == 1:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(201, json=ENTRY)

        assert mock_hub(handler).tenant().set("m", "k", {"a": 1}).version == 1
        assert calls == ["PUT", "PUT"]

    def test_no_server_is_unavailable_and_health_says_so(self) -> None:
        hub = RemoteHub(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0, timeout=2)
        with pytest.raises(Unavailable, match="cannot reach"):
            hub.tenant().get("m", "k")
        assert hub.health()["ok"] is False


class TestWire:
    def test_write_metadata_travels_as_headers(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=ENTRY)

        mock_hub(handler).tenant("acme").set("m", "k", {"a": 1}, expected_version=0,
                                             reason="café", author="ops",
                                             metadata={"ticket": "X-1"})
        (request,) = seen
        assert request.url.path == "/v1/tenants/acme/configs/m/k"
        assert request.headers["if-none-match"] == "*"
        assert dict(request.headers.raw)[b"x-confhub-reason"] == "café".encode()
        assert json.loads(request.headers["x-confhub-metadata"]) == {"ticket": "X-1"}
        assert json.loads(request.content) == {"a": 1}

    def test_values_come_back_frozen(self) -> None:
        entry = mock_hub(lambda request: httpx.Response(200, json=ENTRY)).tenant().get("m", "k")
        with pytest.raises(TypeError):
            entry.value["a"] = 2


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with threaded_server(tmp_path / "c.db") as url:
        yield url


def test_async_client_round_trip(server: str) -> None:
    async def scenario() -> None:
        async with AsyncRemoteHub(server) as hub:
            cfg = hub.tenant()
            first = await cfg.set("models", "opus", {"max_tokens": 1})
            assert first.version == 1
            await cfg.patch("models", "opus", {"t": 0.2})
            assert (await cfg.get("models", "opus")).value == {"max_tokens": 1, "t": 0.2}
            async with cfg.transaction(reason="batch") as tx:
                tx.set("routing", "a", 1)
                tx.delete("models", "opus")
            assert tx.revision == 3
            assert [e.key for e in await cfg.list("routing")] == ["a"]
            with pytest.raises(NotFound):
                await cfg.get("models", "opus")
            assert (await hub.health())["ok"] is True

    asyncio.run(scenario())


def test_list_follows_pages(server: str) -> None:
    hub = RemoteHub(server)
    with hub.tenant().transaction() as tx:
        for i in range(25):
            tx.set("many", f"k{i:03d}", i)
    entries = hub.tenant().list("many")
    assert [e.value for e in entries] == list(range(25))
    hub.close()


def test_async_client_validation(server: str) -> None:
    """The async client has the validation surface: schemas, validate, warnings, typed reads."""
    from pydantic import BaseModel

    from confhub import ValidationFailed

    class Limits(BaseModel):
        depth: int

    async def scenario() -> None:
        async with AsyncRemoteHub(server) as hub:
            cfg = hub.tenant()
            schema = await cfg.set_schema(
                "params", {"type": "object", "properties": {"depth": {"maximum": 64}}},
                [{"expr": "!has(self.depth) || self.depth <= 32", "message": "deep",
                  "severity": "warning"}])
            assert schema.version == 1
            assert not (await cfg.validate("params", "a", {"depth": 65})).valid
            with pytest.raises(ValidationFailed) as caught:
                await cfg.set("params", "a", {"depth": 65})
            assert caught.value.report.errors[0].path == "/depth"
            entry = await cfg.set("params", "a", {"depth": 40})
            assert [w.path for w in entry.warnings] == ["/depth"]
            assert (await cfg.get_typed("params", "a", Limits)).depth == 40
            assert [s.version for s in await cfg.schema_history("params")] == [1]
            assert (await cfg.schema_annotations("params", "a")) == {
                "secret": [], "restart_required": []}

    asyncio.run(scenario())


def test_leaving_watch_async_early_closes_its_stream_cleanly(server: str) -> None:
    """A consumer that stops reading ``watch_async`` after a few changes (a ``return`` inside
    ``async for``) and ends its event loop right after leaves nothing half closed: no httpx
    response collected mid-close, no "asynchronous generator is already running". Before
    the fix this happened in about half of the runs, so ten are made."""
    import gc
    import sys

    hub = confhub.open(server)
    cfg = hub.tenant()
    cfg.set("models", "a", 1)
    unraisable: list[str] = []
    hook, sys.unraisablehook = sys.unraisablehook, (
        lambda failed: unraisable.append(f"{failed.exc_type.__name__}: {failed.object!r}"))

    async def first_three() -> list[int]:
        seen: list[int] = []

        async def consume() -> None:
            async for change in cfg.watch_async(namespace="models", since=0):
                seen.append(change.revision)
                if len(seen) == 3:
                    return

        task = asyncio.create_task(consume())
        await asyncio.to_thread(cfg.set, "models", "b", 2)
        await asyncio.to_thread(cfg.set, "models", "c", 3)
        await asyncio.wait_for(task, 20)
        return seen

    try:
        for _ in range(10):
            revisions = asyncio.run(first_three())
            assert len(revisions) == 3 and revisions == sorted(revisions)
            gc.collect()
    finally:
        sys.unraisablehook = hook
        hub.close()
    assert unraisable == []
