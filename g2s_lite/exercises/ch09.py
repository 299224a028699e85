"""Checks of Chapter 9's exercises (real photographs). Each recomputes what is expected its
own way: from the distribution's numbers by hand, or by cutting an index grid."""
from __future__ import annotations

import math

import torch

#: Exercise 9.6: a view distribution in V's units (rotations in units of 60°): its yaw
#: variance, and the released configurations' widening of the yaw.
YAW_VARIANCE_96, YAW_SCALE_96 = 0.04, 1.2
#: Exercise 9.7: the GAN's image side and the released crop (pixels of 256).
GAN_SIZE_97, CROP_97 = 256, 170


def yaw_spread(answer) -> tuple[bool, str]:
    """9.6: the standard deviation, in degrees, of the yaw that pseudo samples are drawn
    with from a distribution of yaw variance :data:`YAW_VARIANCE_96` (V's units)."""
    try:
        degrees = float(answer)
    except (TypeError, ValueError):
        return False, "answer with one number: the yaw's standard deviation in degrees"
    want = math.sqrt(YAW_VARIANCE_96) * YAW_SCALE_96 * 60.0
    ok = abs(degrees - want) < 0.05
    why = (f"√{YAW_VARIANCE_96} = {math.sqrt(YAW_VARIANCE_96):.2f} of the ±60° unit, ×"
           f"{YAW_SCALE_96} widened: {want:.2f}°")
    return ok, why + ("" if ok else f", not {degrees:.2f}°")


def framed_box(answer) -> tuple[bool, str]:
    """9.7: the pixel box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of a 256-px GAN image that
    a preset with the released crop 170 compares, found by cutting an index grid."""
    from ..images import centre_fraction

    try:
        x0, y0, x1, y1 = (int(v) for v in answer)
    except (TypeError, ValueError):
        return False, "answer with four whole numbers: (x0, y0, x1, y1), x1 and y1 exclusive"
    index = torch.arange(GAN_SIZE_97, dtype=torch.float32)
    cols = centre_fraction(index.expand(1, 1, GAN_SIZE_97, GAN_SIZE_97), CROP_97 / GAN_SIZE_97)
    first, last = int(cols[0, 0, 0, 0]), int(cols[0, 0, 0, -1])
    want = (first, first, last + 1, last + 1)
    ok = (x0, y0, x1, y1) == want
    why = (f"a margin of ({GAN_SIZE_97} − {CROP_97}) // 2 = {first} on each side: "
           f"{want}")
    return ok, why + ("" if ok else f", not {(x0, y0, x1, y1)}")


CHECKS = {"9.6": yaw_spread, "9.7": framed_box}
