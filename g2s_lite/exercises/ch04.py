"""Chapter 4's checked exercise (pseudo samples): the α that keeps the brightness constant."""
from __future__ import annotations

from typing import Any

import torch

from ._common import Draw, Exercise, judge_number


def _alpha_params(draw: Draw) -> dict:
    """A face of SynFaces(64) seed 0 (the chapter's, face 0, for the book) and a light
    direction (frontal for the book)."""
    return {"face": draw.integer(1, 199, book=0),
            "dx": draw.number(-0.8, 0.8, book=0.0), "dy": draw.number(-0.3, 0.6, book=0.0)}


def _mean_cosine(p: dict, clamp: bool = True, on_head: bool = True,
                 unit: bool = True) -> float:
    """The mean of max(0, ⟨n, −l̂⟩) over the canonical head, l = (dx, dy, 1) travelling into
    the scene; the cosine is taken from the normals directly, without ``Renderer.diffuse``
    (the flags give the slips the hints recognise)."""
    from ..synth import SynFaces
    world = SynFaces(64)
    face = world.sample(1, seed=0, start=p["face"])
    normals = world.renderer.normals(face["depth_canon"])[0].double()        # H×W×3
    light = torch.tensor([p["dx"], p["dy"], 1.0], dtype=torch.float64)
    cosine = -(normals * (light / light.norm() if unit else light)).sum(-1)
    cosine = cosine.clamp(min=0) if clamp else cosine
    mask = face["mask_canon"][0, 0] > 0.5 if on_head else torch.ones_like(cosine, dtype=bool)
    return cosine[mask].mean().item()


def _alpha(p: dict) -> float:
    """α = −c̄: the mean shading moves by r (α + c̄) when the diffuse strength moves by r."""
    return -_mean_cosine(p)


def _judge_alpha(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, "α", rel=0.03,
        hint="the mean shading moves by r (α + c̄), c̄ the mean of max(0, ⟨n, −l⟩) over the "
             "head (mask_canon) of the canonical depth",
        mistakes=[(-want, "α cancels the mean cosine: α = −c̄"),
                  (-_mean_cosine(p, clamp=False), "clamp the cosine at 0 (max(0, ⟨n, −l⟩)): "
                                                  "a side turned away gets no light, not less"),
                  (-_mean_cosine(p, on_head=False), "average over the head (mask_canon), not "
                                                    "the whole image"),
                  (-_mean_cosine(p, unit=False), "normalise the light's direction (dx, dy, 1) "
                                                 "before the dot product")])


EXERCISES = {
    "4.1": Exercise(
        params=_alpha_params,
        statement="face {face} of SynFaces(64) seed 0 (world.sample(1, seed=0, start={face})) "
                  "under the light direction (dx, dy) = ({dx}, {dy}): give the α that keeps "
                  "its mean shading over the head constant.",
        expected=_alpha, judge=_judge_alpha),
}
