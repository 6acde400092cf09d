"""The ``/config`` surface works with the curl calls of the README, unchanged."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest


def curl(*args: str) -> str:
    done = subprocess.run(["curl", "-s", *args], capture_output=True, text=True, timeout=10,
                          check=True)
    return done.stdout


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_readme_curl_calls(server_url: str, ns: str) -> None:
    """PUT answers version 1 then 2; listing shows the key; HEAD of a missing key is 404."""
    put = ["-X", "PUT", f"{server_url}/config/{ns}/claude-opus", "-H",
           "Content-Type: application/json", "-d", '{"max_tokens": 8192}']
    assert '"version":1' in curl(*put)
    assert '"version":2' in curl(*put)
    listing = curl(f"{server_url}/config/{ns}")
    assert '"key":"claude-opus"' in listing and '"max_tokens":8192' in listing
    head = curl("-I", f"{server_url}/config/missing/key")
    assert head.startswith("HTTP/1.1 404")


def test_simple_answers_have_the_promised_fields(http: httpx.Client, ns: str) -> None:
    r = http.put(f"/config/{ns}/k", json={"a": 1})
    assert r.status_code == 201
    for field in ("namespace", "key", "value", "version", "created_at", "updated_at"):
        assert field in r.json()
    got = http.get(f"/config/{ns}/k")
    assert got.json()["value"] == {"a": 1} and got.headers["etag"] == '"1"'
    assert http.get(f"/config/{ns}").json()["items"][0]["key"] == "k"


def test_simple_surface_is_the_default_tenant_base_env(http: httpx.Client, ns: str) -> None:
    http.put(f"/config/{ns}/k", json=5)
    assert http.get(f"/v1/tenants/default/configs/{ns}/k").json()["value"] == 5


def test_simple_delete_and_cas(http: httpx.Client, ns: str) -> None:
    http.put(f"/config/{ns}/k", json=1)
    assert http.put(f"/config/{ns}/k", json=2, headers={"if-match": '"7"'}).status_code == 412
    assert http.delete(f"/config/{ns}/k").status_code == 200
    assert http.get(f"/config/{ns}/k").status_code == 404


def test_cached_read_sees_every_write(http: httpx.Client, ns: str) -> None:
    """The lean cached GET path never serves a stale value after a write."""
    for i in range(20):
        http.put(f"/config/{ns}/hot", json=i)
        assert http.get(f"/config/{ns}/hot").json()["value"] == i
    http.delete(f"/config/{ns}/hot")
    assert http.get(f"/config/{ns}/hot").status_code == 404
