"""docs/config-as-code.md runs as written: its files are written, its shell and Python blocks
run in order in an empty directory, and what the Python prints is what the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

DOC = Path(__file__).resolve().parents[2] / "docs" / "config-as-code.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def test_the_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Redis is not reachable ({error}); CI=true requires it")
        pytest.skip(f"Redis is not reachable ({error}); the page pushes to it")
    for name in [n for n in os.environ if n.startswith("CONFHUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONFHUB_DB", "confhub.db")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    blocks = BLOCK.findall(DOC.read_text("utf-8"))
    ran = {"file": 0, "bash": 0, "python": 0}
    try:
        for index, (language, text) in enumerate(blocks):
            first, _, rest = text.partition("\n")
            if first.startswith("# file: "):
                path = tmp_path / first.removeprefix("# file: ").strip()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(rest if language == "json" else text, encoding="utf-8")
                if language == "yaml":
                    YAML(typ="safe").load(path.read_text())
                ran["file"] += 1
            elif language == "bash":
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", text],
                                      capture_output=True, text=True)
                assert done.returncode == 0, f"block {index}:\n{text}\n{done.stderr}"
                ran["bash"] += 1
            elif language == "python":
                exec(compile(text, f"config-as-code.md[{index}]", "exec"), {})
                printed = capsys.readouterr().out
                for shown in re.findall(r"^# (.+)$", text, flags=re.M):
                    assert shown in printed, f"block {index} did not print {shown!r}"
                ran["python"] += 1
    finally:
        store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        stale = list(store.scan_iter(match="docs-example:*"))
        if stale:
            store.delete(*stale)
    assert ran == {"file": 5, "bash": 10, "python": 2}
    assert "MODELS_CLAUDE-OPUS" not in (tmp_path / "models.env").read_text()
    assert "MODELS_CLAUDE_OPUS_MAX_TOKENS='4096'" in (tmp_path / "models.env").read_text()
