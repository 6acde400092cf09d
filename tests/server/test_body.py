"""Reading a request body straight from ``receive`` (server/body.py) behaves as Starlette's
``Request.stream()`` did: chunks joined, a disconnect is ``ClientDisconnect``, the size limit
holds whether the length is declared or streamed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel
from starlette.requests import ClientDisconnect, Request

from confhub.errors import InvalidRequest, TooLarge
from confhub.server.body import MediaTypeError, read_json, read_model


def request_of(messages: list[dict[str, Any]], headers: dict[str, str] | None = None
               ) -> tuple[Request, list[dict[str, Any]]]:
    """A Request whose ``receive`` hands out ``messages``; the list left shows what was read."""
    left = list(messages)

    async def receive() -> dict[str, Any]:
        return left.pop(0)

    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "PUT", "headers": raw}, receive), left


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


def read(messages: list[dict[str, Any]], headers: dict[str, str] | None = None,
         limit: int = 100) -> Any:
    request, _ = request_of(messages, headers)
    return asyncio.run(read_json(request, limit=limit))


class TestReadJson:
    def test_a_body_in_one_message_is_parsed(self) -> None:
        assert read([body(b'{"a": 1}')]) == {"a": 1}

    def test_chunks_are_joined_until_the_last(self) -> None:
        assert read([body(b'{"a"', True), body(b"", True), body(b": 1}")]) == {"a": 1}

    def test_nothing_past_the_last_body_message_is_read(self) -> None:
        request, left = request_of([body(b"1"), {"type": "http.disconnect"}])
        assert asyncio.run(read_json(request)) == 1
        assert left == [{"type": "http.disconnect"}]

    def test_a_message_without_a_body_key_is_an_empty_body(self) -> None:
        with pytest.raises(InvalidRequest, match="empty"):
            read([{"type": "http.request"}])

    @pytest.mark.parametrize("before", [[], [body(b"[1,", True)]])
    def test_a_disconnect_is_client_disconnect(self, before: list[dict[str, Any]]) -> None:
        with pytest.raises(ClientDisconnect):
            read([*before, {"type": "http.disconnect"}])

    def test_a_declared_length_past_the_limit_is_refused_before_reading(self) -> None:
        request, left = request_of([body(b"1")], {"Content-Length": "101"})
        with pytest.raises(TooLarge, match="request body is 101 bytes; the limit is 100"):
            asyncio.run(read_json(request, limit=100))
        assert left == [body(b"1")]

    def test_a_streamed_body_past_the_limit_is_refused(self) -> None:
        with pytest.raises(TooLarge, match="exceeds the limit of 100 bytes"):
            read([body(b"1" * 60, True), body(b"1" * 60)])

    def test_a_body_of_exactly_the_limit_is_read(self) -> None:
        assert read([body(b"1" * 50, True), body(b"1" * 50)]) == int("1" * 100)

    def test_a_content_length_that_is_not_a_number_is_invalid(self) -> None:
        with pytest.raises(InvalidRequest, match="Content-Length is not a number"):
            read([body(b"1")], {"Content-Length": "ten"})

    def test_the_media_type_is_checked_before_reading(self) -> None:
        request, left = request_of([body(b"1")], {"Content-Type": "text/plain"})
        with pytest.raises(MediaTypeError):
            asyncio.run(read_json(request))
        assert left == [body(b"1")]


class Move(BaseModel):
    reason: str | None = None


class TestReadModelWithEmpty:
    def test_no_body_is_the_empty_value_whatever_the_media_type(self) -> None:
        request, _ = request_of([body(b"")], {"Content-Type": "text/plain"})
        assert asyncio.run(read_model(request, Move, empty=Move(reason="none"))).reason == "none"

    def test_a_body_is_parsed(self) -> None:
        request, _ = request_of([body(b'{"reason": "r"}')])
        assert asyncio.run(read_model(request, Move, empty=Move())).reason == "r"

    def test_a_body_of_another_media_type_is_415(self) -> None:
        request, _ = request_of([body(b"{}")], {"Content-Type": "text/plain"})
        with pytest.raises(MediaTypeError):
            asyncio.run(read_model(request, Move, empty=Move()))

    def test_whitespace_is_a_body_and_not_json(self) -> None:
        request, _ = request_of([body(b" ")])
        with pytest.raises(InvalidRequest, match="empty"):
            asyncio.run(read_model(request, Move, empty=Move()))
