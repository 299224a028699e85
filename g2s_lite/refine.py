"""Fitting the factors to the image — step 1 (Chapter 2); steps 3 and the stages join it in
Chapter 6.

Step 1: hold the depth at the prior, the view at the identity and start from a canonical
frontal light; train the albedo net A and the light net L so that the renderer reproduces
the image:

    L₁(Φ(d, A(I), 0, L(I)), I) + λ_perc·perc(Φ(…), I) + λ_smooth·(smooth(d) + smooth(diffuse shading))

The prior is wrong in detail, so the albedo absorbs what the shape cannot explain; the
fitted albedo and light are what the pseudo samples of step 2 will be rendered from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .losses import PerceptualLoss, photometric_l1, smoothness
from .nets import AlbedoNet, LightNet
from .render import Renderer

#: Loss weights and the optimiser of the paper (DESIGN §5), shared by steps 1 and 3.
LR, LAM_PERC, LAM_SMOOTH = 1e-4, 0.5, 0.01


@dataclass(frozen=True)
class Step1Config:
    """Schedule of step 1 (DESIGN §5: 500 steps at 1e-4 on synthetic faces)."""

    steps: int = 500
    lr: float = LR
    lam_perc: float = LAM_PERC
    lam_smooth: float = LAM_SMOOTH
    nf: int | None = None  #: network width (None: the paper's)


@dataclass
class Step1Result:
    """What step 1 found: the factors (``depth`` ``1×S×S``, ``albedo`` ``1×3×S×S``,
    ``light`` ``1×4``, ``view`` ``1×6``), the reconstruction and its valid mask, the trained
    nets and a per-step ``history`` of the loss terms."""

    depth: Tensor
    albedo: Tensor
    light: Tensor
    view: Tensor
    reconstruction: Tensor
    valid: Tensor
    albedo_net: AlbedoNet
    light_net: LightNet
    history: list[dict[str, float]] = field(default_factory=list)


def check_image(image: Tensor, size: int | None = None) -> Tensor:
    """Accept ``3×S×S`` or ``1×3×S×S`` in [−1, 1]; return ``1×3×S×S`` or explain the problem."""
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be 3×H×W or 1×3×H×W, got {tuple(image.shape)}")
    if image.shape[1] != 3:
        raise ValueError(f"image must have 3 colour channels, got {image.shape[1]} "
                         "(convert grey or RGBA images to RGB first)")
    if size is not None and image.shape[-2:] != (size, size):
        raise ValueError(f"image must be {size}×{size}, got {image.shape[-2]}×{image.shape[-1]}; "
                         "resize it first")
    if image.min() < -1.0 - 1e-3 or image.max() > 1.0 + 1e-3:
        raise ValueError(f"image values must lie in [−1, 1], got [{image.min().item():.3f}, "
                         f"{image.max().item():.3f}]; map [0, 1] images with x·2 − 1")
    return image


def step1(image: Tensor, depth: Tensor, config: Step1Config = Step1Config(),
          perceptual: PerceptualLoss | None = None, renderer: Renderer | None = None,
          seed: int = 0, progress: bool = True) -> Step1Result:
    """Step 1: fit albedo and light to ``image`` with the depth held at ``depth``.

    Args:
        image: ``1×3×S×S`` (or ``3×S×S``) in [−1, 1].
        depth: ``S×S`` or ``1×S×S``: the prior, or D(image) after :func:`~g2s_lite.nets.init_depth_to_prior`.
        config: schedule and loss weights.
        perceptual: the perceptual loss (default: ``PerceptualLoss("auto")``).
        renderer: default ``Renderer(S)``.
        seed: seeds the networks' initialisation (the global random state is left as it was).
        progress: show a progress bar.
    """
    from tqdm.auto import trange

    image = check_image(image)
    size = image.shape[-1]
    depth = depth.reshape(1, size, size).to(image).detach()
    renderer = renderer or Renderer(size)
    perceptual = perceptual or PerceptualLoss("auto")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        albedo_net = AlbedoNet(size, config.nf).to(image.device)
        light_net = LightNet(size, config.nf).to(image.device)
    params = list(albedo_net.parameters()) + list(light_net.parameters())
    opt = torch.optim.Adam(params, lr=config.lr, betas=(0.9, 0.999), weight_decay=5e-4)
    view = torch.zeros(1, 6, device=image.device)
    normals = renderer.normals(depth)
    smooth_depth = smoothness(depth)
    history: list[dict[str, float]] = []
    for _ in trange(config.steps, desc="step 1: albedo and light", disable=not progress):
        albedo, light = albedo_net(image), light_net(image)
        recon, valid = renderer.render(depth, albedo, light, view)
        l1 = photometric_l1(recon, image, valid)
        perc = perceptual(recon, image, valid)
        smooth = smooth_depth + smoothness(renderer.diffuse(normals, light))
        loss = l1 + config.lam_perc * perc + config.lam_smooth * smooth
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({"loss": loss.item(), "l1": l1.item(), "perceptual": perc.item(),
                        "smooth": smooth.item()})
    with torch.no_grad():
        albedo, light = albedo_net(image), light_net(image)
        recon, valid = renderer.render(depth, albedo, light, view)
    return Step1Result(depth=depth, albedo=albedo, light=light, view=view, reconstruction=recon,
                       valid=valid, albedo_net=albedo_net, light_net=light_net, history=history)
