"""Exercises a student can check — every chapter.

Each chapter's exercises are directives in its notebook (``{exercise}``, numbered
``ex-<chapter>-<k>``); their solutions live in the book's solutions appendix, not in the
notebooks a student opens. Where an answer is a number or a tensor, the chapter's module
``g2s_lite.exercises.chNN`` holds a check that recomputes what is expected independently
and says right or wrong, and why:

    >>> from g2s_lite.exercises import check
    >>> check("2.2", (0.965, 1.02))       # the weak prior's apex and rim depths
    ✓ right: the apex depth is 0.965; the rim depth is 1.02
    True
    >>> check("2.2", (0.91, 1.02))
    ✗ not yet: the apex depth is 0.965, not 0.91; the rim depth is 1.02
    False

A chapter's module defines ``CHECKS = {"<chapter>.<k>": function}``; each function takes the
student's answer (and the chapter's objects it needs, as keyword arguments) and returns
``(right, why)``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

Check = Callable[..., "tuple[bool, str]"]


def checks_of(chapter: int) -> dict[str, Check]:
    """The checks of one chapter (an empty dict when it has none)."""
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
