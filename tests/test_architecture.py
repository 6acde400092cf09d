"""The layer rules of docs/architecture.md hold: a change that breaks them goes red here.

The rules themselves are the import-linter contracts in pyproject.toml ([tool.importlinter]).
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "confhub"
MAX_MODULE_LINES = 500
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", ARCHITECTURE_DOC.read_text("utf-8"),
                      flags=re.S)


class TestImportContracts:
    def test_every_import_contract_is_kept(self, capsys: pytest.CaptureFixture[str]) -> None:
        """interfaces -> hub -> store, only the hub imports the store, the hub imports no
        interface (the report names the offending import when one breaks)."""
        cwd = os.getcwd()
        os.chdir(ROOT)  # lint-imports finds the package through the installed path
        try:
            code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True,
                                no_logo=True)
        finally:
            os.chdir(cwd)
        report = capsys.readouterr().out
        assert code == 0, report
        assert "BROKEN" not in report and report.count("KEPT") == 3, report


class TestModuleShape:
    def test_no_module_is_longer_than_the_limit(self) -> None:
        """Small modules with one job: none past ~500 lines (STYLE.md)."""
        long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
                if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES}
        assert long == {}

    @pytest.mark.parametrize("module", sorted(p.name for p in (PACKAGE / "hub").glob("*.py")))
    def test_each_hub_module_says_what_it_owns_and_may_import(self, module: str) -> None:
        """Every hub module opens with a docstring naming what it may import."""
        docstring = ast.get_docstring(ast.parse((PACKAGE / "hub" / module).read_text("utf-8")))
        assert docstring, f"hub/{module} has no module docstring"
        assert "import" in docstring, f"hub/{module}'s docstring does not say what it imports"


class TestArchitectureDoc:
    def test_the_quoted_contract_is_the_one_the_suite_runs(self) -> None:
        """docs/architecture.md quotes the import contracts of pyproject.toml word for word."""
        [quoted] = doc_blocks("toml")
        project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
        contracts = project["tool"]["importlinter"]["contracts"]
        assert tomllib.loads(quoted)["tool"]["importlinter"]["contracts"] == contracts

    @pytest.mark.parametrize("index", range(len(doc_blocks("python"))))
    def test_python_examples_run_and_print_what_they_show(
            self, index: int, capsys: pytest.CaptureFixture[str]) -> None:
        block = doc_blocks("python")[index]
        exec(compile(block, f"docs/architecture.md[python {index}]", "exec"), {})
        printed = capsys.readouterr().out
        shown = re.findall(r"^# (\[.*\])$", block, flags=re.M)
        assert shown and all(line in printed for line in shown), printed
