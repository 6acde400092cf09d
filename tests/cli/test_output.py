"""Output: JSON stays pure, errors go to stderr, progress never pollutes pipes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from confhub.cli.output import Output, dumps, preview, short_time
from confhub.errors import VersionConflict


def test_json_result_is_plain_json(capsys: pytest.CaptureFixture[str]) -> None:
    Output(json=True).result({"when": datetime(2026, 1, 2, tzinfo=UTC), "v": "[bold]x"},
                             lambda: None)
    assert json.loads(capsys.readouterr().out) == {"when": "2026-01-02T00:00:00+00:00",
                                                   "v": "[bold]x"}


def test_human_result_calls_the_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(json=False)
    out.result({"a": 1}, lambda: out.success("done"))
    assert "done" in capsys.readouterr().out


def test_error_json_body_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    Output(json=True).error(VersionConflict("stale", current_version=3))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["error"]["details"] == {"current_version": 3}


def test_error_for_people_has_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    Output(json=False, command="set").error(VersionConflict("stale [x]", current_version=3))
    err = capsys.readouterr().err
    assert "error: stale [x]" in err and "--expected-version 3" in err


def test_progress_is_silent_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with Output(json=False).progress("working") as update:
        update("still working")
    assert capsys.readouterr() == ("", "")


def test_helpers() -> None:
    assert preview({"a": "x" * 100}, width=10) == '{"a": "xx…'
    assert short_time("2026-01-02T03:04:05.123456+00:00") == "2026-01-02 03:04:05"
    assert short_time(None) == ""
    assert dumps([1], indent=None) == "[1]"
