"""``confhub bench``: the documented JSON, the fan-out, the check verdict, and that it never
touches data it did not make."""

from __future__ import annotations

from .conftest import Invoke

FIGURES = {"count", "qps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors"}


def test_bench_json_has_the_documented_fields(cli: Invoke) -> None:
    result = cli("bench", "--readers", "3", "--writers", "1", "--duration", "1",
                 "--keys", "5", "--fanout", "2", "--events", "5", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert set(report) == {"target", "backend", "readers", "writers", "duration_s", "keys",
                           "reads", "writes", "errors", "fanout", "check"}
    assert set(report["reads"]) == FIGURES and set(report["writes"]) == FIGURES
    assert report["reads"]["count"] > 0 and report["writes"]["count"] > 0
    assert report["reads"]["p50_ms"] <= report["reads"]["p99_ms"] <= report["reads"]["max_ms"]
    assert report["errors"] == 0
    assert report["fanout"]["watchers"] == 2 and report["fanout"]["missed"] == 0
    assert report["check"] is None


def test_bench_cleans_up_its_own_tenant(cli: Invoke) -> None:
    before = cli("tenant", "ls", "--json").json()
    assert cli("bench", "--readers", "1", "--writers", "1", "--duration", "0.5",
               "--json").exit_code == 0
    assert cli("tenant", "ls", "--json").json() == before


def test_bench_refuses_a_namespace_that_holds_data(cli: Invoke) -> None:
    assert cli("set", "mine/k", '{"keep": true}').exit_code == 0
    result = cli("bench", "--tenant", "default", "--namespace", "mine", "--duration", "0.5",
                 "--json")
    assert result.exit_code == 2
    assert "holds 1 keys" in result.error()["message"]
    assert cli("get", "mine/k", "--json").json()["value"] == {"keep": True}


def test_bench_in_a_given_tenant_deletes_the_keys_it_wrote(cli: Invoke) -> None:
    assert cli("bench", "--tenant", "default", "--namespace", "scratch", "--readers", "1",
               "--writers", "1", "--duration", "0.5", "--keys", "3").exit_code == 0
    assert cli("ls", "scratch", "--json").json() == []


def test_check_gives_a_verdict_with_its_thresholds(cli: Invoke) -> None:
    result = cli("bench", "--check", "small", "--duration", "1", "--json")
    report = result.json()
    check = report["check"]
    assert check["profile"] == "small" and report["readers"] == 50
    assert check["verdict"] in ("PASS", "FAIL")
    assert result.exit_code == (0 if check["verdict"] == "PASS" else 1)
    assert (check["verdict"] == "FAIL") == bool(check["failures"])
    assert check["thresholds"]["errors_max"] == 0
