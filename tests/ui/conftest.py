"""One real ``confhub serve`` (auth on, a master key) and one headless Chromium per module.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright's Python package launched
with ``executable_path`` (never ``playwright install``). Without it the UI tests skip, except
under ``CI=true`` where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import confhub
from confhub.secrets import generate_master_key
from confhub.server.testing import live_server

CHROMIUM = os.environ.get("CONFHUB_CHROMIUM", "/usr/bin/chromium")
TENANT = "acme"
OTHER = "acme-staging"


def _need_chromium() -> None:
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Chromium is needed for the UI tests and is missing at {CHROMIUM} "
                    "(.ci/run installs Debian's chromium)")
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium to run the UI tests")


@dataclass
class Site:
    """The server under test, the tokens of each role, and an API client acting as admin."""

    url: str
    tokens: dict[str, str]
    api: httpx.Client

    def put(self, namespace: str, key: str, value: Any, env: str = "base",
            reason: str = "from the API") -> dict[str, Any]:
        response = self.api.put(f"/v1/tenants/{TENANT}/configs/{namespace}/{key}",
                                params={"env": env}, json=value,
                                headers={"X-Confhub-Reason": reason})
        assert response.status_code in (200, 201), response.text
        data: dict[str, Any] = response.json()
        return data

    def get(self, namespace: str, key: str, env: str = "base") -> dict[str, Any]:
        response = self.api.get(f"/v1/tenants/{TENANT}/configs/{namespace}/{key}",
                                params={"env": env})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


def seed(hub: confhub.Hub) -> dict[str, str]:
    hub.create_tenant(TENANT)
    cfg = hub.tenant(TENANT)
    cfg.set_schema("models", {"type": "object", "properties": {
        "max_tokens": {"type": "integer", "maximum": 200000},
        "temperature": {"type": "number"}}},
        rules=[{"expr": "self.max_tokens <= 100000", "message": "too many tokens",
                "severity": "error"}])
    cfg.set("models", "claude-opus", {"max_tokens": 8192, "temperature": 0.2,
                                      "provider": "anthropic"}, reason="first", author="ops")
    cfg.set("models", "claude-opus", {"max_tokens": 16000, "temperature": 0.2,
                                      "provider": "anthropic"}, reason="raise limit",
            author="ops")
    cfg.set("models", "claude-opus", {"max_tokens": 4000}, env="production",
            reason="cap in production")
    cfg.set("models", "haiku", {"max_tokens": 2048, "temperature": 0.5})
    cfg.set("features", "search", {"enabled": True, "regions": ["eu", "us"],
                                   "banner": "Try the new search"})
    cfg.set("db", "primary", {"host": "db.internal", "password": "hunter2-very-secret"},
            secret=True, reason="credentials")
    hub.create_tenant(OTHER)
    # The "limits" namespace is only for the tenant compare: no other test touches it.
    for tenant, api_rps, extra in ((TENANT, 10, False), (OTHER, 50, True)):
        other = hub.tenant(tenant)
        other.set("limits", "api", {"rps": api_rps})
        other.set("limits", "batch", {"size": 5})
        if extra:
            other.set("limits", "extra", {"burst": 100})
    tokens = {}
    for role in ("viewer", "editor", "admin"):
        token, _ = hub.create_token(tenant=TENANT, role=role, name=f"{role}-ui")
        tokens[role] = token
    tokens["superadmin"], _ = hub.create_token(role="superadmin", name="root-ui")
    tokens["features-editor"], _ = hub.create_token(tenant=TENANT, role="editor",
                                                    namespaces=["features"],
                                                    name="features-editor-ui")
    return tokens


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _need_chromium()
    db = tmp_path_factory.mktemp("ui") / "confhub.db"
    key = generate_master_key()
    hub = confhub.open(f"sqlite:///{db}", master_key=key)
    try:
        tokens = seed(hub)
    finally:
        hub.close()
    previous = os.environ.get("CONFHUB_MASTER_KEY")
    os.environ["CONFHUB_MASTER_KEY"] = key  # the server process inherits it
    try:
        with live_server(db) as url, httpx.Client(base_url=url, timeout=10, headers={
                "Authorization": f"Bearer {tokens['admin']}"}) as api:
            yield Site(url, tokens, api)
    finally:
        if previous is None:
            os.environ.pop("CONFHUB_MASTER_KEY", None)
        else:
            os.environ["CONFHUB_MASTER_KEY"] = previous


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $CONFHUB_TEST_ARTIFACTS/ui, else the run's pytest temp dir."""
    root = os.environ.get("CONFHUB_TEST_ARTIFACTS")
    path = Path(root) / "ui" if root else tmp_path_factory.mktemp("ui-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def sign_in(browser: Any, site: Site, role: str, *, width: int = 1280,
            height: int = 800) -> Any:
    """A fresh browser context signed in with the token of ``role``; returns its page."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  base_url=site.url)
    page = context.new_page()
    page.goto("/ui/")
    assert "/ui/login" in page.url
    page.fill("#token", site.tokens[role])
    page.click("button:has-text('Sign in')")
    # A token of one tenant lands on it; a superadmin on the list of tenants.
    page.wait_for_url("**/ui/" if role == "superadmin" else f"**/ui/t/{TENANT}")
    return page
