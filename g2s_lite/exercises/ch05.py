"""Chapter 5's checked exercise (projection and step 2): how far a typical latent lies."""
from __future__ import annotations

import math
from typing import Any

from ._common import Draw, Exercise, judge_number

def _distance_params(draw: Draw) -> dict:
    """The dimension of the Gaussian: the bundled GAN's style dimension for the book (the one
    it was trained with; the tests compare it with ``G.style_dim``)."""
    from ..train_gan import TrainConfig
    return {"d": draw.integer(16, 1024, book=TrainConfig.style_dim)}


def _distance(p: dict) -> float:
    """√d: the squared Mahalanobis distance of a d-dimensional Gaussian is a sum of d squared
    standard normals, with mean d. A measured mean distance is accepted within 5 %, which
    covers E[√χ²_d] ≈ √(d − 1/2) for d ≥ 16."""
    return math.sqrt(p["d"])


def _judge_distance(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, f"the typical distance in {p['d']} dimensions", rel=0.05,
        hint="whitened, w becomes d independent standard normals; the squared distance is "
             "their sum of squares",
        mistakes=[(want ** 2, "that is the mean of the squared distance; the distance is "
                              "about its square root")])


EXERCISES = {
    "5.5": Exercise(
        params=_distance_params,
        statement="a w drawn from a Gaussian in d = {d} dimensions: give its typical "
                  "Mahalanobis distance from the Gaussian's mean.",
        expected=_distance, judge=_judge_distance),
}
