"""Exercises a student can check — every chapter.

Each chapter's exercises are directives in its notebook (``{exercise}``, numbered
``ex-<chapter>-<k>``); their solutions live in the book's solutions appendix, not in the
notebooks a student opens. Where an answer is a number or a tensor, the chapter's module
``g2s_lite.exercises.chNN`` holds a check that recomputes what is expected independently
and says right or wrong, and why:

    >>> from g2s_lite.exercises import check
    >>> check("0.1", 4)
    ✓ right: 2 + 2 is 4
    True
    >>> check("0.1", 5)
    ✗ not yet: 2 + 2 is 4, not 5
    False

A chapter's module defines ``CHECKS = {"<chapter>.<k>": function}``; each function takes the
student's answer (and the chapter's objects it needs, as keyword arguments) and returns
``(right, why)``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

Check = Callable[..., "tuple[bool, str]"]


def _example(answer: Any) -> tuple[bool, str]:
    """The check of this docstring's example (exercise 0.1: what is 2 + 2?)."""
    return (answer == 4, "2 + 2 is 4" if answer == 4 else f"2 + 2 is 4, not {answer}")


def checks_of(chapter: int) -> dict[str, Check]:
    """The checks of one chapter (an empty dict when it has none)."""
    if chapter == 0:
        return {"0.1": _example}
    try:
        module = importlib.import_module(f"{__name__}.ch{chapter:02d}")
    except ModuleNotFoundError:
        return {}
    return dict(module.CHECKS)


def check(exercise: str, answer: Any, **context: Any) -> bool:
    """Check ``answer`` to ``exercise`` (``"<chapter>.<k>"``, as the book numbers it), print
    ✓ or ✗ with the reason, and return whether it is right.

    ``context`` passes what the check needs of the chapter (e.g. ``face=face``); the
    exercise's text says what to pass.
    """
    chapter, _, number = str(exercise).partition(".")
    if not chapter.isdigit() or not number.isdigit():
        raise ValueError(f"exercise {exercise!r} is not of the form '<chapter>.<k>' "
                         "(e.g. '2.3'); the exercise's title gives its number")
    checks = checks_of(int(chapter))
    if exercise not in checks:
        known = ", ".join(sorted(checks)) or "none"
        raise ValueError(f"exercise {exercise} has no check (chapter {chapter}'s checks: "
                         f"{known}); its solution in the solutions appendix says how to "
                         "judge your answer")
    right, why = checks[exercise](answer, **context)
    print(("✓ right: " if right else "✗ not yet: ") + why)
    return bool(right)
