"""Random views and lights — Chapter 4 (pseudo samples).

The paper renders the current shape under random viewpoints and lightings. Its random
light perturbs the image's own light: a diffuse change r is drawn uniformly, the diffuse
strength becomes b + r and the ambient strength a + α·r (α < 0 keeps the overall
brightness roughly constant), and the direction (dx, dy) is drawn uniformly. The ranges for
synthetic and real faces, and the random views' ranges, are the paper's numbers: they live in
:mod:`~g2s_lite.paper`.

SynFaces (the book's synthetic world) draws its lights with the same recipe around a fixed
base light, so the world's lighting matches what the method expects.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .paper import (PSEUDO_VIEWS, ROTATION_RANGE_DEG, SYNFACE_LIGHTS, XY_TRANSLATION_RANGE,
                    Z_TRANSLATION_RANGE, LightRanges, ViewDistribution, ViewRanges)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def sample_lights(n: int, base: Tensor | tuple[float, float] = (0.5, 0.5),
                  ranges: LightRanges = SYNFACE_LIGHTS,
                  generator: torch.Generator | None = None) -> Tensor:
    """Random lights with the paper's recipe, around a base (ambient, diffuse).

    Args:
        n: number of lights.
        base: the (ambient, diffuse) strengths that the random change perturbs — the image's
            own light in the method, a fixed base light in SynFaces. A tensor of shape ``2``
            or ``B×4`` (its first two columns are used) also works.
        ranges: the recipe's ranges.
        generator: for reproducible draws.

    Returns:
        ``n×4`` lights (ambient, diffuse, dx, dy).
    """
    base_t = torch.as_tensor(base, dtype=torch.float32).reshape(-1)[:2]
    r = _uniform(n, *ranges.diffuse, generator)
    ambient = base_t[0] + ranges.alpha * r
    diffuse = base_t[1] + r
    dx = _uniform(n, *ranges.dx, generator)
    dy = _uniform(n, *ranges.dy, generator)
    return torch.stack([ambient, diffuse, dx, dy], 1)


def sample_views(n: int, ranges: ViewRanges | ViewDistribution = PSEUDO_VIEWS,
                 generator: torch.Generator | None = None) -> Tensor:
    """Random views ``n×6`` (rx, ry, rz in radians, tx, ty, tz): uniform within ``ranges``,
    or drawn from a view distribution as the paper draws them (:func:`draw_views`)."""
    if isinstance(ranges, ViewDistribution):
        return draw_views(n, ranges, generator)
    rot = [_uniform(n, -math.radians(a), math.radians(a), generator)
           for a in (ranges.pitch, ranges.yaw, ranges.roll)]
    trans = [_uniform(n, -t, t, generator) for t in (ranges.tx, ranges.ty, ranges.tz)]
    return torch.stack(rot + trans, 1)


#: From V's units to the renderer's: radians for the rotations, world units for the moves.
_VIEW_UNITS = (math.radians(ROTATION_RANGE_DEG),) * 3 + (XY_TRANSLATION_RANGE,) * 2 + (
    Z_TRANSLATION_RANGE,)


def draw_views(n: int, views: ViewDistribution, generator: torch.Generator | None = None
               ) -> Tensor:
    """``n×6`` views drawn from the normal ``views`` (V's units), the yaw scaled by
    ``views.yaw_scale``, then converted to radians and world units.

    The draw is ``mean + ε·Aᵀ`` with ε standard normal and ``A·Aᵀ = cov`` from the
    covariance's eigendecomposition, which also takes the released covariances whose depth
    row is zero (a Cholesky factor would not exist).

    >>> d = ViewDistribution((0.1, 0, 0, 0, 0, 0), tuple(tuple(0.0 for _ in range(6))
    ...                      for _ in range(6)), yaw_scale=1.0)
    >>> draw_views(2, d)[:, 0]  # no spread: 0.1 × 60° in radians, every time
    tensor([0.1047, 0.1047])
    """
    mean = torch.tensor(views.mean, dtype=torch.float64)
    values, vectors = torch.linalg.eigh(torch.tensor(views.cov, dtype=torch.float64))
    root = vectors * values.clamp(min=0).sqrt()
    eps = torch.randn(n, 6, generator=generator, dtype=torch.float64)
    sample = mean + eps @ root.T
    sample[:, 1] *= views.yaw_scale
    return (sample * torch.tensor(_VIEW_UNITS, dtype=torch.float64)).float()


def render_pseudo(renderer, depth: Tensor, albedo: Tensor, views: Tensor,
                  lights: Tensor, background: float = 1.0,
                  warped_depth: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Pseudo samples: the current shape and albedo rendered under random views and lights.

    They look wrong where the shape is wrong — stretched at silhouettes, holes where the
    turned surface uncovers the background — but they carry the right cue: which way the
    object should turn and how its shading should move.

    Args:
        renderer: a :class:`~g2s_lite.render.Renderer`.
        depth: canonical depth ``1×H×W`` (or ``H×W``).
        albedo: canonical albedo ``1×3×H×W``.
        views: ``n×6``; lights: ``n×4`` (e.g. from :func:`sample_views`, :func:`sample_lights`).
        background: value of pixels no surface covers.

    Returns:
        (images ``n×3×H×W`` in [−1, 1], masks ``n×1×H×W``: 1 where the warped surface covers
        the pixel).
    """
    if views.shape[0] != lights.shape[0]:
        raise ValueError(f"give one light per view: {views.shape[0]} views, "
                         f"{lights.shape[0]} lights")
    depth = depth.reshape(1, *depth.shape[-2:])
    return renderer.render(depth, albedo, lights, views, background=background,
                           warped_depth=warped_depth)


def pseudo_poses(n: int, light: Tensor, views: ViewRanges | ViewDistribution = PSEUDO_VIEWS,
                 lights: LightRanges = SYNFACE_LIGHTS,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The views ``n×6`` and lights ``n×4`` of ``n`` pseudo samples, on the CPU: random views
    (:func:`sample_views`), then random lights around the image's own ``light`` ``1×4``
    (:func:`sample_lights`), in that order from ``generator``."""
    return (sample_views(n, views, generator),
            sample_lights(n, light.detach().cpu()[0, :2], lights, generator))


def sample_pseudo(renderer, depth: Tensor, albedo: Tensor, light: Tensor, n: int,
                  views: ViewRanges | ViewDistribution = PSEUDO_VIEWS,
                  lights: LightRanges = SYNFACE_LIGHTS,
                  generator: torch.Generator | None = None, object_mask: Tensor | None = None
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``n`` pseudo samples of the factors: random views (uniform in ``views``, or drawn from
    a view distribution), and random lights around the image's own ``light`` ``1×4``.

    With ``object_mask`` (``1×1×S×S`` on the canonical surface, see
    :meth:`~g2s_lite.render.Renderer.unwarp_image`) the masks keep only the object, as the
    paper's cars and churches do: its background then counts in no loss.

    Returns:
        (images ``n×3×S×S``, masks ``n×1×S×S``, views ``n×6``, lights ``n×4``).
    """
    v, l = (x.to(depth) for x in pseudo_poses(n, light, views, lights, generator))
    with torch.no_grad():
        depth = depth.reshape(1, *depth.shape[-2:])
        warped = renderer.warp_depth(depth, v)  # rasterized once: the object's mask rides it too
        images, masks = render_pseudo(renderer, depth, albedo, v, l, warped_depth=warped)
        if object_mask is not None:
            seen, _ = renderer.warp_image(object_mask.expand(n, -1, -1, -1), depth, v,
                                          background=0.0, warped_depth=warped, mode="nearest")
            masks = masks * seen
    return images, masks, v, l
