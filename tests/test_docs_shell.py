"""Every shell example in the docs runs as written: ``console`` blocks (``$ command`` lines,
each followed by the output the page shows) and ``bash``/``sh`` blocks.

The blocks of one page run in order, as one reader would type them, in an empty directory
with this venv's ``confhub`` first on ``PATH`` (``.venv/bin/`` means this venv), a master key
in the environment, the page's premises written first (:data:`PREMISES`: the files a page
says you have, like ``claude-opus.yaml``) and a real server standing in for
``http://127.0.0.1:8011``. Each command must exit 0; where the page shows output, the output
must match it in substance: numbers may differ (``version 7``), ``...``/``…`` stand for
anything, spacing is free. A command the page shows failing says so in its comment
(``# exit 5: invalid``), and must exit with that status. ``confhub serve`` lines start a
server, wait until it answers and stop it (SIGTERM), which must end it cleanly; streams
(``confhub watch``, ``curl -N``) run for a moment and must have printed what the page shows
by then.

A block that cannot run here says why on the line above it:
``<!-- not run: builds a venv (minutes) -->``. A page's PostgreSQL (``postgresql://confhub@db/
confhub``) is an empty schema of the test database. Pages with a test of their own:
:data:`TESTED_ELSEWHERE`.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from confhub.secrets import generate_master_key
from confhub.server.testing import free_port, live_server

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "DEVELOPERS.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(
    r"(?:<!--\s*not run:(?P<why>[^>]*)-->\s*\n)?```(?P<lang>console|bash|sh)\n(?P<code>.*?)```",
    re.S,
)
TESTED_ELSEWHERE = {
    "config-as-code.md": "tests/codeplan/test_docs.py runs its files, shell and Python in order",
    "flags.md": "tests/flags/test_docs.py runs its flag file, shell lines, then its Python",
}
BIN = Path(sys.executable).parent
STREAM_SECONDS = 3.0  # how long a stream the page shows no output of runs
STREAM_DEADLINE = 90.0  # how long a stream may take to print what the page shows


@dataclass
class Command:
    line: str
    shown: list[str] = field(default_factory=list)  # output lines the page shows


def commands(lang: str, code: str) -> list[Command]:
    """A block's commands: ``$`` lines with the output under them, or a script's lines."""
    code = code.replace("\\\n", " ")
    found: list[Command] = []
    for line in code.splitlines():
        if lang == "console":
            if line.startswith("$ "):
                found.append(Command(line[2:]))
            elif line.strip() and found:
                found[-1].shown.append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            found.append(Command(line))
    return found


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    return [(m["lang"], m["code"], m["why"]) for m in BLOCK.finditer(page.read_text("utf-8"))]


def _pattern(shown: str) -> re.Pattern[str]:
    """Output "in substance": numbers may differ, ... and … are wildcards, spacing is free."""
    parts = re.split(r"(\.\.\.|…|\d+|\s+)", shown.strip())
    out = []
    for part in parts:
        if part in ("...", "…"):
            out.append(".*?")
        elif part.isdigit():
            out.append(r"\d+")
        elif part and part.isspace():
            out.append(r"\s+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def _output_matches(shown: list[str], output: str) -> list[str]:
    """The shown lines the output does not contain (comments after ``#`` are the page's)."""
    missing = []
    for line in shown:
        text = re.sub(r"\s{2,}#.*$", "", line)
        if not _pattern(text).search(output):
            missing.append(line)
    return missing


PAGE_YAML = "the page's yaml block"
FLAGS_JSON = "docs/flags.md's flag file"
# What a page says its reader already has: files written before its first block runs, and
# under "$" the commands that made the keys it works on.
PREMISES: dict[str, dict[str, str]] = {
    "cli.md": {
        "$": "confhub set models/old-model '{\"max_tokens\": 512}' && for n in 1 2 3; do "
        'confhub set routing/old "{\\"n\\": $n}"; done && '
        "confhub schema set params -f params.schema.json --rules params.rules.yaml && "
        "confhub tenant create acme && confhub set models/opus '{}' --tenant acme && "
        "confhub snapshot create before-migration && "
        "mkdir -p config/models && cp claude-opus.yaml config/models/claude-opus.yaml",
        "params.schema.json": '{"type": "object", "properties": {"max_membrane_depth": '
        '{"type": "integer", "maximum": 64}}}',
        "params.rules.yaml": "- expr: self.esn_reservoir_size >= self.max_membrane_depth * 32\n"
        "  message: esn_reservoir_size must be at least "
        "max_membrane_depth * 32\n",
        "flags.json": FLAGS_JSON,
        "claude-opus.yaml": "max_tokens: 4096\nstop: [x]\n",
        "value.json": '{"max_tokens": 8192, "beta": true}\n',
        "ops.yaml": PAGE_YAML,  # the ops file the page shows
    },
    "security.md": {
        "$": "confhub tenant create acme && curl -sf -X POST http://127.0.0.1:8011/v1/tenants "
        "-H 'Content-Type: application/json' -d '{\"id\": \"acme\"}'",
    },
}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("docs-shell") / "served.db") as url:
        yield url


PAGE_PG = "postgresql://confhub@db/confhub"  # a page's PostgreSQL: a fresh schema here


def _adapt(line: str, url: str, home: Path, pg: str | None = None) -> str:
    """The few words that name this machine: the server, system paths, the venv, the
    database (``--port`` and ``--host`` are the serve lines', in :func:`_serve`)."""
    for address in ("http://127.0.0.1:8011", "http://localhost:8011"):
        line = line.replace(address, url)
    line = line.replace("/var/lib/confhub/", f"{home}/var/")
    line = re.sub(r"(?<![\w/])\.venv/bin/", f"{BIN}/", line)
    return line.replace(PAGE_PG, pg) if pg is not None else line


def _serve(line: str, cwd: Path, env: dict[str, str], shown: list[str]) -> None:
    """Start the server a ``confhub serve`` line starts, see it answer, stop it cleanly."""
    port = free_port()
    line = re.sub(r"\s+#.*$", "", line)  # the page's comment
    if "--port" in line:
        line = re.sub(r"--port \d+", f"--port {port}", line)
    else:
        line += f" --port {port}"
    if "--host 0.0.0.0" in line:
        line = line.replace("--host 0.0.0.0", "--host 127.0.0.1 --insecure")
    argv = shlex.split(line, comments=True)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"{line}: exited {proc.returncode}: {proc.stdout.read()}"  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{line}: did not answer within 30s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=15)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    assert proc.returncode == 0, f"{line}: exit {proc.returncode} after SIGTERM:\n{output}"
    missing = _output_matches([s.replace("--host 0.0.0.0", "") for s in shown], output)
    assert not missing, f"{line}: output lacks {missing}:\n{output}"


def _stream(line: str, cwd: Path, env: dict[str, str], shown: list[str]) -> tuple[str, int]:
    """Run a command that follows a stream until its output holds every shown line (or, when
    the page shows nothing, for ``STREAM_SECONDS``), then stop it: a loaded machine only makes
    the wait longer, never the check weaker. Exit status 0 when we stopped it ourselves."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", line], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        deadline = time.monotonic() + (STREAM_DEADLINE if shown else STREAM_SECONDS)
        while proc.poll() is None and time.monotonic() < deadline:
            out.seek(0)
            if shown and not _output_matches(shown, out.read()):
                break
            time.sleep(0.05)
        status = proc.poll()
        if status is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            status = 0
        out.seek(0)
        return out.read(), status


def _run(line: str, cwd: Path, env: dict[str, str], shown: list[str]) -> None:
    if re.match(r"^(confhub serve|python -m confhub\.server)\b", line):
        _serve(line.replace("python -m", f"{sys.executable} -m", 1), cwd, env, shown)
        return
    expected = int(m[1]) if (m := re.search(r"#.*\bexit (\d+)\b", line)) else 0
    stream = "confhub watch" in line or line.startswith("curl -N")
    if line.startswith("curl ") and not any(re.match(r"HTTP/\S+ [45]", s) for s in shown):
        # an error status is a failure, unless the page shows it
        line = re.sub(r"(\s+#.*)?$", r" --fail-with-body\1", line, count=1)
    if stream:
        output, status = _stream(line, cwd, env, shown)
    else:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output, status = done.stdout + done.stderr, done.returncode
    assert status == expected, f"{line}: exit {status}, not {expected}:\n{output}"
    missing = _output_matches(shown, output)
    assert not missing, f"{line}: output lacks {missing}:\n{output}"


PAGES_WITH_SHELL = [
    p for p in PAGES if any(why is None for *_, why in blocks(p)) and p.name not in TESTED_ELSEWHERE
]


@pytest.mark.parametrize("page", PAGES_WITH_SHELL, ids=lambda p: p.name)
def test_the_shell_examples_of_a_page_run(
    page: Path, tmp_path: Path, server_url: str, request: pytest.FixtureRequest
) -> None:
    # tests/conftest.py's pg_url: an empty schema of the test database (unreachable: skipped,
    # except under CI=true), only for a page that serves on PostgreSQL
    pg = request.getfixturevalue("pg_url") if PAGE_PG in page.read_text("utf-8") else None
    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    premises = dict(PREMISES.get(page.name, {}))
    setup = premises.pop("$", None)
    for name, text in premises.items():
        if text == PAGE_YAML:
            text = re.findall(r"```yaml\n(.*?)```", page.read_text("utf-8"), re.S)[0]
        elif text == FLAGS_JSON:
            text = re.findall(
                r"```json\n(.*?)```", (ROOT / "docs" / "flags.md").read_text("utf-8"), re.S
            )[0]
        (work / name).write_text(text, encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()  # a reader's shell: no COLUMNS exported
        if not k.startswith("CONFHUB_") and k not in ("COLUMNS", "LINES")
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env['PATH']}",
        HOME=str(home),
        NO_COLOR="1",
        CONFHUB_MASTER_KEY=generate_master_key(),
        EDITOR="true",
        VISUAL="true",
        USER="ops",
        LOGNAME="ops",
        ADMIN="no-token-needed-on-this-open-server",
    )
    if setup is not None:
        _run(_adapt(setup, server_url, home, pg), work, env, [])
    ran = 0
    for lang, code, why in blocks(page):
        if why is not None:
            continue
        for command in commands(lang, code):
            _run(_adapt(command.line, server_url, home, pg), work, env, command.shown)
            ran += 1
    assert ran


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_shell_block_that_is_not_run_says_why(page: Path) -> None:
    assert all(len(why.strip()) > 10 for *_, why in blocks(page) if why is not None)


def test_output_matching_is_about_substance() -> None:
    shown = ["✓ dry run: would set models/claude-opus env=base → version 7, revision 11"]
    assert not _output_matches(
        shown, "✓ dry run: would set models/claude-opus env=base → version 2,  revision 5\n"
    )
    assert _output_matches(shown, "✓ set models/claude-opus env=base → version 2, revision 5")
    assert not _output_matches(
        ['{"items":[{"namespace":"models",...}],"next_cursor":null}'],
        '{"items":[{"namespace":"models","keys":1}],"next_cursor":null}',
    )
