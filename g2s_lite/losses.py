"""Losses of the three steps — Chapters 2, 5 and 6.

- :func:`photometric_l1`: mean absolute difference on a mask (the renderer's valid pixels).
- :class:`PerceptualLoss`: SSIM (through kornia) by default, the same on every machine;
  LPIPS-VGG as in the paper with ``kind="auto"`` wherever its weights can be had (else SSIM,
  announced when the loss is made); or the GAN discriminator's features. Chosen with
  ``kind``, explicitly: the chapters and command lines choose ``"auto"``.
- :func:`smoothness`: L1 of second differences (depth and diffuse shading in steps 1 and 3).
- :func:`discriminator_feature_loss`: L1 between the discriminator's features of two images
  (first four blocks, masked), step 2's reconstruction term.
- :func:`per_image`: each image's own loss when several images are processed side by side
  (:func:`~g2s_lite.method.reconstruct_batch`, the joint pretraining).

About LPIPS offline: the ``lpips`` package ships its small linear heads, but the VGG-16
backbone comes from torchvision's model zoo and is downloaded on first use. The book never
downloads on its own initiative off Colab: ``kind="auto"`` uses LPIPS when the backbone is
already in the torch hub cache, or when the caller says ``downloads=True`` (the chapters and
command lines pass :func:`~g2s_lite.runtime.downloads_allowed`: on Colab, or with
``G2S_ALLOW_DOWNLOADS=1``); otherwise SSIM, a loss that compares local means, contrasts and
correlations — structure, not just pixel values.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .runtime import DOWNLOADS_ENV, torch_hub_file

PERCEPTUAL_KINDS = ("auto", "lpips", "ssim", "discriminator")
_VGG16_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG-16, the LPIPS-VGG backbone


def _weights(mask: Tensor | None, like: Tensor) -> Tensor:
    """A ``B×1×H×W`` (or ``B×H×W``) mask as weights broadcast to ``like``; ones if None."""
    if mask is None:
        return torch.ones_like(like)
    if mask.dim() == 3:
        mask = mask[:, None]
    if mask.shape[-2:] != like.shape[-2:]:
        raise ValueError(f"mask size {tuple(mask.shape[-2:])} does not match the image size "
                         f"{tuple(like.shape[-2:])}")
    return mask.to(like.dtype).expand_as(like)


def _masked_mean(x: Tensor, w: Tensor) -> Tensor:
    return (x * w).sum() / w.sum().clamp(min=1e-8)


def photometric_l1(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean |pred − target| over the masked pixels and all channels.

    Args:
        pred, target: ``B×C×H×W``.
        mask: ``B×1×H×W`` or ``B×H×W`` weights in [0, 1], or None for every pixel.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    return _masked_mean((pred - target).abs(), _weights(mask, pred))


def smoothness(x: Tensor) -> Tensor:
    """Mean L1 of the second differences ∂²/∂x², ∂²/∂x∂y, ∂²/∂y∂x, ∂²/∂y² of a ``B×H×W`` or
    ``B×C×H×W`` map: zero for any plane, so it favours smooth surfaces without flattening
    them."""
    x = x.reshape(-1, *x.shape[-2:])
    dx, dy = x[:, :, 1:] - x[:, :, :-1], x[:, 1:] - x[:, :-1]
    return ((dx[:, :, 1:] - dx[:, :, :-1]).abs().mean() + (dx[:, 1:] - dx[:, :-1]).abs().mean()
            + (dy[:, :, 1:] - dy[:, :, :-1]).abs().mean() + (dy[:, 1:] - dy[:, :-1]).abs().mean())


def discriminator_feature_loss(features: Callable[[Tensor, int], list[Tensor]], pred: Tensor,
                               target: Tensor, mask: Tensor | None = None,
                               n_blocks: int = 4) -> Tensor:
    """Sum over the first ``n_blocks`` discriminator blocks of the masked L1 between the
    features of ``pred`` and of ``target`` (the target's features carry no gradient).

    Args:
        features: e.g. ``D.features`` of :mod:`g2s_lite.gan`: (images, n) → n feature maps.
        pred, target: ``B×3×H×W`` in [−1, 1].
        mask: ``B×1×H×W``; average-pooled to each feature map's resolution.
    """
    with torch.no_grad():
        real = features(target, n_blocks)
    return feature_l1(features(pred, n_blocks), real, mask)


def feature_l1(fake: list[Tensor], real: list[Tensor], mask: Tensor | None = None) -> Tensor:
    """Sum over feature maps of the masked L1 between ``fake`` and ``real`` (lists of
    ``B×C×h×w``, one per block), ``mask`` (``B×1×H×W``) average-pooled to each map's size:
    :func:`discriminator_feature_loss` once the features are computed."""
    total = fake[0].new_zeros(())
    for f, r in zip(fake, real):
        w = None
        if mask is not None:
            w = F.adaptive_avg_pool2d(mask if mask.dim() == 4 else mask[:, None], f.shape[-2:])
        total = total + _masked_mean((f - r).abs(), _weights(w, f))
    return total


def per_image(k: int, loss: Callable[..., dict[str, Tensor]], *rows) -> dict[str, Tensor]:
    """Each of ``k`` images' own ``loss``, for images processed side by side: every item of
    ``rows`` (a tensor, a list of tensors, or None) holds image 0's rows, then image 1's, …,
    and ``loss`` takes one image's rows and returns its terms; each term comes back as a
    ``K`` vector. Summed, they give every image the gradient its own run would get.

    >>> per_image(2, lambda x: {"mean": x.mean()}, torch.tensor([1., 3., 10., 20.]))
    {'mean': tensor([ 2., 15.])}
    """
    def part(t, i):
        if isinstance(t, (list, tuple)):
            return [part(x, i) for x in t]
        return None if t is None else t.chunk(k)[i]

    # one image: its rows whole (a chunk is a step more in the graph, and in its rounding)
    each = [loss(*rows)] if k == 1 else [loss(*(part(t, i) for t in rows)) for i in range(k)]
    return {name: torch.stack([terms[name] for terms in each]) for name in each[0]}


# ----------------------------------------------------------------------------- perceptual
def perceptual_choice(kind: str = "auto", downloads: bool = False) -> tuple[str, str]:
    """What ``kind="auto"`` stands for here, and why: ``("lpips" | "ssim", reason)``.

    LPIPS when the ``lpips`` package is installed and its VGG-16 backbone is in the torch hub
    cache, or may be downloaded there (``downloads``); other kinds are returned as given.
    """
    if kind != "auto":
        return kind, "asked for"
    try:
        import lpips  # noqa: F401
        have_package = True
    except ImportError:
        have_package = False
    if have_package and (torch_hub_file(_VGG16_FILE).exists() or downloads):
        return "lpips", "its package and VGG-16 backbone can be had"
    return "ssim", ("the lpips package is not installed" if not have_package else
                    f"its VGG-16 backbone ({_VGG16_FILE}) is not in the torch hub cache and "
                    f"downloads are off (the book's chapters and commands fetch it on Colab or "
                    f"with {DOWNLOADS_ENV}=1)")


def resolve_perceptual(kind: str = "auto", downloads: bool = False) -> str:
    """:func:`perceptual_choice`'s kind, announced: "lpips" or "ssim"."""
    chosen, why = perceptual_choice(kind, downloads)
    if kind != "auto":
        return chosen
    if chosen == "lpips":
        print("Perceptual loss: LPIPS (VGG), as in the paper.")
    else:
        print(f"Perceptual loss: SSIM (kornia) instead of LPIPS-VGG, because {why}. SSIM "
              "compares local means, contrasts and correlations, so it still measures "
              "structure.")
    return chosen


class PerceptualLoss(nn.Module):
    """A perceptual distance between images in [−1, 1], masked.

    Args:
        kind: "ssim" (the default: the same loss on every machine), "auto" (LPIPS where
            its weights are available, else SSIM — announced: what a notebook or a command
            line chooses), "lpips" or "discriminator". The method's functions use the default
            when given no loss; pass ``PerceptualLoss("auto")`` to them for the paper's LPIPS
            wherever it can be had.
        discriminator: for "discriminator", a module with ``features(images, n)``.
        n_blocks: discriminator blocks to compare.
        ssim_window: SSIM window size in pixels.
        downloads: for "auto", whether LPIPS's backbone may be downloaded when the torch hub
            cache lacks it (:func:`resolve_perceptual`); an entry point decides, with
            :func:`~g2s_lite.runtime.downloads_allowed`.
    """

    def __init__(self, kind: str = "ssim", discriminator: nn.Module | None = None,
                 n_blocks: int = 4, ssim_window: int = 7, downloads: bool = False) -> None:
        super().__init__()
        if kind not in PERCEPTUAL_KINDS:
            raise ValueError(f"unknown perceptual loss {kind!r}; choose one of "
                             f"{', '.join(PERCEPTUAL_KINDS)}")
        if kind == "discriminator" and discriminator is None:
            raise ValueError("kind='discriminator' needs discriminator=D (a GAN discriminator "
                             "with a features(images, n) method)")
        self.kind = resolve_perceptual(kind, downloads)
        self.n_blocks, self.ssim_window = n_blocks, ssim_window
        self.discriminator = discriminator
        if self.kind == "lpips":
            import lpips

            self.lpips = lpips.LPIPS(net="vgg", spatial=True, verbose=False).eval()
            for p in self.lpips.parameters():
                p.requires_grad_(False)

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """``B×3×H×W`` images in [−1, 1], mask ``B×1×H×W`` → scalar."""
        if self.kind == "discriminator":
            return discriminator_feature_loss(self.discriminator.features, pred, target, mask,
                                              self.n_blocks)
        if self.kind == "lpips":
            # as the paper does: compare the masked images
            w = _weights(mask, pred[:, :1])
            return self.lpips(pred * w, target * w, normalize=False).mean()
        from kornia.metrics import ssim

        similarity = ssim((pred + 1) / 2, (target + 1) / 2, self.ssim_window)
        return _masked_mean((1 - similarity) / 2, _weights(mask, similarity))
