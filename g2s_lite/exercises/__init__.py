"""Exercises a student can check — every chapter, each student with their own numbers.

Each chapter's exercises are directives in its notebook (``{exercise}``, numbered
``ex-<chapter>-<k>``); their solutions live in the book's solutions appendix, not in the
notebooks a student opens. Where an answer is a number (or a few, or a name), the chapter's
module ``g2s_lite.exercises.chNN`` holds it as an :class:`~._common.Exercise`: what a seed
varies (the face, the light, the turn, …), the expected answer recomputed independently, and
what to say about a wrong one.

A student's seed (their teacher gives it; any whole number for self-study) picks their own
parameters; seed 0, the default, is the book's worked example, the one the public solutions
work through:

    >>> from g2s_lite.exercises import check, task
    >>> p = task("2.2", seed=1234)
    Exercise 2.2, seed 1234: the weak prior with near = 0.922 and far = 1.05, on the mask box of face 117 of SynFaces(64) seed 0: give its apex and rim depths.
    >>> p["near"], p["far"]
    (0.922, 1.05)
    >>> check("2.2", (0.99, 1.05), seed=1234)
    ✗ not yet: the apex depth is a little too high: the weak prior halves the relief below the rim, d_far − (d_far − d)/2; the rim depth is right
    False
    >>> check("2.2", ((p["near"] + p["far"]) / 2, p["far"]), seed=1234)
    ✓ right: the apex depth is 0.986; the rim depth is 1.05
    True

A wrong answer is told how it misses (too high, too low, the wrong sign, off by a factor of
about 2, which component) and given a hint, never the expected value. The teacher's
command prints every student's expected answers from a file of seeds
(``python -m g2s_lite.exercises answers --seeds FILE``; see :mod:`.__main__`).
"""
from __future__ import annotations

import importlib
import inspect
import numbers as _numbers
from typing import Any

from ._common import Draw, Exercise

#: The chapters that have exercises.
CHAPTERS = range(1, 11)


def exercises_of(chapter: int) -> dict[str, Exercise]:
    """The checked exercises of one chapter, by number (an empty dict when it has none)."""
    try:
        module = importlib.import_module(f"{__name__}.ch{chapter:02d}")
    except ModuleNotFoundError:
        return {}
    return dict(module.EXERCISES)


def all_exercises() -> dict[str, Exercise]:
    """Every checked exercise of the book, in the book's order."""
    return {number: ex for chapter in CHAPTERS for number, ex in exercises_of(chapter).items()}


def _exercise(exercise: str) -> Exercise:
    chapter, _, number = str(exercise).partition(".")
    if not chapter.isdigit() or not number.isdigit():
        raise ValueError(f"exercise {exercise!r} is not of the form '<chapter>.<k>' "
                         "(e.g. '2.3'); the exercise's title gives its number")
    known = exercises_of(int(chapter))
    if exercise not in known:
        raise ValueError(f"exercise {exercise} has no check (chapter {chapter}'s checks: "
                         f"{', '.join(known) or 'none'}); its solution in the solutions "
                         "appendix says how to judge your answer")
    return known[exercise]


def _seed(seed: Any) -> int:
    if seed is None:
        return 0
    if isinstance(seed, bool) or not isinstance(seed, _numbers.Integral):
        raise ValueError(f"the seed must be a whole number (your teacher gives it; any "
                         f"integer for self-study), got {seed!r}")
    return int(seed)


def params(exercise: str, seed: int | None = None) -> dict:
    """The parameters of ``exercise`` for ``seed`` (0 or None: the book's worked example)."""
    ex = _exercise(exercise)
    return ex.params(Draw(ex.shares or exercise, _seed(seed)))


def statement(exercise: str, seed: int | None = None) -> str:
    """One line: what ``exercise`` asks of the student with ``seed``."""
    ex, p = _exercise(exercise), params(exercise, seed)
    return f"Exercise {exercise}, seed {_seed(seed)}: " + ex.statement.format(**p)


def task(exercise: str, seed: int | None = None) -> dict:
    """Print the student's own statement of ``exercise`` and return its parameters (with the
    statement under ``"statement"``)."""
    line = statement(exercise, seed)
    print(line)
    return {**params(exercise, seed), "statement": line}


def expected(exercise: str, seed: int | None = None, **context: Any) -> Any:
    """The expected answer of ``exercise`` for ``seed`` (what the teacher grades against).

    ``context`` passes the chapter's objects an exercise needs (its text says which); without
    them an exercise that depends on the student's own run raises a ValueError.
    """
    ex = _exercise(exercise)
    missing = [name for name in ex.needs if context.get(name) is None]
    if missing:
        raise ValueError(f"exercise {exercise} needs {', '.join(f'{n}=…' for n in missing)}: "
                         "the chapter's objects from your own run (its text says which)")
    takes = [name for name, q in inspect.signature(ex.expected).parameters.items()
             if q.kind is q.POSITIONAL_OR_KEYWORD][1:]     # keyword-only ones are not context
    unknown = [name for name in context if name not in takes]
    if unknown:
        raise ValueError(f"exercise {exercise} takes "
                         f"{', '.join(f'{n}=…' for n in takes) or 'nothing'} from the chapter, "
                         f"not {', '.join(f'{n}=…' for n in unknown)}; its text says what to "
                         "pass")
    return ex.expected(params(exercise, seed), **context)


def check(exercise: str, answer: Any, seed: int | None = None, **context: Any) -> bool:
    """Check ``answer`` to ``exercise`` (``"<chapter>.<k>"``, as the book numbers it) for the
    student's ``seed`` (None or 0: the book's worked example), print ✓ or ✗ with the reason,
    and return whether it is right.

    ``context`` passes what the check needs of the chapter (e.g. ``rec=rec``); the
    exercise's text says what to pass.
    """
    ex = _exercise(exercise)
    want = expected(exercise, seed, **context)
    right, why = ex.judge(answer, want, {**params(exercise, seed), **context})
    print(("✓ right: " if right else "✗ not yet: ") + why)
    return bool(right)
