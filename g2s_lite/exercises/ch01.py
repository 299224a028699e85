"""Checks of Chapter 1's exercises (the renderer)."""
from __future__ import annotations

import math
from typing import Any

from ._common import pair


def parallax(answer: Any) -> tuple[bool, str]:
    """1.3: how many pixels points on the axis at depths 0.9 and 1.1 move under a 10° yaw.

    The expected shifts come from the geometry alone (a rotation about depth 1, then a
    pinhole with the book's field of view), not from the renderer the student checks with:
    a point at depth z sits at z − 1 from the centre and lands at f·sin θ (z − 1) /
    (1 + cos θ (z − 1)) pixels from the image centre.
    """
    from ..paper import FOV
    theta = math.radians(10)
    focal = (64 - 1) / (2 * math.tan(math.radians(FOV) / 2))   # the pinhole of 64 pixels
    shifts = tuple(focal * math.sin(theta) * (z - 1) / (1 + math.cos(theta) * (z - 1))
                   for z in (0.9, 1.1))
    right, why = pair(answer, shifts, ("the shift at depth 0.9 (px, signed)",
                                       "the shift at depth 1.1 (px, signed)"), rel=0.03)
    return right, why + ("" if right else " — near points move against the turn, far ones with it")


CHECKS = {"1.3": parallax}
