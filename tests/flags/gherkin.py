"""A small reader for the Gherkin files of flagd-testbed: scenarios, outlines and examples.

Enough of Gherkin for the evaluator suite: Feature/Background/Scenario/Scenario Outline,
Given/When/Then/And steps, tags on features, scenarios and Examples blocks, data tables after
a step, and ``<name>`` placeholders filled from each Examples row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

STEP = re.compile(r"^(Given|When|Then|And|But)\s+(.*)$")


@dataclass
class Scenario:
    id: str
    tags: set[str]
    steps: list[tuple[str, list[list[str]]]] = field(default_factory=list)


def _cells(line: str) -> list[str]:
    return [c.strip().replace('\\"', '"') for c in line.strip().strip("|").split("|")]


def scenarios(path: Path) -> list[Scenario]:
    """Every runnable scenario of a feature file (outlines expanded)."""
    feature_tags: set[str] = set()
    pending: set[str] = set()
    background: list[tuple[str, list[list[str]]]] = []
    out: list[Scenario] = []
    current: tuple[str, set[str], list[tuple[str, list[list[str]]]]] | None = None
    examples: list[tuple[set[str], list[list[str]]]] = []
    in_examples = False
    target: list[tuple[str, list[list[str]]]] = background

    def flush() -> None:
        if current is None:
            return
        name, tags, steps = current
        if not examples:
            out.append(Scenario(f"{path.stem}: {name}", tags, steps))
        for ex_tags, rows in examples:
            header, *body = rows
            for index, row in enumerate(body):
                values = dict(zip(header, row, strict=True))

                def fill(text: str, values: dict[str, str] = values) -> str:
                    return re.sub(r"<([^>]+)>", lambda m: values.get(m.group(1), m.group(0)),
                                  text)

                filled = [(fill(s), [[fill(c) for c in r] for r in t]) for s, t in steps]
                out.append(Scenario(f"{path.stem}: {name} [{index}: {', '.join(row)}]",
                                    tags | ex_tags, filled))

    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            pending |= set(line.split())
        elif line.startswith("Feature:"):
            feature_tags, pending = pending, set()
        elif line.startswith("Background:"):
            target, pending = background, set()
        elif line.startswith(("Scenario:", "Scenario Outline:")):
            flush()
            steps = list(background)
            current = (line.split(":", 1)[1].strip(), feature_tags | pending, steps)
            examples, in_examples, pending, target = [], False, set(), steps
        elif line.startswith("Examples"):
            examples.append((pending, []))
            in_examples, pending = True, set()
        elif line.startswith("|"):
            if in_examples:
                examples[-1][1].append(_cells(line))
            else:
                target[-1][1].append(_cells(line))
        elif (match := STEP.match(line)) is not None:
            target.append((match.group(2), []))
    flush()
    return out
