"""Fitting the factors to the image — step 1 (Chapter 2) and step 3 (Chapter 6).

How the steps follow one another, stage after stage, is :mod:`~g2s_lite.method`.

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

from .images import check_image
from .losses import PerceptualLoss, photometric_l1, smoothness
from .nets import AlbedoNet, LightNet, Nets, adam
from .paper import Step1Config, Step3Config
from .render import Renderer
from .runtime import seeded


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


def step1(image: Tensor, depth: Tensor, config: Step1Config = Step1Config(),
          perceptual: PerceptualLoss | None = None, renderer: Renderer | None = None,
          seed: int = 0, progress: bool = True, albedo_net: AlbedoNet | None = None,
          light_net: LightNet | None = None, view: Tensor | None = None) -> Step1Result:
    """Step 1: fit albedo and light to ``image`` with the depth held at ``depth``.

    Args:
        image: ``1×3×S×S`` (or ``3×S×S``) in [−1, 1].
        depth: ``S×S`` or ``1×S×S``: the prior, or D(image) after :func:`~g2s_lite.nets.init_depth_to_prior`.
        config: schedule and loss weights.
        perceptual: the perceptual loss (default: ``PerceptualLoss()``).
        renderer: default ``Renderer(S)``.
        seed: seeds the networks' initialisation (the global random state is left as it was).
        progress: show a progress bar.
        albedo_net, light_net: nets to go on training (later stages); fresh ones by default.
        view: the view ``1×6`` held fixed (later stages: V(I)); the identity by default.
    """
    from tqdm.auto import trange

    image = check_image(image)
    size = image.shape[-1]
    depth = depth.reshape(1, size, size).to(image).detach()
    renderer = renderer or Renderer(size)
    perceptual = perceptual or PerceptualLoss()
    with seeded(seed):
        albedo_net = albedo_net or AlbedoNet(size, config.nf).to(image.device)
        light_net = light_net or LightNet(size, config.nf).to(image.device)
    params = list(albedo_net.parameters()) + list(light_net.parameters())
    opt = adam(params, config.lr)
    view = (torch.zeros(1, 6, device=image.device) if view is None
            else view.reshape(1, 6).to(image).detach())
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


# ============================================================================ step 3
def _explain(renderer: Renderer, depth: Tensor, albedo: Tensor, view: Tensor, light: Tensor,
             target: Tensor, mask: Tensor | None, flip: bool, perceptual: PerceptualLoss,
             lam_perc: float) -> tuple[Tensor, Tensor]:
    """L1 + λ·perc of Φ(d, a, v, l) against ``target`` (``B×3×S×S``), and with ``flip`` also
    of Φ(flip d, flip a, v, l): a symmetric object must be explained by its mirror image too.
    Pixels count where every rendering is valid and ``mask`` is 1.

    Returns:
        (loss, L1 of the unflipped rendering).
    """
    recon, valid = renderer.render(depth, albedo, light, view)
    renders = [recon]
    if flip:
        mirrored, valid_m = renderer.render(depth.flip(-1), albedo.flip(-1), light, view)
        renders.append(mirrored)
        valid = valid * valid_m
    if mask is not None:
        valid = valid * mask
    loss, l1 = target.new_zeros(()), None
    for r in renders:
        term = photometric_l1(r, target, valid)
        l1 = term if l1 is None else l1
        loss = loss + term + lam_perc * perceptual(r, target, valid)
    return loss, l1


def step3(image: Tensor, projected: Tensor, masks: Tensor, nets: Nets,
          config: Step3Config = Step3Config(), perceptual: PerceptualLoss | None = None,
          renderer: Renderer | None = None, seed: int = 0, progress: bool = True
          ) -> list[dict[str, float]]:
    """Step 3: train D, A, V and L jointly on the projected samples (in place).

    Each step draws ``config.batch`` projected samples Ĩᵢ; the shape and albedo come from the
    input image, the view and light from each sample:

        Σᵢ L(Φ(D(I), A(I), V(Ĩᵢ), L(Ĩᵢ)), Ĩᵢ) + L(Φ(D(I), A(I), V(I), L(I)), I) + λ_smooth·smooth

    with L = masked L1 + λ_perc·perc (and the mirrored shape too when ``config.flip``).
    One depth must explain the face seen from many sides: that is what pins it down.

    Args:
        image: ``1×3×S×S``.
        projected: ``N×3×S×S`` projected samples; masks: ``N×1×S×S`` where they count.
        nets: trained in place.
        config: schedule and loss weights.
        perceptual: default ``PerceptualLoss()``.
        renderer: default ``Renderer(S)``.
        seed: orders the samples (the global random state is left alone).
        progress: show a progress bar.

    Returns:
        The per-step history of the loss terms.
    """
    from tqdm.auto import trange

    image = check_image(image)
    renderer = renderer or Renderer(image.shape[-1])
    perceptual = perceptual or PerceptualLoss()
    opt = step3_optimizer(nets, config)
    gen = torch.Generator().manual_seed(seed)
    order, cursor = torch.randperm(len(projected), generator=gen), 0
    history: list[dict[str, float]] = []
    for _ in trange(config.steps, desc="step 3: shape from projected samples",
                    disable=not progress):
        if cursor + config.batch > len(order):
            order, cursor = torch.randperm(len(projected), generator=gen), 0
        pick = order[cursor:cursor + config.batch].to(projected.device)
        cursor += config.batch
        terms = step3_loss(nets, image, projected[pick], masks[pick], config, perceptual,
                           renderer)
        loss = terms["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({k: v.item() for k, v in terms.items()})
    return history


def step3_optimizer(nets: Nets, config: Step3Config) -> torch.optim.Adam:
    """Adam over D, A and L at ``config.lr`` and over V at ``config.view_lr``."""
    view_lr = config.lr if config.view_lr is None else config.view_lr
    return adam([{"params": [p for net in (nets.depth, nets.albedo, nets.light)
                             for p in net.parameters()]},
                 {"params": list(nets.view.parameters()), "lr": view_lr}], config.lr)


def step3_loss(nets: Nets, images: Tensor, samples: Tensor, sample_masks: Tensor,
               config: Step3Config, perceptual: PerceptualLoss, renderer: Renderer
               ) -> dict[str, Tensor]:
    """Step 3's loss for ``images`` ``B×3×S×S`` and ``samples`` ``(B·m)×3×S×S`` (masks
    ``(B·m)×1×S×S``), the first ``m`` samples projected from the first image, and so on:
    ``loss`` and its terms ``l1_image``, ``l1_projected`` and ``smooth``."""
    if len(samples) % len(images):
        raise ValueError(f"{len(samples)} samples cannot be shared equally among {len(images)} "
                         "images: give every image the same number of projected samples")
    depth, albedo = nets.depth(images), nets.albedo(images)
    view_i, light_i = nets.view(images), nets.light(images)
    loss_i, l1_i = _explain(renderer, depth, albedo, view_i, light_i, images, None,
                            config.flip, perceptual, config.lam_perc)
    if len(images) > 1:  # each sample is explained by the shape of the image it came from
        m = len(samples) // len(images)
        shape_of_samples = depth.repeat_interleave(m, 0), albedo.repeat_interleave(m, 0)
    else:
        shape_of_samples = depth, albedo
    loss_p, l1_p = _explain(renderer, *shape_of_samples, nets.view(samples),
                            nets.light(samples), samples, sample_masks, config.flip,
                            perceptual, config.lam_perc)
    diffuse = renderer.diffuse(renderer.normals(depth), light_i)
    smooth = smoothness(depth) + smoothness(diffuse)
    return {"loss": loss_i + loss_p + config.lam_smooth * smooth, "l1_image": l1_i,
            "l1_projected": l1_p, "smooth": smooth}
