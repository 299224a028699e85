"""Checks of Chapter 4's exercises (pseudo samples)."""
from __future__ import annotations

from typing import Any

import torch

from ._common import close


def constant_brightness(answer: Any) -> tuple[bool, str]:
    """4.1: the α that keeps the mean shading of face 0 (seed 0) constant under a frontal light.

    The mean shading over the head changes by r (α + c̄) when the diffuse strength changes by
    r, so α = −c̄, c̄ the mean of max(0, n · l) over the canonical head mask; the expected
    value computes the cosine from the normals directly, without ``Renderer.diffuse``.
    """
    from ..synth import SynFaces
    world = SynFaces(64)
    face = world.sample(1, seed=0)
    normals = world.renderer.normals(face["depth_canon"])        # B×H×W×3 or B×3×H×W
    toward = torch.tensor([0.0, 0.0, -1.0])                      # a frontal light, +z is away
    if normals.shape[-1] == 3:
        cosine = (normals[0] * toward).sum(-1)
    else:
        cosine = (normals[0] * toward[:, None, None]).sum(0)
    mask = face["mask_canon"][0, 0] > 0.5
    expected = -cosine.clamp(min=0)[mask].mean().item()
    right, why = close(answer, expected, "α = −(mean cosine over the head)", rel=0.03)
    return right, why + ("" if right else " (the mean shading moves by r(α + c̄))")


CHECKS = {"4.1": constant_brightness}
