"""Every command has --help with an example, and docs/cli.md documents every command.

Like sqlite-utils' ``tests/test_docs.py``: the docs are a contract, so a new command without help
text or documentation fails CI instead of shipping silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from confhub.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command path of the app, e.g. ("get",), ("tenant", "clone")."""
    paths: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            paths.extend(_commands(command, path))
        else:
            paths.append(path)
    return paths


COMMANDS = _commands(typer.main.get_command(app))
GROUPS = sorted({path[:1] for path in COMMANDS if len(path) > 1})


def test_the_app_has_the_issue_3_commands() -> None:
    """The commands DESIGN.md section 4 and issue 3 promise are all there."""
    names = {" ".join(path) for path in COMMANDS}
    expected = {"serve", "get", "set", "patch", "delete", "ls", "history", "diff", "rollback",
                "txn", "export", "import", "snapshot create", "snapshot ls", "restore",
                "tenant ls", "tenant create", "tenant clone", "tenant delete", "tenant restore",
                "stats", "health", "edit", "changes"}
    assert expected <= names


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    """``confhub CMD --help`` exits 0 and shows at least one ``confhub CMD ...`` example."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Examples" in result.output
    assert f"confhub {' '.join(path)}" in result.output


@pytest.mark.parametrize("group", GROUPS, ids=" ".join)
def test_every_group_has_help_with_an_example(group: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*group, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert f"confhub {' '.join(group)} " in result.output


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("confhub ")


def test_root_help_lists_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "3 not found" in result.output and "4 conflict" in result.output


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_docs_cli_md_documents_every_command(path: tuple[str, ...]) -> None:
    """docs/cli.md has a heading for each command (``## confhub CMD`` or ``### confhub CMD``)."""
    headings = re.findall(r"^#{2,3} `?(confhub [a-z -]+?)`?\s*$", DOCS.read_text(), re.MULTILINE)
    assert f"confhub {' '.join(path)}" in headings
