"""What every chapter's exercises share: a student's parameters drawn from a seed, and a
verdict on an answer that says what is wrong without giving the expected value away."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

class Draw:
    """The parameters of one exercise for one seed: the book's worked example for seed 0,
    otherwise drawn from the seed alone (the same on every machine and Python version:
    ``random.Random`` seeded with a string, read through ``random()`` only).

    >>> Draw("2.2", 0).number(0.9, 0.95, book=0.91)
    0.91
    >>> a, b = Draw("2.2", 7).number(0.9, 0.95, book=0.91), Draw("2.2", 7).number(0.9, 0.95, book=0.91)
    >>> a == b and 0.9 <= a <= 0.95
    True
    """

    def __init__(self, exercise: str, seed: int) -> None:
        self.book = seed == 0
        self._random = random.Random(f"g2s-lite exercise {exercise}, seed {seed}").random

    def number(self, low: float, high: float, book: float, digits: int = 2) -> float:
        """A number in [low, high] rounded to ``digits`` decimals (``book`` for seed 0)."""
        return book if self.book else round(low + (high - low) * self._random(), digits)

    def integer(self, low: int, high: int, book: int) -> int:
        """A whole number from ``low`` to ``high`` inclusive (``book`` for seed 0)."""
        return book if self.book else low + int(self._random() * (high - low + 1))

    def choice(self, options: Sequence[Any], book: Any) -> Any:
        """One of ``options`` (``book`` for seed 0)."""
        return book if self.book else options[int(self._random() * len(options))]


@dataclass(frozen=True)
class Exercise:
    """One exercise whose answer is checked.

    Attributes:
        params: the student's parameters from a :class:`Draw` (a dict, ``{}`` when the
            exercise takes none).
        statement: one line, formatted with the parameters: what to compute.
        expected: ``expected(params, **context)``, the answer (a number, a tuple, a name),
            recomputed independently of the code the exercise asks the student to write.
        judge: ``judge(answer, expected, params)`` → ``(right, why)``, the chapter's objects
            passed to the check among the parameters; ``why`` never names the expected
            value.
        needs: the chapter's objects ``expected`` cannot do without (e.g. ``("rec",)``):
            the answer then depends on the student's own run and is checked live only.
        live: for an exercise checked live only (one that ``needs`` the student's run, or
            has no single answer), what the teacher's command says instead of an answer
            (formatted with the parameters).
        shares: the exercise whose parameters this one reuses (the same point sets).
    """
    params: Callable[[Draw], dict]
    statement: str
    expected: Callable[..., Any]
    judge: Callable[[Any, Any, dict], "tuple[bool, str]"]
    needs: tuple[str, ...] = ()
    live: str = ""
    shares: str = ""


def no_params(draw: Draw) -> dict:
    """The parameters of an exercise that takes none."""
    return {}


# ----------------------------------------------------------------------------- verdicts
def numbers(answer: Any, n: int) -> list[float] | None:
    """``answer`` as ``n`` floats (one number when ``n`` is 1), or None when it is not."""
    try:
        values = torch.as_tensor(answer, dtype=torch.float64).flatten().tolist()
    except (TypeError, ValueError, RuntimeError):
        return None
    return values if len(values) == n and all(math.isfinite(v) for v in values) else None


def _near(value: float, target: float, rel: float, abs_tol: float) -> bool:
    return abs(value - target) <= max(rel * abs(target), abs_tol)


def miss(value: float, expected: float) -> str:
    """How a wrong number misses, in words only (never the expected value).

    >>> miss(-2.0, 2.0), miss(4.1, 2.0), miss(0.021, 2.0), miss(2.1, 2.0), miss(9.0, 2.0)
    ('right in size but of the wrong sign', 'off by a factor of about 2 (too high)', \
'off by a factor of about 100 (too low): mind the units', 'a little too high', 'much too high')
    """
    if expected == 0:
        return "too high" if value > 0 else "too low"
    if value * expected < 0:
        size = "right in size but " if _near(abs(value), abs(expected), 0.02, 1e-9) else ""
        return size + "of the wrong sign"
    ratio = abs(value / expected)
    way = "too high" if value > expected else "too low"
    for factor, note in ((2, ""), (10, ": mind the units"), (100, ": mind the units")):
        if value != 0 and any(_near(ratio, f, 0.06, 0) for f in (factor, 1 / factor)):
            return f"off by a factor of about {factor} ({way}){note}"
    if _near(ratio, 1, 0.1, 0):
        return "a little " + way
    return ("much " if not 0.5 < ratio < 2 else "") + way


def judge_number(answer: Any, expected: float, what: str, *, rel: float = 0.02,
                 abs_tol: float = 1e-6, hint: str = "",
                 mistakes: Sequence[tuple[float, str]] = ()) -> tuple[bool, str]:
    """One number against the expected one: right within ``rel`` (relative) or ``abs_tol``;
    otherwise how it misses, the first of ``mistakes`` (a value a known slip gives, and what
    to fix) that it matches, else ``hint``.

    >>> judge_number(0.97, 0.965, "the apex depth")
    (True, 'the apex depth is 0.97')
    >>> judge_number(0.91, 0.965, "the apex depth", mistakes=[(0.91, "that is the ellipsoid's")])
    (False, "the apex depth is a little too low: that is the ellipsoid's")
    """
    values = numbers(answer, 1)
    if values is None:
        return False, f"{what} is one finite number; got {type(answer).__name__} {answer!r}"
    value = values[0]
    if _near(value, expected, rel, abs_tol):
        return True, f"{what} is {value:.4g}"
    slip = next((fix for wrong, fix in mistakes
                 if _near(value, wrong, rel, abs_tol) and not _near(wrong, expected, rel, abs_tol)),
                hint)
    return False, f"{what} is {miss(value, expected)}" + (f": {slip}" if slip else "")


def judge_numbers(answer: Any, expected: Sequence[float], names: Sequence[str], *,
                  rel: float = 0.02, abs_tol: float = 1e-6,
                  hints: Sequence[str] = (), mistakes: Sequence[tuple[Sequence[float], str]] = ()
                  ) -> tuple[bool, str]:
    """Several numbers, each with its name: which are right and how the others miss.
    ``mistakes`` holds whole answers a known slip gives (e.g. the two swapped) and what to
    fix; ``hints`` one hint per number, said when that number is wrong.

    >>> judge_numbers((1.0, 3.0), (1.0, 2.0), ("a", "b"), hints=("", "b is twice a"))
    (False, 'a is right; b is too high: b is twice a')
    >>> judge_numbers((2.0, 1.0), (1.0, 2.0), ("a", "b"), mistakes=[((2.0, 1.0), "swapped")])
    (False, 'swapped')
    """
    values = numbers(answer, len(expected))
    if values is None:
        return False, (f"the answer is {len(expected)} finite numbers ({', '.join(names)}); "
                       f"got {type(answer).__name__} {answer!r}")
    wrong_on = [not _near(v, e, rel, abs_tol) for v, e in zip(values, expected)]
    for slip, fix in mistakes:
        if any(wrong_on) and all(_near(v, s, rel, abs_tol) for v, s in zip(values, slip)):
            return False, fix
    hints = list(hints) + [""] * len(expected)
    parts = []
    for value, want, name, wrong, hint in zip(values, expected, names, wrong_on, hints):
        if wrong:
            parts.append(f"{name} is {miss(value, want)}" + (f": {hint}" if hint else ""))
        else:   # a right number is restated only when all are right: it would be a giveaway
            parts.append(f"{name} is right" if any(wrong_on) else f"{name} is {value:.4g}")
    return not any(wrong_on), "; ".join(parts)
