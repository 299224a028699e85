"""Weak shape priors — Chapter 2.

GAN2Shape starts from a shape that is wrong in detail but right in spirit: a convex bump
(an ellipsoid) where the object is, on a flat background. It is enough to get started
because what step 1 and the pseudo samples need is a rough sense of "this part is nearer,
that part is further": viewpoint and lighting cues do the rest.

The paper's ellipsoid is a spherical cap of radius ``radius`` (in depth units), cut so that
its apex is at depth ``near`` and its rim at depth ``far``, squeezed onto the object's box:

    ρ = sqrt(((u − c_u)/r_u)² + ((v − c_v)/r_v)²),     t = sqrt(radius² − (radius − (far − near))²)
    d(u, v) = near + radius − sqrt(radius² − (ρ·t)²)   for ρ ≤ 1,   far outside,

where (c_u, c_v) is the box centre and (r_u, r_v) its half width and half height in pixels.
Table 2 of the paper varies it: an asymmetric prior, shifted priors, a weak (half-height)
one, and a flat one. A later reproduction study used box priors for cars and cats.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from .paper import MAX_DEPTH, MIN_DEPTH, PRIOR_FAR, PRIOR_NEAR, PRIOR_RADIUS, Preset
from .render import Renderer
from .synth import gaussian_blur

#: Default object box for SynFaces heads, in normalised image coordinates [−1, 1]
#: (top, left, bottom, right): the average head of :mod:`g2s_lite.synth`.
SYNFACE_BOX = (-0.94, -0.74, 1.0, 0.74)

KINDS = ("ellipsoid", "asymmetric", "shifted", "weak", "flat", "box", "smoothed_box")

Box = Sequence[float]


def default_box(image_size: int) -> tuple[float, float, float, float]:
    """:data:`SYNFACE_BOX` in pixels (top, left, bottom, right) for an image of this size."""
    s = (image_size - 1) / 2.0
    top, left, bottom, right = SYNFACE_BOX
    return ((top + 1) * s, (left + 1) * s, (bottom + 1) * s, (right + 1) * s)


def box_from_mask(mask: Tensor, threshold: float = 0.5) -> tuple[float, float, float, float]:
    """Tight box (top, left, bottom, right) in pixels around a mask (``H×W``, ``1×H×W`` or
    ``1×1×H×W``)."""
    m = mask.reshape(mask.shape[-2:]) > threshold
    if not m.any():
        raise ValueError("the mask is empty: there is no object to put the prior on")
    rows = m.any(1).nonzero().flatten()
    cols = m.any(0).nonzero().flatten()
    return (float(rows[0]), float(cols[0]), float(rows[-1]), float(cols[-1]))


def _cap(rho: Tensor, near: float, far: float, radius: float) -> Tensor:
    """Spherical cap depth at normalised distance ρ from the box centre (far for ρ > 1)."""
    if not 0 < far - near < radius:
        raise ValueError(f"need 0 < far − near < radius, got near={near}, far={far}, "
                         f"radius={radius}")
    t = math.sqrt(radius**2 - (radius - (far - near)) ** 2)
    inside = rho <= 1.0
    r = (rho.clamp(max=1.0) * t)
    cap = near + radius - torch.sqrt((radius**2 - r**2).clamp(min=0.0))
    return torch.where(inside, cap, torch.full_like(rho, far))


def make_prior(kind: str, image_size: int, box: Box | None = None, *,
               near: float = PRIOR_NEAR, far: float = PRIOR_FAR, radius: float = PRIOR_RADIUS,
               shift: float | None = None, sigma: float | None = None) -> Tensor:
    """A prior depth map ``H×W`` in [0.9, 1.1] (smaller is nearer).

    Args:
        kind: one of ``"ellipsoid"``, ``"asymmetric"`` (ellipsoid on the image's left half,
            sphere on the right), ``"shifted"`` (ellipsoid moved right by ``shift``),
            ``"weak"`` (half the height), ``"flat"`` (constant ``far``), ``"box"`` (``near``
            on the box, ``far`` elsewhere), ``"smoothed_box"`` (the box blurred).
        image_size: S for an S×S map.
        box: object box (top, left, bottom, right) in pixels, e.g. :func:`box_from_mask`;
            default: :func:`default_box`, the average SynFace head.
        near, far, radius: the ellipsoid's apex depth, rim/background depth and sphere radius.
        shift: for ``"shifted"``, the shift in pixels (default W/6; the paper also uses W/4).
        sigma: for ``"smoothed_box"``, the blur in pixels (default W/16).

    >>> p = make_prior("ellipsoid", 64)
    >>> round(p.min().item(), 2), round(p.max().item(), 2)
    (0.91, 1.02)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown prior kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not isinstance(image_size, int) or image_size < 4:
        raise ValueError(f"image_size must be an int ≥ 4, got {image_size!r}")
    if not MIN_DEPTH <= near < far <= MAX_DEPTH:
        raise ValueError(f"need {MIN_DEPTH} ≤ near < far ≤ {MAX_DEPTH}, got {near}, {far}")
    top, left, bottom, right = default_box(image_size) if box is None else box
    if not (bottom > top and right > left):
        raise ValueError(f"box must be (top, left, bottom, right) with bottom > top and "
                         f"right > left, got {tuple(box)}")
    u, v = Renderer(image_size).pixel_grid()
    cu, cv = (left + right) / 2, (top + bottom) / 2
    ru, rv = max((right - left) / 2, 0.5), max((bottom - top) / 2, 0.5)
    if kind == "flat":
        return torch.full((image_size, image_size), far)
    if kind in ("box", "smoothed_box"):
        inside = (u >= left) & (u <= right) & (v >= top) & (v <= bottom)
        depth = torch.where(inside, torch.tensor(near), torch.tensor(far))
        if kind == "smoothed_box":
            blur = image_size / 16 if sigma is None else sigma
            depth = gaussian_blur(depth[None, None], blur)[0, 0]
        return depth
    if kind == "shifted":
        cu = cu + (image_size / 6 if shift is None else shift)
    rho = torch.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2)
    if kind == "asymmetric":
        # the right half is a sphere: a round footprint as wide as the box
        sphere = torch.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / ru) ** 2)
        rho = torch.where(u > cu, sphere, rho)
    depth = _cap(rho, near, far, radius)
    if kind == "weak":
        depth = far - (far - depth) / 2
    return depth


def starting_prior(preset: Preset, kind: str | None = None, **options) -> Tensor:
    """The prior depth ``S×S`` a reconstruction with ``preset`` starts from:
    ``make_prior(kind or preset.prior, S, **options) + preset.prior_shift``.

    Why the shift: views rotate about a fixed point (``Renderer.rot_center_depth``, 1.0), so
    where a shape sits relative to it decides what a turn looks like. SynFaces put the middle
    of a head's depth at about 1.0; the paper's ellipsoid (0.91 to 1.02) sits in front of
    that point, and turned, it slides across the image more than it turns. A pose regressor
    trained on SynFaces reads pseudo samples of the paper's ellipsoid as turned by about 0.1
    of their sampled yaw, and those of the ellipsoid moved back by 0.07 by about 0.9; the
    GAN's projected samples then turn too, and V finds the pose
    (:data:`~g2s_lite.paper.SYNFACE_PRIOR_SHIFT`).

    >>> from g2s_lite.paper import get_preset
    >>> p = starting_prior(get_preset("synface64"))
    >>> round(p.min().item(), 2), round(p.max().item(), 2)
    (0.98, 1.09)
    """
    options.setdefault("far", preset.prior_far)
    return make_prior(kind or preset.prior, preset.image_size, **options) + preset.prior_shift
