"""Every measured number a chapter's prose states is one a committed results file holds.

Chapters 7, 8 and 10 discuss the committed full-schedule results in words. A number typed
into that prose goes stale silently when a results file is made again; this test reads every
decimal number in their Markdown (outside code, math and exercise labels) and asks that it
be one the committed files give: a row's value, its ratio to the null row, the paper's
figures (:data:`g2s_lite.paper.PAPER_TABLES`) and their ratios, at the precision written.
"""
import json
import re
from pathlib import Path

import pytest

from g2s_lite import paper, results

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("07_benchmark", "08_editing", "10_landscape")
FILES = ("synface64.json", "synface64_joint.json", "edit_synface64.json", "edit_synface64_joint.json",
         "timings_gpu.json")
NUMBER = re.compile(r"(?<![\w.])[-−+]?(\d+\.\d+)")


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield float(x)


def known_numbers() -> set[str]:
    """What the committed files and the paper's tables give, written at 0 to 3 decimals."""
    values = []
    for name in FILES:
        data = json.loads(results.committed(name).read_text())
        values += _leaves({k: v for k, v in data.items() if k != "images"})
        rows = {r["method"]: r for r in data.get("rows", [])}
        if "null_depth" in rows:
            null = rows["null_depth"]
            values += [r[k] / null[k] for r in rows.values() for k in ("side", "mad")]
    null = paper.PAPER_TABLES["null_depth"]
    for side, mad in paper.PAPER_TABLES.values():
        values += [side, mad, side / null[0], mad / null[1]]
    return {f"{abs(v):.{d}f}" for v in values for d in range(4)}


def prose_numbers(markdown: str) -> list[tuple[str, str]]:
    """The decimal numbers of a Markdown text outside code, math and exercise numbers, each
    with its context."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$]*\$|`[^`]*`", " ", text)
    text = re.sub(r"(?:\{exercise\}|Exercise|exercises?)\s*\d+\.\d+", " ", text)
    return [(m.group(1), text[max(0, m.start() - 50):m.end() + 20].replace("\n", " "))
            for m in NUMBER.finditer(text)]


def test_the_checker_finds_a_stale_number():
    known = known_numbers()
    stated = prose_numbers("SIDE 0.974 (`x = 1.234`, $1.5$), Exercise 7.2; but 0.913 here")
    assert [n for n, _ in stated if n not in known] == ["0.913"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_prose_numbers_are_read_from_committed_files(chapter):
    known = known_numbers()
    cells = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())["cells"]
    stale = [f"{number} in “…{context}…”"
             for cell in cells if cell["cell_type"] == "markdown"
             for number, context in prose_numbers("".join(cell["source"]))
             if number not in known]
    assert not stale, (f"{chapter}: numbers no committed file gives (print them from a cell, "
                       "or correct them): " + "; ".join(stale))
