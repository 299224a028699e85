"""The teacher's command: every student's expected answers, from their seeds.

``python -m g2s_lite.exercises answers --seeds FILE [--exercises 2.2 7.4 …] [--json OUT]``
prints, for each student of FILE (one ``name,seed`` or ``name seed`` a line; blank lines
and ``#`` comments are skipped), the expected answer of every checked exercise, or, where
the answer depends on the student's own run (a reconstruction), how it follows from it.
``python -m g2s_lite.exercises task N.K --seed S`` prints one student's statement.
A bad file or argument prints one line ``error: …`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from . import all_exercises, expected, params, statement


class _Refused(Exception):
    """A bad input: its message becomes the one line ``error: …``."""


def read_seeds(path: Path) -> list[tuple[str, int]]:
    """The ``(name, seed)`` pairs of a seeds file, in its order."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise _Refused(f"cannot read the seeds file {path} ({err.strerror})") from None
    except UnicodeDecodeError:
        raise _Refused(f"the seeds file {path} is not text (UTF-8): write one 'name,seed' "
                       "a line") from None
    students, seen = [], set()
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = re.fullmatch(r"(.+?)\s*(?:,|\s)\s*([+-]?\d+)", line)
        if found is None:
            raise _Refused(f"line {number} of {path} is {line!r}: write one 'name,seed' or "
                           "'name seed' a line, the seed a whole number")
        name, seed = found.group(1).strip(), int(found.group(2))
        if name in seen:
            raise _Refused(f"line {number} of {path}: {name!r} appears twice; give each "
                           "student one seed")
        seen.add(name)
        students.append((name, seed))
    if not students:
        raise _Refused(f"the seeds file {path} names no student: write one 'name,seed' a line")
    return students


def _plain(value: Any) -> Any:
    """A value as JSON holds it (tuples become lists, floats keep full precision)."""
    return list(value) if isinstance(value, tuple) else value


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return str(value)


def answers(students: list[tuple[str, int]], exercises: list[str]) -> list[dict]:
    """Each student's statements and expected answers (or how a live one is checked)."""
    known, table = all_exercises(), []
    for name, seed in students:
        rows = {}
        for number in exercises:
            ex = known[number]
            row = {"statement": statement(number, seed)}
            if ex.live:
                row["live"] = ex.live.format(**params(number, seed))
            else:
                row["expected"] = _plain(expected(number, seed))
            rows[number] = row
        table.append({"name": name, "seed": seed, "answers": rows})
    return table


def _print_answers(table: list[dict]) -> None:
    for student in table:
        note = ("  (seed 0 is the book's worked example: its answers are on the public "
                "solutions pages)" if student["seed"] == 0 else "")
        print(f"{student['name']} (seed {student['seed']}){note}")
        for number, row in student["answers"].items():
            if "live" in row:
                print(f"  {number:>5}  checked live only: {row['live']}")
            else:
                print(f"  {number:>5}  {_shown(row['expected'])}")


def _parser() -> argparse.ArgumentParser:
    from ..results import command_parser  # bad options: one error line, exit code 2

    parser = command_parser("python -m g2s_lite.exercises",
                            "The exercises' seeded answers: a student's statement, and every "
                            "student's expected answers for the teacher.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=type(parser))
    ans = sub.add_parser("answers", help="every student's expected answers, from their seeds")
    ans.add_argument("--seeds", type=Path, required=True, metavar="FILE",
                     help="one 'name,seed' (or 'name seed') a line; # starts a comment")
    ans.add_argument("--exercises", nargs="+", default=None, metavar="N.K",
                     help="the exercises (default: every checked exercise of the book)")
    ans.add_argument("--json", type=Path, default=None, metavar="OUT",
                     help="also write the answers, at full precision, to this JSON file")
    one = sub.add_parser("task", help="one student's statement of one exercise")
    one.add_argument("exercise", metavar="N.K")
    one.add_argument("--seed", type=int, default=0,
                     help="the student's seed (0: the book's worked example)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "task":
            print(statement(args.exercise, args.seed))
            return 0
        numbers = args.exercises or list(all_exercises())
        for number in numbers:
            params(number)             # an unknown exercise raises a ValueError saying so
        table = answers(read_seeds(args.seeds), numbers)
        _print_answers(table)
        if args.json is not None:
            text = json.dumps({"students": table}, indent=1, ensure_ascii=False) + "\n"
            try:
                args.json.write_text(text, encoding="utf-8")
            except OSError as err:
                raise _Refused(f"cannot write --json {args.json} ({err.strerror})") from None
        return 0
    except (_Refused, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
