"""Checks of Chapter 2's exercises (the prior)."""
from __future__ import annotations

from typing import Any

import torch

from ._common import pair


def weak_prior(answer: Any) -> tuple[bool, str]:
    """2.2: the weak prior's apex and rim depths (or the whole map) on face 0 of seed 0's box.

    The expected apex and rim follow from the definition alone: half the ellipsoid's height
    below the rim, so the rim stays at d_far and the apex moves to (d_near + d_far) / 2;
    a whole map is compared with ``make_prior("weak", ...)`` on that box.
    """
    from ..paper import PRIOR_FAR, PRIOR_NEAR
    expected = ((PRIOR_NEAR + PRIOR_FAR) / 2, PRIOR_FAR)
    if isinstance(answer, torch.Tensor) and answer.ndim >= 2:
        from ..prior import box_from_mask, make_prior
        from ..synth import SynFaces
        face = SynFaces(64).sample(1, seed=0)
        weak = make_prior("weak", 64, box_from_mask(face["mask"][0]))
        answer = answer.reshape(weak.shape) if answer.numel() == weak.numel() else answer
        if answer.shape != weak.shape:
            return False, f"the map is {tuple(weak.shape)}, got {tuple(answer.shape)}"
        right = torch.allclose(answer.float(), weak, atol=1e-5)
        return right, ("the map matches make_prior('weak') on face 0's box" if right else
                       f"the map differs from make_prior('weak') by up to "
                       f"{(answer.float() - weak).abs().max():.4f}: the rim stays at d_far and "
                       "every depth moves halfway towards it")
    return pair(answer, expected, ("the apex depth", "the rim depth"), rel=1e-3)


CHECKS = {"2.2": weak_prior}
