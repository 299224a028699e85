"""Checks of Chapter 7's exercises (the benchmark), recomputed from the committed results."""
from __future__ import annotations

import json
import math
from typing import Any

import torch

from ._common import close, pair


def _joint() -> dict:
    from ..results import committed
    return json.loads(committed("synface64_joint.json").read_text())


def _per_face(images: dict, method: str, key: str = "side") -> list[float]:
    return [images[i][method][key] for i in sorted(images, key=int) if method in images[i]]


def ratio(answer: Any) -> tuple[bool, str]:
    """7.1: g2s_pretrained's SIDE ÷ null_depth's, from the per-face numbers of the joint file."""
    images = _joint()["images"]
    pretrained, null = _per_face(images, "g2s_pretrained"), _per_face(images, "null_depth")
    expected = (sum(pretrained) / len(pretrained)) / (sum(null) / len(null))
    return close(answer, expected, "the mean SIDE of g2s_pretrained over that of null_depth",
                 rel=0.005)


def null_side(answer: Any) -> tuple[bool, str]:
    """7.2: the null depth's SIDE (×10⁻²) on face 0 of seed 0, through the metrics' own code
    (the student computes the standard deviation of the log true depth by hand)."""
    from .. import metrics
    from ..synth import SynFaces
    world = SynFaces(64)
    face = world.sample(1, seed=0)
    # a constant in the renderer's valid range (SIDE cannot see which one)
    errors = metrics.depth_errors(torch.ones(1, 64, 64), face["depth"], face["mask"],
                                  world.renderer)
    right, why = close(answer, 100 * errors["side"].item(), "the null SIDE ×10⁻²", rel=0.01)
    return right, why + ("" if right else " — measured on M, the eroded masks' product; "
                         "a standard deviation over the population (divide by n)")


def yaw_correlation(answer: Any) -> tuple[bool, str]:
    """7.3: the correlation of g2s_pretrained's per-face SIDE with |true yaw| over the file."""
    from ..benchmark import BENCHMARK_SEED
    from ..synth import SynFaces
    run = _joint()
    images = run["images"]
    faces = SynFaces(64).sample(run["meta"]["n_images"], seed=run["meta"]["seed"])
    if run["meta"]["seed"] != BENCHMARK_SEED:
        raise RuntimeError("the committed file is not on the held-out faces: report this")
    ids = [i for i in sorted(images, key=int) if "g2s_pretrained" in images[i]]
    x = torch.tensor([abs(faces["view"][int(i), 1].item()) for i in ids], dtype=torch.float64)
    y = torch.tensor([images[i]["g2s_pretrained"]["side"] for i in ids], dtype=torch.float64)
    x, y = x - x.mean(), y - y.mean()
    expected = ((x * y).sum() / (x.norm() * y.norm())).item()
    return close(answer, expected, "the correlation of SIDE with |yaw|", rel=0.02,
                 abs_tol=0.01)


def paired_gap(answer: Any) -> tuple[bool, str]:
    """7.4: the mean of g2s_pretrained_nosym − g2s_pretrained in SIDE, face by face, and the
    standard error of that mean (sample standard deviation ÷ √n)."""
    images = _joint()["images"]
    both = [i for i in images if "g2s_pretrained" in images[i]
            and "g2s_pretrained_nosym" in images[i]]
    diff = [images[i]["g2s_pretrained_nosym"]["side"] - images[i]["g2s_pretrained"]["side"]
            for i in both]
    n = len(diff)
    mean = sum(diff) / n
    se = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - 1) / n)
    right, why = pair(answer, (mean, se), ("the mean difference", "its standard error"),
                      rel=0.01)
    return right, why + ("" if right else " (the standard error uses n − 1 in the variance, "
                         "then divides by √n)")


CHECKS = {"7.1": ratio, "7.2": null_side, "7.3": yaw_correlation, "7.4": paired_gap}
