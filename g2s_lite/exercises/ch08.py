"""Chapter 8's checked exercises (3D-aware editing). Each recomputes what is expected its
own way: from the reconstruction's light by hand, by rotating a vector by hand, by warping
the canonical depth, or by reading the results file."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ._common import Draw, Exercise, judge_number, judge_numbers

#: The book's example (seed 0) of exercise 8.1: the albedo's brightness is scaled by this.
ALBEDO_SCALE = 0.5
#: The book's example of exercise 8.2: the view's yaw (degrees) and the light's direction
#: in the image's frame.
YAW_82, LIGHT_82 = 30, (0.5, 0.0)
#: Exercise 8.4's groups of edits in the results' summary, and its measures (lower is
#: closer for L1, higher for SSIM).
GROUPS_84 = ("yaw±15", "yaw±30", "yaw±45", "pitch±15", "lights")
MEASURES_84 = {"l1": min, "ssim": max}


# ----------------------------------------------------------------------------- 8.1
def _scale_params(draw: Draw) -> dict:
    """The factor the albedo's brightness is scaled by (½ for the book)."""
    return {"scale": draw.number(0.3, 0.9, book=ALBEDO_SCALE)}


def _strengths(p: dict, rec) -> tuple[float, float]:
    """The (ambient, diffuse) that keep the image: the image is (a+1)/2 · (α + β c), so a
    brightness scaled by k is undone by both strengths divided by k."""
    return tuple(rec.light[0, i].item() / p["scale"] for i in (0, 1))


def _judge_scale(answer: Any, want: tuple[float, float], p: dict) -> tuple[bool, str]:
    k = p["scale"]
    ok, why = judge_numbers(
        answer, want, ("the ambient strength", "the diffuse strength"), rel=1e-3,
        hints=("the image is (a+1)/2 · (α + β·max(0, ⟨n, −l⟩)): what undoes the albedo's "
               "factor?",) * 2,
        mistakes=[((want[0] * k * k, want[1] * k * k), "that scales the strengths by the "
                                                       "factor too; they must undo it"),
                  ((want[0] * k, want[1] * k), "those are the reconstruction's own strengths; "
                                               "the darker albedo needs stronger light")])
    return ok, why + (": only albedo × strengths is seen, so the image is unchanged" if ok
                      else "")


# ----------------------------------------------------------------------------- 8.2
def _direction_params(draw: Draw) -> dict:
    """A turn of 15° to 45° either way, and a light in the image's frame."""
    sign = draw.choice((-1, 1), book=1)
    return {"yaw": sign * draw.integer(15, 45, book=YAW_82),
            "dx": draw.number(-0.8, 0.8, book=LIGHT_82[0]),
            "dy": draw.number(-0.5, 0.5, book=LIGHT_82[1])}


def _canonical(p: dict, *, turn: int = -1, divide: bool = True) -> tuple[float, float]:
    """Rᵀ(dx, dy, 1) for a turn R by ``yaw`` about y, worked out by hand (Rᵀ turns by −yaw),
    brought back to the form (dx, dy, 1) (``turn`` and ``divide`` give the slips)."""
    t = turn * math.radians(p["yaw"])
    x, y, z = p["dx"], p["dy"], 1.0
    xc, zc = x * math.cos(t) + z * math.sin(t), -x * math.sin(t) + z * math.cos(t)
    return (xc / zc, y / zc) if divide else (xc, y)


def _judge_direction(answer: Any, want: tuple[float, float], p: dict) -> tuple[bool, str]:
    return judge_numbers(
        answer, want, ("dx", "dy"), rel=2e-3, abs_tol=1e-3,
        hints=("Φ must be given Rᵀ·l, the image's light turned back by the view",
               "after the turn, bring the direction back to the form (dx, dy, 1)"),
        mistakes=[(_canonical(p, turn=1), "that turns the light with the face (R·l); Φ "
                                          "needs Rᵀ·l, the turn undone"),
                  (_canonical(p, divide=False), "divide by the turned direction's z, so that "
                                                "it reads (dx, dy, 1) again")])


# ----------------------------------------------------------------------------- 8.3
def _uncovered_params(draw: Draw) -> dict:
    sign = draw.choice((-1, 1), book=1)
    return {"yaw": sign * draw.integer(20, 60, book=45)}


def _uncovered(p: dict, rec) -> float:
    """The share of the picture with no surface behind it on the mesh route, recomputed by
    warping the reconstruction's canonical depth."""
    from ..edit import edit_view
    from ..render import Renderer
    r = Renderer(rec.depth_canon.shape[-1])
    with torch.no_grad():
        covered = r.valid_mask(r.warp_depth(rec.depth_canon, edit_view(rec.view, p["yaw"])))
    return 1 - covered.mean().item()


def _judge_uncovered(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, "the uncovered share", rel=0, abs_tol=1e-3,
        hint="turn with edit.edit_view(rec.view, yaw), warp rec.depth_canon, and count the "
             "pixels valid_mask leaves at 0",
        mistakes=[(1 - want, "that is the covered share; the question is what is left "
                             "uncovered"),
                  (100 * want, "a share is a fraction in [0, 1], not a percentage")])


# ----------------------------------------------------------------------------- 8.4
def _closest_params(draw: Draw) -> dict:
    return {"group": draw.choice(GROUPS_84, book="yaw±30"),
            "measure": draw.choice(tuple(MEASURES_84), book="l1")}


def _closest(p: dict, results: str | Path | None = None) -> str:
    """The method of the results file nearest the truly edited face in the group's mean of
    the measure (default: the committed results)."""
    from ..results import committed
    path = committed("edit_synface64_joint.json") if results is None else Path(results)
    summary = json.loads(path.read_text())["summary"][p["group"]]
    scores = {m: row[p["measure"]] for m, row in summary.items()
              if isinstance(row, dict) and p["measure"] in row}
    best = MEASURES_84[p["measure"]]
    return best(scores, key=scores.get)


def _judge_closest(answer: Any, want: str, p: dict) -> tuple[bool, str]:
    where = f"summary[{p['group']!r}]"
    if answer == want:
        return True, f"{answer} is the closest in {where} by {p['measure'].upper()}"
    better = "lower" if p["measure"] == "l1" else "higher"
    return False, (f"{answer!r} is not the closest in {where}: another method's "
                   f"{p['measure']} is {better}; compare every row of the group (a method's "
                   "name as the file spells it)")


EXERCISES = {
    "8.1": Exercise(
        params=_scale_params,
        statement="the reconstruction's albedo brightness (a+1)/2 scaled by {scale}: give the "
                  "(ambient, diffuse) strengths that keep the image (check with rec=rec).",
        expected=_strengths, judge=_judge_scale, needs=("rec",),
        live="depends on the student's reconstruction: rec.light[0, :2] / {scale}"),
    "8.2": Exercise(
        params=_direction_params,
        statement="a view of make_view(yaw={yaw}) and a light from (dx, dy) = ({dx}, {dy}) in "
                  "the image's frame: give the canonical (dx, dy) that lights the picture "
                  "from that side.",
        expected=_canonical, judge=_judge_direction),
    "8.3": Exercise(
        params=_uncovered_params,
        statement="the reconstruction turned by {yaw:+d}° of yaw on the mesh route: give the "
                  "share of the picture left with no surface behind it (check with rec=rec).",
        expected=_uncovered, judge=_judge_uncovered, needs=("rec",),
        live="depends on the student's reconstruction: 1 − the mean of "
             "valid_mask(warp_depth(rec.depth_canon, edit_view(rec.view, {yaw})))"),
    "8.4": Exercise(
        params=_closest_params,
        statement="in the committed results (results.committed('edit_synface64_joint.json')), "
                  "group {group}: give the method closest to the truly edited face by "
                  "{measure}.",
        expected=_closest, judge=_judge_closest),
}
