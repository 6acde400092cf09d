"""``/docs`` and ``/redoc`` work offline: every asset they load comes from the server."""

from __future__ import annotations

import re

import httpx
import pytest

from confhub.server.auth import PUBLIC, match


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_page_loads_nothing_from_elsewhere(http: httpx.Client, page: str) -> None:
    html = http.get(page).text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
    assert urls, html
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"{page} loads {url} from another host"
        assert http.get(url).status_code == 200, url


def test_the_docs_assets_need_no_token(http: httpx.Client) -> None:
    r = http.get("/docs-assets/swagger-ui-bundle.js")
    assert r.status_code == 200 and len(r.content) > 100_000
    found = match("GET", "/docs-assets/swagger-ui-bundle.js")
    assert found is not None and found[0].role == PUBLIC  # like /docs itself
