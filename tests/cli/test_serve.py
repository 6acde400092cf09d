"""``confhub serve``: its defaults reach the server, and a missing server is a clear error.

Running the real server is ``test_subprocess.py``'s job; here ``run`` is replaced by a recorder
at the module boundary the command is specified against (``confhub.server.serve.run``).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from typer.testing import CliRunner

import confhub.server.serve
from confhub.cli import app


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = []
    monkeypatch.setattr(confhub.server.serve, "run", lambda **kw: recorded.append(kw))
    for name in ("CONFHUB_DB", "CONFHUB_HOST", "CONFHUB_PORT"):
        monkeypatch.delenv(name, raising=False)
    return recorded


def test_no_arguments_serves_confhub_db_on_8011(calls: list[dict[str, Any]]) -> None:
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert calls == [{"db": "./confhub.db", "host": "127.0.0.1", "port": 8011, "workers": 1,
                      "insecure": False, "log_level": "info", "heartbeat": 15.0}]


def test_options_are_passed_on(calls: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", "/tmp/x.db", "--host", "0.0.0.0",
                                      "--port", "9000", "--workers", "2", "--server", "uvicorn",
                                      "--insecure"])
    assert result.exit_code == 0, result.output
    assert calls[0] == {"db": "/tmp/x.db", "host": "0.0.0.0", "port": 9000, "workers": 2,
                        "server": "uvicorn", "insecure": True, "log_level": "info",
                        "heartbeat": 15.0}


def test_hardening_options_are_passed_on(calls: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["serve", "--cors-origin", "http://localhost:3000",
                                      "--cors-origin", "https://app.example.com",
                                      "--client-timeout", "5", "--max-connections", "500"])
    assert result.exit_code == 0, result.output
    assert calls[0]["cors_origins"] == ["http://localhost:3000", "https://app.example.com"]
    assert calls[0]["client_timeout"] == 5.0 and calls[0]["max_connections"] == 500


def test_unknown_server_is_a_usage_error(calls: list[dict[str, Any]]) -> None:
    assert CliRunner().invoke(app, ["serve", "--server", "gunicorn"]).exit_code == 2
    assert calls == []


def test_missing_server_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confhub.server.serve", None)  # import now fails
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "HTTP server is not available" in result.stderr
