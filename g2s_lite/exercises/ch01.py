"""Chapter 1's checked exercise (the renderer): the parallax of two points under a yaw."""
from __future__ import annotations

import math

from ._common import Draw, Exercise, judge_numbers

#: The image the two points are seen in (pixels).
SIZE_13 = 64


def _parallax_params(draw: Draw) -> dict:
    """A turn of 5° to 20° either way, a point nearer and a point farther than the centre."""
    sign = draw.choice((-1, 1), book=1)
    return {"yaw": sign * draw.integer(5, 20, book=10),
            "near": draw.number(0.85, 0.97, book=0.9),
            "far": draw.number(1.03, 1.15, book=1.1)}


def _shifts(p: dict, *, perspective: bool = True) -> tuple[float, float]:
    """The signed shifts (px) of the points on the axis at depths ``near`` and ``far``.

    From the geometry alone (a rotation about depth 1, then a pinhole with the book's field
    of view), not from the renderer the student checks with: a point at depth z sits at
    z − 1 from the centre and lands at f·sin θ (z − 1) / (1 + cos θ (z − 1)) pixels from the
    image centre (without the division, the orthographic slip).
    """
    from ..paper import FOV
    theta = math.radians(p["yaw"])
    focal = (SIZE_13 - 1) / (2 * math.tan(math.radians(FOV) / 2))
    return tuple(focal * math.sin(theta) * (z - 1)
                 / ((1 + math.cos(theta) * (z - 1)) if perspective else 1)
                 for z in (p["near"], p["far"]))


def _judge_parallax(answer, want, p) -> tuple[bool, str]:
    flat = _shifts(p, perspective=False)
    return judge_numbers(
        answer, want, (f"the shift at depth {p['near']}", f"the shift at depth {p['far']}"),
        rel=0.03,
        hints=("near points move against the turn, far ones with it; divide by the point's "
               "new depth",) * 2,
        mistakes=[((want[1], want[0]), "the two shifts are swapped: give the nearer point's "
                                       "first"),
                  (flat, "both miss by the perspective division: the turned point's depth "
                         "is 1 + cos θ (z − 1), not 1")])


EXERCISES = {
    "1.3": Exercise(
        params=_parallax_params,
        statement="two points on the optical axis of a 64-px camera, at depths {near} and "
                  "{far}; the view yaws by {yaw:+d}°: give their signed horizontal shifts in "
                  "pixels (nearer point first).",
        expected=_shifts, judge=_judge_parallax),
}
