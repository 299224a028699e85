"""Chapter 6's checked exercise (refining the shape): how symmetric a canonical depth is."""
from __future__ import annotations

from typing import Any

import torch

from ._common import Draw, Exercise, judge_number


def _asymmetry_params(draw: Draw) -> dict:
    """A face of the GAN's test seed (the chapter's, face 3, for the book)."""
    from ..gan_quality import TEST_SEED
    return {"face": draw.integer(4, 199, book=3), "face_seed": TEST_SEED}


def _true_depth(p: dict) -> torch.Tensor:
    from ..synth import SynFaces
    return SynFaces(64).sample(1, seed=p["face_seed"], start=p["face"])["depth_canon"]


def _asymmetry(p: dict, depth: torch.Tensor | None = None, *, rows: bool = False,
               signed: bool = False) -> float:
    """The mean of |d − mirror(d)| over the image of ``depth`` (``H×W`` or ``1×H×W``; default:
    the student's true canonical face). The mirror is taken by indexing the columns backwards
    (not ``torch.flip``); the flags give the slips the hints recognise."""
    d = _true_depth(p) if depth is None else depth
    d = torch.as_tensor(d, dtype=torch.float64).reshape(-1, d.shape[-1])
    mirrored = (d[torch.arange(d.shape[0] - 1, -1, -1)] if rows
                else d[:, torch.arange(d.shape[-1] - 1, -1, -1)])
    return ((d - mirrored).mean() if signed else (d - mirrored).abs().mean()).item()


def _judge_asymmetry(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    d = _true_depth(p) if p.get("depth") is None else p["depth"]
    return judge_number(
        answer, want, "the mean of |d − mirror(d)|", rel=0.01, abs_tol=1e-7,
        hint="mirror the columns (the last axis) of the canonical depth and average the "
             "absolute difference over every pixel",
        mistakes=[(_asymmetry(p, d, rows=True), "that mirrors the rows (top to bottom); the "
                                                "mirror is left to right, the last axis"),
                  (_asymmetry(p, d, signed=True), "take the absolute difference before the "
                                                  "mean")])


EXERCISES = {
    "6.1": Exercise(
        params=_asymmetry_params,
        statement="the true canonical depth of face {face} of SynFaces(64) seed {face_seed} "
                  "(world.sample(1, seed={face_seed}, start={face})): give the mean of "
                  "|d − mirror(d)| over the image (pass depth=d to check another depth).",
        expected=_asymmetry, judge=_judge_asymmetry),
}
