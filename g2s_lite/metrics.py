"""Depth and normal errors against ground truth — Chapter 7 (and every chapter that measures).

The paper's protocol (the book's appendix *Design and conventions*): compare the
reconstructed depth *in the image's own view* with the ground truth on the foreground (the ground-truth mask eroded by one pixel, times the
valid mask of the reconstruction).

- SIDE, the scale-invariant depth error: sqrt(mean((Δ − mean Δ)²)) with Δ = log d_pred − log d_gt.
  A global scale of the prediction does not change it. Papers report it ×10⁻²; these
  functions return the plain value.
- MAD, the mean angle in degrees between predicted and true normals.

:func:`relief` splits SIDE into a wrong shape and a right shape drawn too deep or too flat.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _as_weights(mask: Tensor, like: Tensor) -> Tensor:
    """Accept a ``B×H×W`` or ``B×1×H×W`` mask; return ``B×H×W`` float weights."""
    if mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.shape != like.shape:
        raise ValueError(f"mask must have shape {tuple(like.shape)} (or B×1×H×W), "
                         f"got {tuple(mask.shape)}")
    weights = mask.to(like.dtype)
    empty = weights.flatten(1).sum(1) == 0
    if empty.any():
        raise ValueError(f"mask is empty for image(s) {empty.nonzero().flatten().tolist()}: "
                         "there is no pixel to compare on")
    return weights


def _masked_mean(x: Tensor, w: Tensor) -> Tensor:
    return (x * w).flatten(1).sum(1) / w.flatten(1).sum(1)


def side(pred_depth: Tensor, gt_depth: Tensor, mask: Tensor) -> Tensor:
    """Scale-invariant depth error per image (not multiplied by 100).

    Args:
        pred_depth, gt_depth: ``B×H×W``, positive.
        mask: ``B×H×W`` (or ``B×1×H×W``) pixels to compare on.

    Returns:
        ``B``.

    >>> d = torch.full((1, 4, 4), 1.0)
    >>> side(2 * d, d, torch.ones(1, 4, 4)).item()  # a global scale costs nothing
    0.0
    """
    w = _depth_weights(pred_depth, gt_depth, mask)
    return _masked_mean(_log_residual(pred_depth, gt_depth, w) ** 2, w).sqrt()


def _depth_weights(pred_depth: Tensor, gt_depth: Tensor, mask: Tensor) -> Tensor:
    """Check two depth maps for a log-depth comparison; return the mask as weights."""
    if pred_depth.shape != gt_depth.shape:
        raise ValueError(f"pred_depth {tuple(pred_depth.shape)} and gt_depth "
                         f"{tuple(gt_depth.shape)} must have the same shape B×H×W")
    w = _as_weights(mask, gt_depth)
    if (pred_depth[w > 0] <= 0).any() or (gt_depth[w > 0] <= 0).any():
        raise ValueError("depths must be positive on the mask (the comparison is of "
                         "logarithms)")
    return w


def _log_residual(pred_depth: Tensor, gt_depth: Tensor, w: Tensor) -> Tensor:
    """Δ − mean Δ per pixel (``B×H×W``), Δ = log pred − log gt, the mean taken over ``w``."""
    delta = torch.log(pred_depth.clamp(min=1e-8)) - torch.log(gt_depth.clamp(min=1e-8))
    return delta - _masked_mean(delta, w)[:, None, None]


def relief(pred_depth: Tensor, gt_depth: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """How the predicted relief compares with the true one, in log depth on the mask: the
    two parts SIDE mixes. With p and g the log depths minus their means over the mask,

    - ``amplitude``: std(p) / std(g), above 1 for a relief too deep, below 1 for too flat;
    - ``correlation``: of p and g, 1 for the right shape at any depth;
    - ``scale``: the k that makes k·p closest to g (``correlation / amplitude``);
    - ``side_scaled``: SIDE of k·p against g, what is left once the depth of the relief is
      fixed (plain, not ×100);
    - ``along``: the depth of the part of p that has the true shape, the β of p = β·g + ε
      with ε uncorrelated with g (``amplitude · correlation``): unlike the amplitude it does
      not grow when a wrong shape is added, so it compares the depth of reliefs that differ
      in shape.

    The parts add up exactly: SIDE² = side_scaled² + var(g)·(amplitude − correlation)², the
    second term being what a relief too deep or too flat costs (Chapter 7).

    Args:
        pred_depth, gt_depth: ``B×H×W``, positive on the mask.
        mask: ``B×H×W`` (or ``B×1×H×W``).

    Returns:
        dict of the five, each ``B``.

    >>> g = 1 + 0.05 * torch.linspace(-1, 1, 16).reshape(1, 4, 4) ** 2
    >>> r = relief(g ** 1.5, g, torch.ones(1, 4, 4))  # the same shape, 1.5 times as deep
    >>> round(r["amplitude"].item(), 4), round(r["correlation"].item(), 4)
    (1.5, 1.0)
    >>> bumpy = g * (1 + 0.05 * torch.tensor([1., -1]).repeat(8).reshape(1, 4, 4))
    >>> r = relief(bumpy, g, torch.ones(1, 4, 4))  # the true shape plus a checkerboard
    >>> r["amplitude"].item() > 1.5, round(r["along"].item(), 2)
    (True, 1.0)
    """
    w = _depth_weights(pred_depth, gt_depth, mask)

    def centred(d: Tensor) -> Tensor:
        log = torch.log(d.clamp(min=1e-8))
        return log - _masked_mean(log, w)[:, None, None]

    p, g = centred(pred_depth), centred(gt_depth)
    var_p, var_g, cov = _masked_mean(p * p, w), _masked_mean(g * g, w), _masked_mean(p * g, w)
    scale = cov / var_p.clamp(min=1e-20)
    return {"amplitude": (var_p / var_g.clamp(min=1e-20)).sqrt(),
            "correlation": cov / (var_p * var_g).sqrt().clamp(min=1e-20),
            "scale": scale,
            "side_scaled": _masked_mean((scale[:, None, None] * p - g) ** 2, w).sqrt(),
            "along": cov / var_g.clamp(min=1e-20)}


def _angles(pred_normal: Tensor, gt_normal: Tensor) -> Tensor:
    """Angle in degrees between two normal maps ``B×H×W×3``, per pixel (``B×H×W``)."""
    cos = (F.normalize(pred_normal, dim=-1) * F.normalize(gt_normal, dim=-1)).sum(-1)
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def mad(pred_normal: Tensor, gt_normal: Tensor, mask: Tensor) -> Tensor:
    """Mean angular deviation in degrees per image.

    Args:
        pred_normal, gt_normal: ``B×H×W×3`` (need not be unit length).
        mask: ``B×H×W`` (or ``B×1×H×W``).

    Returns:
        ``B``.
    """
    if pred_normal.shape != gt_normal.shape or pred_normal.shape[-1] != 3:
        raise ValueError("normals must both have shape B×H×W×3, got "
                         f"{tuple(pred_normal.shape)} and {tuple(gt_normal.shape)}")
    return _masked_mean(_angles(pred_normal, gt_normal), _as_weights(mask, gt_normal[..., 0]))


def chamfer(points_a: Tensor, points_b: Tensor) -> Tensor:
    """Symmetric Chamfer distance: mean distance from each point of A to its nearest point
    in B, plus the same from B to A (plain Euclidean distances, world units).

    Args:
        points_a: ``B×N×3``; points_b: ``B×M×3``.

    Returns:
        ``B``.
    """
    if points_a.dim() != 3 or points_b.dim() != 3 or points_a.shape[-1] != 3 \
            or points_b.shape[-1] != 3 or points_a.shape[0] != points_b.shape[0]:
        raise ValueError("point sets must have shapes B×N×3 and B×M×3, got "
                         f"{tuple(points_a.shape)} and {tuple(points_b.shape)}")
    dist = torch.cdist(points_a, points_b)
    return dist.amin(2).mean(1) + dist.amin(1).mean(1)


def erode(mask: Tensor, pixels: int = 1) -> Tensor:
    """Erode a binary mask (``B×H×W`` or ``B×1×H×W``) by ``pixels`` in each direction:
    a pixel survives if its whole (2·pixels+1)² neighbourhood is inside. Pixels at the
    image border count as having outside neighbours."""
    squeeze = mask.dim() == 3
    m = mask[:, None] if squeeze else mask
    k = 2 * pixels + 1
    inside = -F.max_pool2d(-F.pad(m.float(), (pixels,) * 4, value=0.0), k, stride=1)
    inside = (inside > 0.5).to(mask.dtype if mask.is_floating_point() else torch.float32)
    return inside[:, 0] if squeeze else inside


def protocol_mask(pred_depth: Tensor, gt_mask: Tensor, renderer,
                  pred_valid: Tensor | None = None) -> Tensor:
    """The pixels the protocol compares on, ``B×H×W``: the ground-truth mask and
    the prediction's valid mask (default: where its depth is valid), each eroded by one pixel."""
    if pred_valid is None:
        pred_valid = renderer.valid_mask(pred_depth)
    gt = gt_mask[:, 0] if gt_mask.dim() == 4 else gt_mask
    pv = pred_valid[:, 0] if pred_valid.dim() == 4 else pred_valid
    return erode(gt.float()) * erode(pv.float())


def depth_errors(pred_depth: Tensor, gt_depth: Tensor, gt_mask: Tensor, renderer,
                 pred_valid: Tensor | None = None) -> dict[str, Tensor]:
    """SIDE and MAD with the paper's protocol: on the ground-truth mask eroded by one pixel,
    times the reconstruction's valid mask (also eroded), normals from each depth map.

    Args:
        pred_depth, gt_depth: ``B×H×W`` in the image's view.
        gt_mask: ``B×1×H×W`` or ``B×H×W`` foreground.
        renderer: a :class:`~g2s_lite.render.Renderer` of the same size (for the normals).
        pred_valid: where the prediction is defined (default: where its depth is valid).

    Returns:
        dict with ``side`` and ``mad`` of shape ``B`` and the ``mask`` ``B×H×W`` used.
    """
    mask = protocol_mask(pred_depth, gt_mask, renderer, pred_valid)
    return {"side": side(pred_depth, gt_depth, mask),
            "mad": mad(renderer.normals(pred_depth), renderer.normals(gt_depth), mask),
            "mask": mask}


def depth_error_maps(pred_depth: Tensor, gt_depth: Tensor, gt_mask: Tensor, renderer,
                     pred_valid: Tensor | None = None) -> dict[str, Tensor]:
    """Where the errors of :func:`depth_errors` come from: its two numbers as per-pixel maps.

    Same arguments and the same protocol mask as :func:`depth_errors`. With
    Δ = log d_pred − log d_gt and its mean over the mask,

    - ``side``: |Δ − mean Δ| per pixel (plain, not ×100); SIDE is the root mean square of
      this map over the mask;
    - ``angle``: the angle in degrees between the predicted and the true normal; MAD is the
      mean of this map over the mask.

    Returns:
        dict with ``side`` and ``angle`` ``B×H×W``, NaN outside the mask (so that
        ``nanmean`` and plots skip those pixels), and the ``mask`` ``B×H×W`` used.

    >>> from g2s_lite.render import Renderer
    >>> d = torch.full((1, 8, 8), 1.0)
    >>> m = depth_error_maps(1.05 * d, d, torch.ones(1, 8, 8), Renderer(8))
    >>> round(m["side"].nanmean().item(), 6), m["angle"].nanmean().item()  # a scaled plane
    (0.0, 0.0)
    """
    mask = protocol_mask(pred_depth, gt_mask, renderer, pred_valid)
    residual = _log_residual(pred_depth, gt_depth, mask).abs()
    angle = _angles(renderer.normals(pred_depth), renderer.normals(gt_depth))
    on = mask > 0
    return {"side": residual.where(on, torch.nan), "angle": angle.where(on, torch.nan),
            "mask": mask}
