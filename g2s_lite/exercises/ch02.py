"""Chapter 2's checked exercise (the prior): the weak prior by hand."""
from __future__ import annotations

from typing import Any

import torch

from ._common import Draw, Exercise, judge_numbers


def _weak_params(draw: Draw) -> dict:
    """The ellipsoid's apex and rim depths, and the face whose mask box carries it."""
    from ..paper import PRIOR_FAR, PRIOR_NEAR
    return {"near": draw.number(0.9, 0.95, book=PRIOR_NEAR, digits=3),
            "far": draw.number(0.99, 1.06, book=PRIOR_FAR, digits=3),
            "face": draw.integer(1, 199, book=0)}


def _apex_rim(p: dict) -> tuple[float, float]:
    """The weak prior's apex and rim from the definition alone: half the ellipsoid's height
    below the rim, so the rim stays at d_far and the apex moves to (d_near + d_far) / 2."""
    return ((p["near"] + p["far"]) / 2, p["far"])


def _weak_map(p: dict) -> torch.Tensor:
    """``make_prior("weak", ...)`` on the box of the student's face (``64×64``)."""
    from ..prior import box_from_mask, make_prior
    from ..synth import SynFaces
    face = SynFaces(64).sample(1, seed=0, start=p["face"])
    return make_prior("weak", 64, box_from_mask(face["mask"][0]), near=p["near"], far=p["far"])


def _judge_weak(answer: Any, want: tuple[float, float], p: dict) -> tuple[bool, str]:
    """The two depths, or a whole map compared with the package's weak prior on that box."""
    if isinstance(answer, torch.Tensor) and answer.ndim >= 2:
        weak = _weak_map(p)
        if answer.numel() != weak.numel():
            return False, (f"the map has {answer.numel()} values; the prior of a 64-px image "
                           "is 64×64")
        gap = answer.reshape(weak.shape).double() - weak.double()
        if gap.abs().max() <= 1e-5:
            return True, "your map matches make_prior('weak') on that box"
        return False, ("your map is " + ("deeper" if gap.mean() > 0 else "shallower") +
                       " than the weak prior on that box: keep the rim at d_far and move every "
                       "depth halfway towards it, on the box of the right face")
    halving_depth = ((p["near"] / 2, p["far"]))
    return judge_numbers(
        answer, want, ("the apex depth", "the rim depth"), rel=1e-3,
        hints=("the weak prior halves the relief below the rim, d_far − (d_far − d)/2",
               "the rim stays where the ellipsoid's is"),
        mistakes=[((p["near"], p["far"]), "the apex is the ellipsoid's: the weak prior halves "
                                         "the relief below the rim, d_far − (d_far − d)/2"),
                  (halving_depth, "the apex halves the depth itself: halve the relief below "
                                  "the rim instead")])


EXERCISES = {
    "2.2": Exercise(
        params=_weak_params,
        statement="the weak prior with near = {near} and far = {far}, on the mask box of "
                  "face {face} of SynFaces(64) seed 0: give its apex and rim depths.",
        expected=_apex_rim, judge=_judge_weak),
}
