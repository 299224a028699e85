"""Chapter 9's checked exercises (real photographs). Each recomputes what is expected its
own way: from the distribution's numbers by hand, or by cutting an index grid."""
from __future__ import annotations

import math
from typing import Any

import torch

from ._common import Draw, Exercise, judge_number, judge_numbers


# ----------------------------------------------------------------------------- 9.6
def _spread_params(draw: Draw) -> dict:
    """A yaw variance in V's units (rotations in units of the ±60° range) and a widening
    (the released configurations': 0.04 and 1.2, for the book)."""
    from ..paper import VIEW_SCALE
    return {"variance": draw.number(0.01, 0.09, book=0.04, digits=3),
            "scale": draw.number(1.0, 1.5, book=VIEW_SCALE)}


def _spread(p: dict, *, root: bool = True, widen: bool = True) -> float:
    """The yaw's standard deviation in degrees: √variance of the unit, widened, × 60°."""
    from ..paper import ROTATION_RANGE_DEG
    spread = math.sqrt(p["variance"]) if root else p["variance"]
    return spread * (p["scale"] if widen else 1) * ROTATION_RANGE_DEG


def _judge_spread(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, "the yaw's standard deviation (degrees)", rel=0, abs_tol=0.05,
        hint="V's unit is the ±60° range; a variance is a squared spread",
        mistakes=[(_spread(p, root=False), "a variance is a squared spread: take its square "
                                           "root first"),
                  (_spread(p, widen=False), "the released configurations widen the drawn yaw "
                                            "by the scale"),
                  (2 * want, "V's unit is 60°, half the range from −60° to +60°")])


# ----------------------------------------------------------------------------- 9.7
def _box_params(draw: Draw) -> dict:
    """A GAN's image side and the crop a preset keeps of it (the cat preset's, for the book)."""
    from ..paper import CROP_OF, PRESETS
    size = draw.choice((128, 256, 512), book=CROP_OF)
    return {"size": size,
            "crop": draw.integer(size // 2, size * 9 // 10,
                                 book=PRESETS["cat128"].crop)}


def _box(p: dict) -> tuple[int, int, int, int]:
    """The box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) found by cutting an index grid the
    way the method frames a GAN's image."""
    from ..images import centre_fraction
    size = p["size"]
    index = torch.arange(size, dtype=torch.float32)
    cols = centre_fraction(index.expand(1, 1, size, size), p["crop"] / size)
    first, last = int(cols[0, 0, 0, 0]), int(cols[0, 0, 0, -1])
    return (first, first, last + 1, last + 1)


def _judge_box(answer: Any, want: tuple[int, ...], p: dict) -> tuple[bool, str]:
    x0, y0, x1, y1 = want
    return judge_numbers(
        answer, want, ("x0", "y0", "x1", "y1"), rel=0, abs_tol=0.5,
        hints=("the crop is centred: the margin is what is left of the side, halved "
               "(rounded down)",) * 2 + ("x1 and y1 are exclusive: the first pixel after the "
                                         "box",) * 2,
        mistakes=[((x0, y0, x1 - 1, y1 - 1), "x1 and y1 are exclusive: one past the last "
                                             "pixel kept"),
                  ((0, 0, p["crop"], p["crop"]), "the kept square is the centre of the image, "
                                                 "not its corner"),
                  ((p["size"] - p["crop"],) * 2 + (p["size"],) * 2,
                   "the margin is on each side: half of what the crop leaves")])


EXERCISES = {
    "9.6": Exercise(
        params=_spread_params,
        statement="a view distribution of yaw variance {variance} in V's units, widened by "
                  "{scale}: give the standard deviation of the drawn yaw in degrees.",
        expected=_spread, judge=_judge_spread),
    "9.7": Exercise(
        params=_box_params,
        statement="a preset that keeps the centre {crop} of a GAN's {size}-px image "
                  "(gan_crop = {crop}/{size}): give the pixel box (x0, y0, x1, y1) it compares, "
                  "x1 and y1 exclusive.",
        expected=_box, judge=_judge_box),
}
