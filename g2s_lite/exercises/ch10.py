"""Checks of Chapter 10's exercises (the landscape).

Each recomputes what is expected its own way — brute force over every matching, a search
over σ, the first-order turn — rather than with the chapter's code:

>>> _chamfer_sum([(0, 0), (1, 0), (2, 0)], [(0, 0), (1, 0), (5, 0)])
3.3333333333333335
>>> _emd_brute([(0, 0), (1, 0), (2, 0)], [(0, 0), (1, 0), (5, 0)])
1.0
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

#: The point sets of exercises 10.1 and 10.2.
X = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)]
Y = [(0.0, 0.0), (1.0, 0.0), (5.0, 0.0)]
#: Exercise 10.4: the reconstruction error of the pixel.
PIXEL_ERROR = 0.3
#: Exercise 10.5: the true yaw (degrees) and how many times too deep the relief is.
TRUE_YAW_DEG, TOO_DEEP = 20.0, 1.5


def _points(points: Any) -> list[tuple[float, ...]]:
    return [tuple(float(c) for c in p) for p in points]


def _squared(p: Sequence[float], q: Sequence[float]) -> float:
    return sum((a - b) ** 2 for a, b in zip(p, q))


def _chamfer_sum(x: Any, y: Any) -> float:
    x, y = _points(x), _points(y)
    there = sum(min(_squared(p, q) for q in y) for p in x) / len(x)
    back = sum(min(_squared(p, q) for p in x) for q in y) / len(y)
    return there + back


def _emd_brute(x: Any, y: Any) -> float:
    """Every one-to-one matching tried (sets of up to 8 points)."""
    x, y = _points(x), _points(y)
    return min(sum(math.sqrt(_squared(p, y[j])) for p, j in zip(x, perm))
               for perm in itertools.permutations(range(len(y)))) / len(x)


def _number(answer: Any, expected: float, what: str, tol: float) -> tuple[bool, str]:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return False, f"give {what} as a number, got {answer!r}"
    if abs(value - expected) <= tol:
        return True, f"{what} is {expected:.4g}"
    return False, f"{what} is not {value:.4g}; recompute it step by step (solution in the appendix)"


def chamfer(answer: Any) -> tuple[bool, str]:
    """10.1: the Chamfer distance of X and Y, squared distances averaged both ways."""
    return _number(answer, _chamfer_sum(X, Y), "the Chamfer distance", 1e-3)


def emd(answer: Any) -> tuple[bool, str]:
    """10.2: the EMD of X and Y."""
    return _number(answer, _emd_brute(X, Y), "the Earth Mover's distance", 1e-3)


def chamfer_blind(answer: Any) -> tuple[bool, str]:
    """10.3: two sets of one size with Chamfer 0 and EMD > 0."""
    try:
        x, y = (_points(s) for s in answer)
    except (TypeError, ValueError):
        return False, "give a pair (X, Y) of lists of coordinates"
    if len(x) != len(y) or not 1 <= len(x) <= 8:
        return False, f"X and Y need the same size (1 to 8 points), got {len(x)} and {len(y)}"
    cd, e = _chamfer_sum(x, y), _emd_brute(x, y)
    if cd > 1e-12:
        return False, f"their Chamfer distance is {cd:.3g}, not 0: every point needs an exact twin"
    if e <= 1e-12:
        return False, "their EMD is 0 too: they are the same set; repeat a point in one of them"
    return True, f"Chamfer 0 but EMD {e:.3g}: Chamfer cannot see how many points sit where"


def best_sigma(answer: Any) -> tuple[bool, str]:
    """10.4: the σ minimising √2·e/σ + log σ, found by a fine search."""
    grid = [k / 100000 for k in range(1, 200000)]
    found = min(grid, key=lambda s: math.sqrt(2) * PIXEL_ERROR / s + math.log(s))
    return _number(answer, found, "the best σ", 2e-3)


def bas_relief_turn(answer: Any) -> tuple[bool, str]:
    """10.5: the yaw whose sideways shift on a relief TOO_DEEP times deeper equals the true."""
    expected = math.degrees(math.asin(math.sin(math.radians(TRUE_YAW_DEG)) / TOO_DEEP))
    return _number(answer, expected, "the turn (degrees)", 0.2)


CHECKS = {"10.1": chamfer, "10.2": emd, "10.3": chamfer_blind, "10.4": best_sigma,
          "10.5": bas_relief_turn}
