"""Fitting the factors to the image — step 1 (Chapter 2) and step 3 (Chapter 6).

How the steps follow one another, stage after stage, is :mod:`~g2s_lite.method`.

Step 1: hold the depth at the prior, the view at the identity and start from a canonical
frontal light; train the albedo net A and the light net L so that the renderer reproduces
the image:

    L₁(Φ(d, A(I), 0, L(I)), I) + λ_perc·perc(Φ(…), I) + λ_smooth·(smooth(d) + smooth(diffuse shading))

The prior is wrong in detail, so the albedo absorbs what the shape cannot explain; the
fitted albedo and light are what the pseudo samples of step 2 will be rendered from.

Each step's loss is written once, image by image (:func:`step1_loss`, :func:`step3_loss`):
a run on one image, K images side by side with their own nets
(:func:`~g2s_lite.method.reconstruct_batch`) and shared nets trained on many images
(:func:`~g2s_lite.pretrain.step3_joint`) all use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import Tensor

from .images import check_image, check_images
from .losses import PerceptualLoss, per_image, photometric_l1, smoothness
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
        image: ``1×3×S×S`` (or ``3×S×S``) in [−1, 1]; or ``K×3×S×S``, K images fitted side
            by side, each by its own copy of A and L (:class:`~g2s_lite.nets.Stacked`) and
            with its own loss (:func:`step1_loss`).
        depth: ``S×S`` or ``1×S×S`` (``K×S×S``): the prior, or D(image) after
            :func:`~g2s_lite.nets.init_depth_to_prior`.
        config: schedule and loss weights.
        perceptual: the perceptual loss (default: ``PerceptualLoss()``).
        renderer: default ``Renderer(S)``.
        seed: seeds the networks' initialisation (the global random state is left as it was).
        progress: show a progress bar.
        albedo_net, light_net: nets to go on training (later stages); fresh ones by default
            (one image only).
        view: the view ``1×6`` (``K×6``) held fixed (later stages: V(I)); the identity by
            default.
    """
    from tqdm.auto import trange

    image = check_batch(image)
    k, size = image.shape[0], image.shape[-1]
    depth = depth.reshape(-1, size, size).to(image).detach().expand(k, -1, -1)
    renderer = renderer or Renderer(size)
    perceptual = perceptual or PerceptualLoss()
    if k > 1 and (albedo_net is None or light_net is None):
        raise ValueError(f"step 1 on {k} images at once needs their own nets: pass albedo_net "
                         "and light_net (nets.Stacked, one copy per image)")
    with seeded(seed):
        albedo_net = albedo_net or AlbedoNet(size, config.nf).to(image.device)
        light_net = light_net or LightNet(size, config.nf).to(image.device)
    params = list(albedo_net.parameters()) + list(light_net.parameters())
    opt = adam(params, config.lr)
    view = (torch.zeros(k, 6, device=image.device) if view is None
            else view.reshape(-1, 6).to(image).detach())
    history: list[dict[str, float]] = []
    for _ in trange(config.steps, desc="step 1: albedo and light", disable=not progress):
        terms = step1_loss(image, depth, albedo_net(image), light_net(image), view, config,
                           perceptual, renderer)
        opt.zero_grad()
        terms["loss"].sum().backward()
        opt.step()
        history.append(summed(terms))
    with torch.no_grad():
        albedo, light = albedo_net(image), light_net(image)
        recon, valid = renderer.render(depth, albedo, light, view)
    return Step1Result(depth=depth, albedo=albedo, light=light, view=view, reconstruction=recon,
                       valid=valid, albedo_net=albedo_net, light_net=light_net, history=history)


def step1_loss(images: Tensor, depth: Tensor, albedo: Tensor, light: Tensor, view: Tensor,
               config: Step1Config, perceptual: PerceptualLoss, renderer: Renderer
               ) -> dict[str, Tensor]:
    """Step 1's loss of each of ``images`` ``K×3×S×S`` rendered from the held depth ``K×S×S``
    and view ``K×6`` with the albedo ``K×3×S×S`` and light ``K×4`` being fitted: ``loss`` and
    its terms ``l1``, ``perceptual`` and ``smooth``, each a ``K`` vector."""
    recon, valid = renderer.render(depth, albedo, light, view)

    def one(recon, image, valid, depth, light):
        l1 = photometric_l1(recon, image, valid)
        perc = perceptual(recon, image, valid)
        smooth = _smooth(renderer, depth, light)
        return {"loss": l1 + config.lam_perc * perc + config.lam_smooth * smooth, "l1": l1,
                "perceptual": perc, "smooth": smooth}

    return per_image(len(images), one, recon, images, valid, depth, light)


def _smooth(renderer: Renderer, depth: Tensor, light: Tensor) -> Tensor:
    """smooth(d) + smooth(diffuse shading of d under ``light``): steps 1 and 3."""
    diffuse = renderer.diffuse(renderer.normals(depth), light)
    return smoothness(depth) + smoothness(diffuse)


def check_batch(image: Tensor) -> Tensor:
    """One image (``3×S×S``, ``1×3×S×S``) or K side by side (``K×3×S×S``), in [−1, 1]: the
    ``K×3×S×S`` batch, or an error that says what is wrong."""
    several = isinstance(image, Tensor) and image.dim() == 4 and len(image) > 1
    return check_images(image, square=True) if several else check_image(image)


def summed(terms: dict[str, Tensor]) -> dict[str, float]:
    """A step's loss terms (``K`` vectors, one value per image) summed over the images, as
    plain numbers for a history."""
    return {name: value.sum().item() for name, value in terms.items()}


def seeds_of(seed: int | Sequence[int], k: int) -> list[int]:
    """One seed per image: ``seed`` for every one of ``k`` images, or ``k`` seeds given."""
    seeds = [seed] * k if isinstance(seed, int) else list(seed)
    if len(seeds) != k:
        raise ValueError(f"{k} images need {k} seeds, got {len(seeds)}: give one per image")
    return seeds


# ============================================================================ step 3
def _renders(renderer: Renderer, depth: Tensor, albedo: Tensor, view: Tensor, light: Tensor,
             mask: Tensor | None, flip: bool) -> tuple[list[Tensor], Tensor]:
    """Φ(d, a, v, l) ``B×3×S×S``, and with ``flip`` also Φ(flip d, flip a, v, l): a symmetric
    object must be explained by its mirror image too; and where they count, ``B×1×S×S``:
    where every rendering is valid and ``mask`` is 1."""
    recon, valid = renderer.render(depth, albedo, light, view)
    renders = [recon]
    if flip:
        mirrored, valid_m = renderer.render(depth.flip(-1), albedo.flip(-1), light, view)
        renders.append(mirrored)
        valid = valid * valid_m
    if mask is not None:
        valid = valid * mask
    return renders, valid


def _explain(renders: list[Tensor], valid: Tensor, target: Tensor, perceptual: PerceptualLoss,
             lam_perc: float) -> tuple[Tensor, Tensor]:
    """L1 + λ·perc of each rendering (:func:`_renders`) against ``target`` on ``valid``.

    Returns:
        (loss, L1 of the unflipped rendering).
    """
    loss, l1 = target.new_zeros(()), None
    for r in renders:
        term = photometric_l1(r, target, valid)
        l1 = term if l1 is None else l1
        loss = loss + term + lam_perc * perceptual(r, target, valid)
    return loss, l1


def step3(image: Tensor, projected: Tensor, masks: Tensor, nets: Nets,
          config: Step3Config = Step3Config(), perceptual: PerceptualLoss | None = None,
          renderer: Renderer | None = None, seed: int | Sequence[int] = 0,
          progress: bool = True) -> list[dict[str, float]]:
    """Step 3: train D, A, V and L jointly on the projected samples (in place).

    Each step draws ``config.batch`` projected samples Ĩᵢ; the shape and albedo come from the
    input image, the view and light from each sample:

        Σᵢ L(Φ(D(I), A(I), V(Ĩᵢ), L(Ĩᵢ)), Ĩᵢ) + L(Φ(D(I), A(I), V(I), L(I)), I) + λ_smooth·smooth

    with L = masked L1 + λ_perc·perc (and the mirrored shape too when ``config.flip``).
    One depth must explain the face seen from many sides: that is what pins it down.

    Args:
        image: ``1×3×S×S``; or ``K×3×S×S``, K images side by side, each with its own nets
            (:class:`~g2s_lite.nets.Stacked`), samples and loss.
        projected: ``N×3×S×S`` projected samples (K images: ``(K·N)×…``, image k's N
            together); masks: ``N×1×S×S`` where they count.
        nets: trained in place.
        config: schedule and loss weights.
        perceptual: default ``PerceptualLoss()``.
        renderer: default ``Renderer(S)``.
        seed: orders the samples (the global random state is left alone); K images: one
            seed each, or the same for all.
        progress: show a progress bar.

    Returns:
        The per-step history of the loss terms (summed over the images).
    """
    from tqdm.auto import trange

    image = check_batch(image)
    k, n = len(image), len(projected) // len(image)
    renderer = renderer or Renderer(image.shape[-1])
    perceptual = perceptual or PerceptualLoss()
    opt = step3_optimizer(nets, config)
    # image i's samples are rows i·n … (i+1)·n − 1, each image in its own shuffled order
    orders = [shuffled(n, config.batch, torch.Generator().manual_seed(s))
              for s in seeds_of(seed, k)]
    history: list[dict[str, float]] = []
    for _ in trange(config.steps, desc="step 3: shape from projected samples",
                    disable=not progress):
        pick = torch.cat([next(order) + i * n for i, order in enumerate(orders)])
        pick = pick.to(projected.device)
        terms = step3_loss(nets, image, projected[pick], masks[pick], config, perceptual,
                           renderer)
        opt.zero_grad()
        terms["loss"].sum().backward()
        opt.step()
        history.append(summed(terms))
    return history


def shuffled(n: int, m: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Batches of ``m`` indices from a shuffle of ``0 … n−1``, shuffled again whenever fewer
    than ``m`` are left: every sample is drawn once before any is drawn twice."""
    order, cursor = torch.randperm(n, generator=generator), 0
    while True:
        if cursor + m > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        yield order[cursor:cursor + m]
        cursor += m


def step3_optimizer(nets: Nets, config: Step3Config) -> torch.optim.Adam:
    """Adam over D, A and L at ``config.lr`` and over V at ``config.view_lr``."""
    view_lr = config.lr if config.view_lr is None else config.view_lr
    return adam([{"params": [p for net in (nets.depth, nets.albedo, nets.light)
                             for p in net.parameters()]},
                 {"params": list(nets.view.parameters()), "lr": view_lr}], config.lr)


def step3_loss(nets: Nets, images: Tensor, samples: Tensor, sample_masks: Tensor,
               config: Step3Config, perceptual: PerceptualLoss, renderer: Renderer
               ) -> dict[str, Tensor]:
    """Step 3's loss of each of ``images`` ``K×3×S×S`` with ``samples`` ``(K·m)×3×S×S``
    (masks ``(K·m)×1×S×S``), the first ``m`` samples projected from the first image, and so
    on: ``loss`` and its terms ``l1_image``, ``l1_projected`` and ``smooth``, each a ``K``
    vector. Summed, it trains K images' own nets side by side; averaged, shared nets on K
    images at once (the joint pretraining)."""
    k = len(images)
    if len(samples) % k:
        raise ValueError(f"{len(samples)} samples cannot be shared equally among {k} "
                         "images: give every image the same number of projected samples")
    depth, albedo = nets.depth(images), nets.albedo(images)
    view_i, light_i = nets.view(images), nets.light(images)
    own = _renders(renderer, depth, albedo, view_i, light_i, None, config.flip)
    shape_of_samples = depth, albedo
    if k > 1:  # each sample is explained by the shape of the image it came from
        shape_of_samples = tuple(t.repeat_interleave(len(samples) // k, 0)
                                 for t in shape_of_samples)
    theirs = _renders(renderer, *shape_of_samples, nets.view(samples), nets.light(samples),
                      sample_masks, config.flip)

    def one(image, renders_i, valid_i, sample, renders_p, valid_p, depth, light):
        loss_i, l1_i = _explain(renders_i, valid_i, image, perceptual, config.lam_perc)
        loss_p, l1_p = _explain(renders_p, valid_p, sample, perceptual, config.lam_perc)
        smooth = _smooth(renderer, depth, light)
        return {"loss": loss_i + loss_p + config.lam_smooth * smooth, "l1_image": l1_i,
                "l1_projected": l1_p, "smooth": smooth}

    return per_image(k, one, images, *own, samples, *theirs, depth, light_i)
