"""Checks of Chapter 6's exercises (refining the shape)."""
from __future__ import annotations

from typing import Any

import torch

from ._common import close


def asymmetry(answer: Any, depth: torch.Tensor | None = None) -> tuple[bool, str]:
    """6.1: the asymmetry of a canonical depth, the mean of |d − mirror(d)| over the image.

    Pass the depth you measured as ``depth=`` (``H×W`` or ``1×H×W``); without it the check
    uses the true canonical depth of face 3 of ``gan_quality.TEST_SEED``, the chapter's face.
    The mirror is taken by indexing the columns backwards (not ``torch.flip``).
    """
    if depth is None:
        from ..gan_quality import TEST_SEED
        from ..synth import SynFaces
        depth = SynFaces(64).sample(1, seed=TEST_SEED, start=3)["depth_canon"]
    d = torch.as_tensor(depth, dtype=torch.float64).reshape(-1, depth.shape[-1])
    mirrored = d[:, torch.arange(d.shape[-1] - 1, -1, -1)]
    expected = (d - mirrored).abs().mean().item()
    return close(answer, expected, "the mean of |d − mirror(d)|", rel=0.01, abs_tol=1e-7)


CHECKS = {"6.1": asymmetry}
