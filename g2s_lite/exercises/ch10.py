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

from ._common import Draw, Exercise, judge_number, no_params

#: The book's example point sets of exercises 10.1 and 10.2.
X = [(0, 0), (1, 0), (2, 0)]
Y = [(0, 0), (1, 0), (5, 0)]


def _points(points: Any) -> list[tuple[float, ...]]:
    return [tuple(float(c) for c in p) for p in points]


def _squared(p: Sequence[float], q: Sequence[float]) -> float:
    return sum((a - b) ** 2 for a, b in zip(p, q))


def _plain(p: Sequence[float], q: Sequence[float]) -> float:
    return math.sqrt(_squared(p, q))


def _chamfer_sum(x: Any, y: Any, cost=_squared, mean: bool = True, both: bool = True) -> float:
    """Squared distances to the nearest point averaged both ways (``cost``, ``mean`` and
    ``both`` give the slips the hints recognise)."""
    x, y = _points(x), _points(y)
    there = sum(min(cost(p, q) for q in y) for p in x) / (len(x) if mean else 1)
    back = sum(min(cost(p, q) for p in x) for q in y) / (len(y) if mean else 1)
    return there + back if both else there


def _emd_brute(x: Any, y: Any, cost=_plain, mean: bool = True) -> float:
    """Every one-to-one matching tried (sets of up to 8 points)."""
    x, y = _points(x), _points(y)
    return min(sum(cost(p, y[j]) for p, j in zip(x, perm))
               for perm in itertools.permutations(range(len(y)))) / (len(x) if mean else 1)


# ----------------------------------------------------------------------------- 10.1, 10.2
def _sets_params(draw: Draw) -> dict:
    """Two sets of three points with whole coordinates (the book's X and Y for seed 0)."""
    def point() -> tuple[int, int]:
        return (draw.integer(0, 6, book=0), draw.integer(0, 3, book=0))
    x, y = [point() for _ in range(3)], [point() for _ in range(3)]
    return {"X": X if draw.book else x, "Y": Y if draw.book else y}


def chamfer(p: dict) -> float:
    """10.1: the Chamfer distance of X and Y, squared distances averaged both ways."""
    return _chamfer_sum(p["X"], p["Y"])


def emd(p: dict) -> float:
    """10.2: the EMD of X and Y, the best one-to-one matching's mean plain distance."""
    return _emd_brute(p["X"], p["Y"])


def _judge_chamfer(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    x, y = p["X"], p["Y"]
    return judge_number(
        answer, want, "the Chamfer distance", rel=0, abs_tol=1e-3,
        hint="from each point of X the squared distance to its nearest point of Y, averaged; "
             "the same from Y to X; then add",
        mistakes=[(_chamfer_sum(x, y, cost=_plain), "Section 2's Chamfer distance squares the "
                                                    "distances"),
                  (_chamfer_sum(x, y, mean=False), "average each direction over its points "
                                                   "rather than summing"),
                  (_chamfer_sum(x, y, both=False), "add the direction from Y to X too"),
                  (_chamfer_sum(y, x, both=False), "add the direction from X to Y too")])


def _judge_emd(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    x, y = p["X"], p["Y"]
    return judge_number(
        answer, want, "the Earth Mover's distance", rel=0, abs_tol=1e-3,
        hint="try every one-to-one matching of X to Y; the best one's mean distance",
        mistakes=[(_emd_brute(x, y, cost=_squared), "the EMD here uses plain distances, not "
                                                    "squared ones"),
                  (_emd_brute(x, y, mean=False), "average over the points: divide the best "
                                                 "matching's cost by their number"),
                  (_chamfer_sum(x, y, cost=_plain, both=False),
                   "each point of Y must be matched once: nearest points may be shared, "
                   "a matching's may not")])


# ----------------------------------------------------------------------------- 10.3
def _judge_blind(answer: Any, want: None, p: dict) -> tuple[bool, str]:
    """Two sets of one size with Chamfer 0 and EMD > 0."""
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


# ----------------------------------------------------------------------------- 10.4
def _sigma_params(draw: Draw) -> dict:
    return {"error": draw.number(0.05, 0.8, book=0.3, digits=3)}


def best_sigma(p: dict) -> float:
    """10.4: the σ minimising √2·e/σ + log σ, found by a fine search (not the derivative)."""
    grid = [k / 100000 for k in range(1, 200000)]
    return min(grid, key=lambda s: math.sqrt(2) * p["error"] / s + math.log(s))


def _judge_sigma(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, "the best σ", rel=0, abs_tol=2e-3,
        hint="set the derivative of √2·e/σ + log σ with respect to σ to zero",
        mistakes=[(p["error"], "the term is √2·e/σ: mind the √2 of the Laplacian"),
                  (p["error"] / math.sqrt(2), "the term is √2·e/σ: the √2 multiplies e")])


# ----------------------------------------------------------------------------- 10.5
def _relief_params(draw: Draw) -> dict:
    """A turn and a relief too deep (k > 1) or too flat (k < 1): 20° and 1.5 for the book."""
    low, high = draw.choice(((1.2, 2.5), (0.7, 0.9)), book=(1.2, 2.5))
    return {"yaw": draw.integer(10, 35, book=20), "factor": draw.number(low, high, book=1.5)}


def bas_relief_turn(p: dict) -> float:
    """10.5: the yaw whose sideways shift on a relief ``factor`` times as deep equals the
    true face's: sin ψ' = sin ψ / factor."""
    return math.degrees(math.asin(math.sin(math.radians(p["yaw"])) / p["factor"]))


def _judge_relief(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, "the turn (degrees)", rel=0, abs_tol=0.2,
        hint="equate the shifts: factor·z·sin ψ' = z·sin ψ",
        mistakes=[(math.degrees(math.asin(min(1.0, math.sin(math.radians(p["yaw"]))
                                              * p["factor"]))),
                   "a deeper relief moves further for the same turn, so it needs a smaller "
                   "turn (a flatter one a larger): divide by the factor")])


EXERCISES = {
    "10.1": Exercise(
        params=_sets_params,
        statement="the point sets X = {X} and Y = {Y}: give their Chamfer distance (squared "
                  "distances, averaged both ways).",
        expected=chamfer, judge=_judge_chamfer),
    "10.2": Exercise(
        params=_sets_params, shares="10.1",
        statement="the point sets X = {X} and Y = {Y}: give their Earth Mover's distance "
                  "(plain distances, averaged).",
        expected=emd, judge=_judge_emd),
    "10.3": Exercise(
        params=no_params,
        statement="give two point sets X and Y of one size with Chamfer distance 0 and EMD > 0.",
        expected=lambda p: None, judge=_judge_blind,
        live="no single answer: any pair of sets of one size with Chamfer 0 and EMD > 0"),
    "10.4": Exercise(
        params=_sigma_params,
        statement="a pixel with reconstruction error |Î − I| = {error}: give the σ that "
                  "minimises its term √2·e/σ + log σ.",
        expected=best_sigma, judge=_judge_sigma),
    "10.5": Exercise(
        params=_relief_params,
        statement="a face turned by ψ = {yaw}° reconstructed with a relief {factor} times as "
                  "deep as the truth: give the turn (degrees) that moves its points as far, "
                  "to first order.",
        expected=bas_relief_turn, judge=_judge_relief),
}
