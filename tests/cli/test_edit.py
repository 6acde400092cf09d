"""edit: the value goes through $EDITOR and comes back as a compare-and-set write."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .conftest import Invoke


@pytest.fixture
def editor(tmp_path: Path) -> str:
    """An $EDITOR that runs a Python snippet on the file's text (``EDIT`` env var)."""
    script = tmp_path / "fake_editor.py"
    script.write_text(
        "import os, sys\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        "exec(os.environ['EDIT'])\n"
        "open(path, 'w').write(text)\n"
    )
    return f"{sys.executable} {script}"


def test_edit_saves_a_new_version(cli: Invoke, editor: str) -> None:
    cli("set", "models/claude-opus", '{"max_tokens": 8192, "temperature": 0.5}')
    env = {"EDITOR": editor, "EDIT": "text = text.replace('0.5', '0.2')"}
    result = cli("edit", "models/claude-opus", "-r", "tune", env=env)
    assert result.exit_code == 0, result.stderr
    assert "version 2" in result.stdout
    assert cli("get", "models/claude-opus", "--raw").json()["temperature"] == 0.2
    assert cli("history", "models/claude-opus", "--json").json()[0]["reason"] == "tune"


def test_yaml_draft_has_a_header_and_json_format_works(cli: Invoke, editor: str) -> None:
    cli("set", "models/claude-opus", '{"max_tokens": 8192}')
    seen = "assert text.startswith('# confhub edit models/claude-opus (env base, version 1)')"
    assert cli("edit", "models/claude-opus", env={"EDITOR": editor, "EDIT": seen}
               ).exit_code == 0
    to_json = "import json; assert json.loads(text); text = json.dumps({'max_tokens': 1})"
    result = cli("edit", "models/claude-opus", "--format", "json", "--json",
                 env={"EDITOR": editor, "EDIT": to_json})
    assert result.json()["changed"] is True and result.json()["value"] == {"max_tokens": 1}


def test_unchanged_or_empty_saves_nothing(cli: Invoke, editor: str) -> None:
    cli("set", "models/claude-opus", '{"max_tokens": 8192}')
    assert cli("edit", "models/claude-opus", env={"EDITOR": editor, "EDIT": "pass"}
               ).exit_code == 0
    emptied = cli("edit", "models/claude-opus", "--json", env={"EDITOR": editor,
                                                               "EDIT": "text = ''"})
    assert emptied.json()["changed"] is False
    assert len(cli("history", "models/claude-opus", "--json").json()) == 1


def test_concurrent_change_is_a_conflict_and_the_edit_is_kept(
        cli: Invoke, editor: str, target: dict[str, str]) -> None:
    cli("set", "models/claude-opus", '{"max_tokens": 8192}')
    # The "editor" writes the key behind our back before saving its own change.
    where = (f"['--url', {target['CONFHUB_URL']!r}]" if "CONFHUB_URL" in target
             else f"['--db', {target.get('CONFHUB_DB')!r}]")
    sneaky = ("import subprocess, sys; "
              "subprocess.run([sys.executable, '-m', 'confhub.cli', 'set', "
              f"'models/claude-opus', '{{}}', *{where}], check=True); "
              "text = text.replace('8192', '1')")
    result = cli("edit", "models/claude-opus", env={"EDITOR": editor, "EDIT": sneaky})
    assert result.exit_code == 4
    assert "your edit is kept in" in result.stderr
    kept = Path(result.stderr.split("your edit is kept in")[1].split()[0])
    assert "max_tokens: 1" in kept.read_text()
    kept.unlink()


def test_failing_editor_saves_nothing(cli: Invoke) -> None:
    cli("set", "models/claude-opus", "{}")
    assert cli("edit", "models/claude-opus", env={"EDITOR": "false"}).exit_code == 2


def test_missing_key_exits_3(cli: Invoke, editor: str) -> None:
    assert cli("edit", "models/missing", env={"EDITOR": editor, "EDIT": "pass"}).exit_code == 3
