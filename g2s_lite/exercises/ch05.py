"""Checks of Chapter 5's exercises (projection and step 2)."""
from __future__ import annotations

import math
from typing import Any

from ._common import close


def typical_distance(answer: Any) -> tuple[bool, str]:
    """5.5: the typical Mahalanobis distance of a random w from the W cloud.

    For a Gaussian in d dimensions the squared Mahalanobis distance is a sum of d squared
    standard normals, so its mean is d and a typical distance is about √d; d is the bundled
    generator's ``style_dim``. A measured answer (the mean distance of sampled w) is accepted
    within 10 %, which also covers E[√χ²_d] ≈ √(d − 1/2).
    """
    from ..hub import load
    G, _ = load("synface64")
    expected = math.sqrt(G.style_dim)
    right, why = close(answer, expected, f"√d for d = {G.style_dim} (the style dimension)",
                       rel=0.10)
    return right, why + ("" if right else
                         ": the mean squared distance of a d-dimensional Gaussian is d")


CHECKS = {"5.5": typical_distance}
