"""The web UI end to end: real headless Chromium against a real ``confhub serve``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import OTHER, TENANT, Site, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KEY = f"/ui/t/{TENANT}/k/models/claude-opus"


def type_value(page: Any, text: str) -> None:
    """Replace the editor's content the way a person does: select all, then type."""
    page.click(".CodeMirror")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def csrf_of(page: Any) -> str:
    return str(page.get_attribute("meta[name=csrf-token]", "content"))


class TestSignIn:
    def test_pages_need_a_token_and_a_wrong_one_is_refused(self, browser: Any,
                                                           site: Site) -> None:
        """Signed out, every page leads to the sign-in form; a bad token is told so."""
        page = browser.new_page(base_url=site.url)
        page.goto(KEY)
        assert "/ui/login" in page.url
        page.fill("#token", "chub_000000000000_" + "x" * 43)
        page.click("button:has-text('Sign in')")
        assert page.locator("[role=alert]").is_visible()
        assert "/ui/login" in page.url
        page.context.close()

    def test_signing_in_returns_to_the_page_asked_for(self, browser: Any, site: Site) -> None:
        page = browser.new_page(base_url=site.url)
        page.goto(KEY)
        page.fill("#token", site.tokens["viewer"])
        page.click("button:has-text('Sign in')")
        page.wait_for_url(f"**{KEY}")
        assert page.locator("h1").inner_text() == "claude-opus"
        page.context.close()


class TestBrowse:
    def test_viewer_browses_namespaces_keys_and_a_value(self, browser: Any,
                                                        site: Site) -> None:
        """Namespaces with counts, a namespace's keys, a key's value, version, author and
        reason; a viewer sees no edit button."""
        page = sign_in(browser, site, "viewer")
        namespace = page.get_by_role("link", name="models", exact=True)
        assert "2 keys" in page.locator("ul.list li", has=namespace).inner_text()
        namespace.click()
        page.get_by_role("link", name="claude-opus", exact=True).click()
        value = page.locator("#value").inner_text()
        assert '"max_tokens": 16000' in value
        assert page.locator("#version").inner_text() == "2"
        assert page.locator("#reason").inner_text() == "raise limit"
        assert page.locator("a.button:has-text('Edit')").count() == 0
        page.click("nav.tabs a:has-text('production')")
        assert '"max_tokens": 4000' in page.locator("#resolved").inner_text()
        assert '"provider": "anthropic"' in page.locator("#resolved").inner_text()
        page.context.close()

    def test_secrets_show_masked_and_a_viewer_cannot_reveal(self, browser: Any,
                                                            site: Site) -> None:
        page = sign_in(browser, site, "viewer")
        page.goto(f"/ui/t/{TENANT}/k/db/primary")
        assert page.locator("#value").inner_text().strip() == '"***"'
        assert "hunter2" not in page.content()
        assert page.locator("button:has-text('Reveal')").count() == 0
        response = page.request.post(f"/ui/t/{TENANT}/k/db/primary/reveal",
                                     form={"csrf": csrf_of(page), "env": "base"})
        assert response.status == 403
        assert "hunter2" not in response.text()
        page.context.close()

    def test_search_finds_keys_by_name_and_by_value(self, browser: Any, site: Site) -> None:
        page = sign_in(browser, site, "viewer")
        page.fill("#q", "haiku")
        page.press("#q", "Enter")
        hits = page.locator("ul.hits > li")
        assert hits.count() == 1 and "models/haiku" in hits.first.inner_text()
        page.fill("#q", "new search")
        page.select_option("#in", "value")
        page.click("button:has-text('Search')")
        assert "features/search" in page.locator("ul.hits").inner_text()
        page.fill("#q", "hunter2")  # a secret's content is never searchable
        page.click("button:has-text('Search')")
        assert page.locator("ul.hits > li").count() == 0
        page.context.close()


class TestRoles:
    def test_a_viewer_cannot_write_even_by_posting_the_form(self, browser: Any,
                                                            site: Site) -> None:
        """No edit button, and the server refuses the save anyway."""
        page = sign_in(browser, site, "viewer")
        before = site.get("models", "haiku")
        response = page.request.post(f"/ui/t/{TENANT}/save", form={
            "csrf": csrf_of(page), "namespace": "models", "key": "haiku", "env": "base",
            "fmt": "json", "value": '{"max_tokens": 1}',
            "expected_version": str(before["version"])})
        assert response.status == 403
        assert site.get("models", "haiku")["version"] == before["version"]
        page.context.close()

    def test_a_token_limited_to_a_namespace_sees_and_edits_only_that_namespace(
            self, browser: Any, site: Site) -> None:
        page = sign_in(browser, site, "features-editor")
        namespaces = page.locator("ul.list li a").all_inner_texts()
        assert namespaces == ["features"]
        assert "models/" not in page.locator("#recent").inner_text()
        page.goto(f"/ui/t/{TENANT}/search?q=max_tokens")
        assert page.locator("ul.hits > li").count() == 0
        response = page.goto(f"{KEY}/edit")
        assert response is not None and response.status == 403
        response = page.goto(f"/ui/t/{TENANT}/k/features/search/edit")
        assert response is not None and response.status == 200
        page.context.close()

    def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
            self, browser: Any, site: Site) -> None:
        page = sign_in(browser, site, "editor")
        before = site.get("models", "haiku")
        form = {"namespace": "models", "key": "haiku", "env": "base", "fmt": "json",
                "value": '{"max_tokens": 1}', "expected_version": str(before["version"])}
        missing = page.request.post(f"/ui/t/{TENANT}/save", form=form)
        foreign = page.request.post(f"/ui/t/{TENANT}/save",
                                    form={**form, "csrf": csrf_of(page)},
                                    headers={"Origin": "https://evil.example"})
        assert (missing.status, foreign.status) == (403, 403)
        assert site.get("models", "haiku")["version"] == before["version"]
        page.context.close()


class TestEdit:
    def test_a_validation_error_blocks_the_save_then_a_good_value_is_saved(
            self, browser: Any, site: Site, artifacts: Path) -> None:
        page = sign_in(browser, site, "editor")
        page.goto(f"/ui/t/{TENANT}/k/models/haiku")
        version = int(page.locator("#version").inner_text())
        page.click("a.button:has-text('Edit')")
        type_value(page, '{"max_tokens": 500000, "temperature": 0.5}')
        live = page.locator("#live-check .issues.error")  # checked by the server as you type
        live.wait_for()
        assert "/max_tokens" in live.inner_text()
        page.click("#preview-btn")
        errors = page.locator(".issues.error")
        assert "/max_tokens" in errors.inner_text()
        assert page.locator("#save-btn").is_disabled()
        page.screenshot(path=str(artifacts / "laptop-preview-invalid.png"), full_page=True)
        page.click("#back-btn")
        type_value(page, '{"max_tokens": 4096, "temperature": 0.5}')
        page.click("#preview-btn")
        assert page.locator("p.ok:has-text('Valid')").is_visible()
        diff = page.locator("#changes table.side").inner_text()
        assert "2048" in diff and "4096" in diff
        page.fill("#reason", "more room for summaries")
        page.click("#save-btn")
        page.wait_for_url(re.compile(r".*/k/models/haiku\?saved=\d+"))
        assert page.locator("#version").inner_text() == str(version + 1)
        assert page.locator("#reason").inner_text() == "more room for summaries"
        assert site.get("models", "haiku")["value"]["max_tokens"] == 4096
        page.context.close()

    def test_a_stale_edit_is_refused_and_merged_in_the_three_way_view(
            self, browser: Any, site: Site, artifacts: Path) -> None:
        """Someone changes the temperature while you change max_tokens: the save is refused,
        the conflict page shows base, theirs and yours, and the merge keeps both."""
        site.put("models", "sonnet", {"max_tokens": 1000, "temperature": 0.1})
        page = sign_in(browser, site, "editor")
        page.goto(f"/ui/t/{TENANT}/k/models/sonnet/edit")
        type_value(page, '{"max_tokens": 3000, "temperature": 0.1}')
        theirs = site.put("models", "sonnet", {"max_tokens": 1000, "temperature": 0.9},
                          reason="warmer")
        page.click("#preview-btn")
        assert "Someone saved first" in page.locator("h1").inner_text()
        assert "0.1" in page.locator("#base").inner_text()
        assert "0.9" in page.locator("#theirs").inner_text()
        assert "3000" in page.locator("#yours").inner_text()
        page.screenshot(path=str(artifacts / "laptop-conflict.png"), full_page=True)
        page.click("#preview-btn")  # the merged value, on top of their version
        page.fill("#reason", "merge")
        page.click("#save-btn")
        page.wait_for_url(re.compile(r".*saved=\d+"))
        saved = site.get("models", "sonnet")
        assert saved["version"] == theirs["version"] + 1
        assert saved["value"] == {"max_tokens": 3000, "temperature": 0.9}
        page.context.close()


class TestHistory:
    def test_diff_between_two_versions_then_rollback_after_confirmation(
            self, browser: Any, site: Site, artifacts: Path) -> None:
        site.put("features", "checkout", {"provider": "stripe", "retries": 1})
        site.put("features", "checkout", {"provider": "adyen", "retries": 3})
        page = sign_in(browser, site, "editor")
        page.goto(f"/ui/t/{TENANT}/k/features/checkout/history")
        page.check("#v1 input[name=from]")
        page.check("#v2 input[name=to]")
        page.click("#compare-btn")
        diff = page.locator("#version-diff table.side").inner_text()
        assert "stripe" in diff and "adyen" in diff
        page.click("a:has-text('Roll back to v1')")
        confirm = page.locator("#rollback-diff").inner_text()
        assert "adyen" in confirm and "stripe" in confirm
        page.screenshot(path=str(artifacts / "laptop-rollback-confirm.png"), full_page=True)
        page.fill("#reason", "adyen is failing")
        page.click("#confirm-rollback")
        page.wait_for_url(re.compile(r".*saved=3"))
        assert '"stripe"' in page.locator("#value").inner_text()
        history = site.api.get(f"/v1/tenants/{TENANT}/configs/features/checkout/history")
        newest = history.json()["items"][0]
        assert (newest["op"], newest["rollback_of"]) == ("rollback", 1)
        page.context.close()


class TestCompare:
    def test_env_compare_shows_only_differences_and_copies_across(
            self, browser: Any, site: Site) -> None:
        page = sign_in(browser, site, "editor")
        page.goto(f"/ui/t/{TENANT}/compare?left_env=base&right_env=production"
                  "&namespace=models")
        shown = page.locator("section.difference").evaluate_all(
            "els => els.map(e => e.dataset.key)")
        assert shown == ["models/claude-opus"]  # haiku and sonnet resolve the same
        page.click("section.difference a.copy-right")
        assert "Copying the value of" in page.locator("p.alert").inner_text()
        page.click("#preview-btn")
        page.fill("#reason", "align production")
        page.click("#save-btn")
        page.wait_for_url(re.compile(r".*saved=\d+"))
        page.goto(f"/ui/t/{TENANT}/compare?left_env=base&right_env=production"
                  "&namespace=models")
        assert page.locator("section.difference").count() == 0
        assert site.get("models", "claude-opus", env="production")["value"]["max_tokens"] \
            == 16000
        page.context.close()


    def test_tenant_compare_shows_what_differs_between_two_tenants(
            self, browser: Any, site: Site) -> None:
        """A superadmin compares acme with acme-staging: only the keys that differ."""
        page = sign_in(browser, site, "superadmin")
        assert page.get_by_role("link", name=OTHER).is_visible()
        page.goto(f"/ui/t/{TENANT}/compare?left_tenant={TENANT}&left_env=base"
                  f"&right_tenant={OTHER}&right_env=base&namespace=limits")
        shown = dict(page.locator("section.difference").evaluate_all(
            "els => els.map(e => [e.dataset.key, e.querySelector('.chip').textContent])"))
        assert shown == {"limits/api": "differs", "limits/extra": "only right"}
        diff = page.locator("section.difference[data-key='limits/api']").inner_text()
        assert "10" in diff and "50" in diff
        page.context.close()


class TestLive:
    def test_a_change_made_elsewhere_shows_a_notice_with_its_diff(
            self, browser: Any, site: Site, artifacts: Path) -> None:
        site.put("features", "banner", {"text": "hello"})
        page = sign_in(browser, site, "viewer")
        page.goto(f"/ui/t/{TENANT}/k/features/banner")
        # The page's stream starts at the revision it shows, so a change made before the
        # stream connects is still delivered: no need to wait for it.
        site.put("features", "banner", {"text": "goodbye"}, reason="new copy")
        notice = page.locator("#changed-elsewhere")
        notice.wait_for(timeout=10_000)
        text = notice.inner_text()
        assert "version 2" in text and "new copy" in text
        assert "goodbye" in text and "hello" in text
        page.screenshot(path=str(artifacts / "laptop-live-notice.png"), full_page=True)
        page.context.close()


class TestSecretsAndAudit:
    def test_editing_a_secret_asks_to_reveal_and_keeps_it_secret(self, browser: Any,
                                                                 site: Site) -> None:
        site.put("db", "replica", {"host": "r1.internal", "password": "old-pass"})
        response = site.api.put(f"/v1/tenants/{TENANT}/configs/db/replica",
                                params={"secret": "true"},
                                json={"host": "r1.internal", "password": "old-pass"})
        assert response.status_code == 200, response.text
        page = sign_in(browser, site, "editor")
        page.goto(f"/ui/t/{TENANT}/k/db/replica/edit")
        assert "old-pass" not in page.content()
        page.click("button:has-text('Reveal and edit')")
        assert "old-pass" in page.locator(".CodeMirror").inner_text()
        type_value(page, '{"host": "r2.internal", "password": "new-pass"}')
        page.click("#preview-btn")
        assert "masked" in page.locator("#changes").inner_text()
        assert "new-pass" not in page.locator("#changes").inner_text()
        page.click("#save-btn")
        page.wait_for_url(re.compile(r".*saved=\d+"))
        assert page.locator("#value").inner_text().strip() == '"***"'
        revealed = site.api.get(f"/v1/tenants/{TENANT}/configs/db/replica",
                                params={"reveal": "true"}).json()
        assert revealed["secret"] is True
        assert revealed["value"] == {"host": "r2.internal", "password": "new-pass"}
        page.context.close()

    def test_an_editor_reveals_a_secret_and_the_reveal_is_in_the_audit_log(
            self, browser: Any, site: Site) -> None:
        editor = sign_in(browser, site, "editor")
        editor.goto(f"/ui/t/{TENANT}/k/db/primary")
        editor.click("button:has-text('Reveal secret')")
        assert "hunter2-very-secret" in editor.locator("#value").inner_text()
        editor.context.close()
        admin = sign_in(browser, site, "admin")
        admin.click("nav a:has-text('Audit')")
        admin.fill("#action", "secret.reveal")
        admin.click("button:has-text('Filter')")
        rows = admin.locator("table.audit tbody tr")
        assert rows.count() >= 1
        assert "db/primary" in rows.first.inner_text()
        assert "editor-ui" in rows.first.inner_text()
        admin.context.close()

    def test_the_audit_log_is_for_admins_only(self, browser: Any, site: Site) -> None:
        page = sign_in(browser, site, "editor")
        assert page.locator("nav a:has-text('Audit')").count() == 0
        response = page.goto(f"/ui/t/{TENANT}/audit")
        assert response is not None and response.status == 403
        page.context.close()


MAIN_PAGES = {
    "tenant": f"/ui/t/{TENANT}",
    "namespace": f"/ui/t/{TENANT}/ns/models",
    "key": f"{KEY}?env=production",
    "edit": f"{KEY}/edit",
    "history": f"{KEY}/history?from=1&to=2",
    "compare": f"/ui/t/{TENANT}/compare?left_env=base&right_env=production",
    "search": f"/ui/t/{TENANT}/search?q=max_tokens",
    "audit": f"/ui/t/{TENANT}/audit",
    "rollouts": f"/ui/t/{TENANT}/rollouts",
}


# Visible form controls that a screen reader could not name.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden' && !el.hidden && el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !(el.textContent || '').trim())
  .map(el => el.outerHTML.slice(0, 80))"""


class TestLayout:
    @pytest.mark.parametrize(("device", "width", "height"),
                             [("laptop", 1280, 800), ("phone", 390, 844)])
    def test_main_pages_fit_the_screen_and_are_captured(
            self, browser: Any, site: Site, artifacts: Path, device: str, width: int,
            height: int) -> None:
        """Every main page renders without a script error and without sideways scrolling
        (on a phone too); a PNG of each is saved with the run's artifacts."""
        site.put("features", "search", {"enabled": False, "regions": ["eu"]}, env="production",
                 reason="not yet in production")
        page = sign_in(browser, site, "admin", width=width, height=height)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        fetched: list[str] = []
        page.on("request", lambda request: fetched.append(request.url))
        for name, path in MAIN_PAGES.items():
            response = page.goto(path)
            assert response is not None and response.status == 200, name
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at {width}px"
            unlabelled = page.evaluate(UNLABELLED)
            assert unlabelled == [], f"{name} has form controls without a label"
            shot = artifacts / f"{device}-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 5000
        assert problems == []
        # Nothing is fetched from anywhere but the server (the editor's files included).
        assert any("/ui/static/vendor/codemirror/codemirror.js" in url for url in fetched)
        assert [url for url in fetched if not url.startswith(site.url)] == []
        page.context.close()


class TestRollouts:
    def test_a_rollout_started_from_an_edit_and_rolled_back(self, browser: Any, site: Site,
                                                            artifacts: Path) -> None:
        """Save as rollout: the canary runs the staged value, the key page says so, everyone
        else keeps the committed one; rolling back commits nothing."""
        site.put("routing", "tiers", {"default": "small", "fallback": "none"})
        seen = site.api.get(f"/v1/tenants/{TENANT}/configs/routing/tiers",
                            headers={"X-Confhub-Client": "canary-1"})
        assert seen.status_code == 200
        page = sign_in(browser, site, "editor")
        page.goto(f"/ui/t/{TENANT}/k/routing/tiers/edit")
        type_value(page, '{"default": "large", "fallback": "none"}')
        page.click("#preview-btn")
        page.click("summary:has-text('staged rollout')")
        page.select_option("#strategy", "canary")
        page.fill("#clients", "canary-1")
        page.fill("#reason", "try large by default")
        page.click("#rollout-btn")
        page.wait_for_url(re.compile(r".*/rollouts/r-\d+$"))
        assert page.locator("#rollout-state").inner_text() == "running"
        assert "10" in page.locator("#rollout-step").inner_text()
        row = page.locator("#consumers tr", has_text="canary-1")
        assert "staged" in row.inner_text()
        page.screenshot(path=str(artifacts / "laptop-rollout.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(artifacts / "phone-rollout.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        rollout_url = page.url
        page.goto(f"/ui/t/{TENANT}/k/routing/tiers")
        assert "Under rollout" in page.locator("#rollout-notice").inner_text()
        assert site.get("routing", "tiers")["value"]["default"] == "small"
        page.goto(rollout_url)
        page.fill("#reason", "latency up")
        page.click("#rollback-rollout")
        page.wait_for_url(rollout_url)
        assert page.locator("#rollout-state").inner_text() == "rolled_back"
        committed = site.get("routing", "tiers")
        assert committed["value"]["default"] == "small" and committed["version"] == 1
        page.context.close()
