"""The whole method on one page — GAN2Shape on one image (Chapters 6 and 7).

Every piece was built in an earlier chapter; this module only puts them in order, as the
data flow of the preface:

1. **prior** — D starts at a convex shape (Chapter 2, :func:`~g2s_lite.prior.starting_prior`);
2. **step 1** — fit the albedo and the light with the depth held (Chapter 2,
   :func:`~g2s_lite.refine.step1`);
3. **pseudo samples and step 2** — render the current shape under random views and lights
   and project them onto the GAN (Chapters 4 and 5, :func:`~g2s_lite.invert.step2`);
4. **step 3** — train D, A, V and L on the projected samples (Chapter 6,
   :func:`~g2s_lite.refine.step3`);
5. **the next stage** starts from the nets step 3 left.

One stage is :func:`run_stage`; :func:`reconstruct` runs the preset's stages on one image,
:func:`reconstruct_batch` on several side by side (every step's loss is a sum of the images'
own), and the pretraining of Chapter 7 (:mod:`~g2s_lite.pretrain`) runs the same stage on
many with shared nets.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .gan import Discriminator, Generator
from .images import check_images, check_mask, load_image
from .invert import (FramedGAN, LatentOffsetEncoder, Step2Result, fresh_encoder, project,
                     step2)
from .losses import PerceptualLoss
from .nets import NET_NAMES, Nets, Stacked
from .paper import Preset, get_preset
from .prior import box_from_mask, starting_prior
from .refine import Step1Result, step1, step3
from .render import Renderer
from .runtime import timed


# ----------------------------------------------------------------------------- the factors
@dataclass
class Factors:
    """What the four nets say about one image.

    ``depth`` ``1×S×S`` is the shape *in the image's own view* (what the paper evaluates),
    with ``valid`` ``1×1×S×S`` where the surface covers the image and ``normal``
    ``1×S×S×3`` its normals; ``depth_canon``, ``albedo`` ``1×3×S×S`` and ``shading``
    ``1×1×S×S`` live in the canonical frame, ``view`` ``1×6`` maps it to the image, and
    ``light`` is ``1×4``. ``reconstruction`` is Φ of all four.
    """

    depth: Tensor
    valid: Tensor
    normal: Tensor
    depth_canon: Tensor
    albedo: Tensor
    shading: Tensor
    view: Tensor
    light: Tensor
    reconstruction: Tensor


@torch.no_grad()
def factors(nets: Nets, image: Tensor, renderer: Renderer) -> Factors:
    """D, A, V and L applied to ``image`` ``1×3×S×S``, and what the renderer makes of them."""
    depth_canon, albedo = nets.depth(image), nets.albedo(image)
    view, light = nets.view(image), nets.light(image)
    recon, valid = renderer.render(depth_canon, albedo, light, view)
    depth = renderer.warp_depth(depth_canon, view)
    return Factors(depth=depth, valid=valid, normal=renderer.normals(depth),
                   depth_canon=depth_canon, albedo=albedo,
                   shading=renderer.shading(renderer.normals(depth_canon), light),
                   view=view, light=light, reconstruction=recon)


# ----------------------------------------------------------------------------- one stage
@dataclass
class Stage:
    """What one stage did: step 1's and step 2's results, step 3's per-step losses, and the
    factors at the end of the stage."""

    step1: Step1Result
    step2: Step2Result
    step3: list[dict[str, float]]
    factors: Factors


def run_stage(image: Tensor, w: Tensor, G: Generator | FramedGAN, D: Discriminator | None,
              nets: Nets, preset: Preset, stage: int,
              encoder: LatentOffsetEncoder | None = None,
              perceptual: PerceptualLoss | None = None, renderer: Renderer | None = None,
              seed: int | list[int] = 0, progress: bool = True, step3_too: bool = True,
              timings: dict[str, float] | None = None, mask: Tensor | None = None) -> Stage:
    """One stage of the method on ``image`` ``1×3×S×S`` with latent ``w``; ``nets`` (and
    ``encoder``, when given) are trained in place.

    Args:
        image: ``1×3×S×S``; or ``K×3×S×S``, K images side by side (:func:`reconstruct_batch`)
            with K latents, nets stacked (:class:`~g2s_lite.nets.Stacked`), K seeds and K
            masks: each step sums the images' own losses.
        G: the generator, framed as the preset's images (:class:`~g2s_lite.invert.FramedGAN`);
            a plain generator is framed by ``preset.gan_crop``.
        stage: which stage (from 0): picks the preset's schedules and symmetry.
        encoder: a latent-offset encoder to go on training (pretraining, pretrained starts);
            None: step 2 makes a fresh one. The trained one is ``result.step2.encoder``.
        step3_too: False stops after step 2 (pretraining's joint step 3 trains on many
            images at once); ``result.step3`` is then empty.
        timings: seconds per step are added to it.
        mask: the object in the image (``1×1×S×S``); with a preset that uses masks (cars,
            churches) step 2's pseudo samples count only on it, carried onto the canonical
            surface by step 1's depth and view.
    """
    c1, c2, c3 = preset.for_stage(stage)
    gan = G if isinstance(G, FramedGAN) else FramedGAN(G, preset.gan_crop)
    renderer = renderer or Renderer(preset.image_size)
    perceptual = perceptual or PerceptualLoss()
    timings = {} if timings is None else timings
    with torch.no_grad():
        depth, view = nets.depth(image), nets.view(image)
    with timed(timings, "step1"):
        s1 = step1(image, depth, c1, perceptual, renderer, progress=progress,
                   albedo_net=nets.albedo, light_net=nets.light, view=view)
    with timed(timings, "step2"):
        canonical = None
        if mask is not None and preset.use_mask:
            canonical = renderer.unwarp_image(mask.to(image), s1.depth, s1.view) > 0.5
            canonical = canonical.to(image.dtype)
        s2 = step2(image, w, gan, D, s1.depth, s1.albedo, s1.light, c2, renderer, seed,
                   progress, encoder=encoder, object_mask=canonical)
    h3: list[dict[str, float]] = []
    if step3_too:
        with timed(timings, "step3"):
            h3 = step3(image, s2.projected, s2.masks, nets, c3, perceptual, renderer, seed,
                       progress)
    return Stage(s1, s2, h3, factors(nets, image, renderer))


# ----------------------------------------------------------------------------- the method
#: How many of a stage's pseudo and projected samples a reconstruction keeps to show (all of
#: them would hold 1600 images per stage).
KEEP_SAMPLES = 16


def _keep_first(stage: Stage, n: int) -> Stage:
    samples = ("projected", "pseudo", "masks", "views", "lights", "offsets")
    return replace(stage, step2=replace(stage.step2, **{k: getattr(stage.step2, k)[:n]
                                                        for k in samples}))


@dataclass
class Reconstruction(Factors):
    """The factors of one image (see :class:`Factors`), and how they were found: the image
    and its latent ``w``, the trained ``nets`` and the latent-offset ``encoder`` of the last
    step 2 (what a GAN-route edit needs), one :class:`Stage` per stage and the seconds spent
    in each part; ``crop`` is the box ``[x0, y0, x1, y1]`` of the photo the image was cut
    from, when it was (:func:`g2s_lite.photos.prepare`), so results can be pasted back;
    ``gan_crop`` the centre fraction of G's images that the image shows (the preset's)."""

    image: Tensor
    w: Tensor
    nets: Nets
    encoder: LatentOffsetEncoder
    stages: list[Stage]
    timings: dict[str, float]
    crop: list[int] | None = None
    gan_crop: float = 1.0


def reconstruct(image, G: Generator, D: Discriminator | None = None, w: Tensor | None = None,
                preset: str | Preset = "synface64", nets: Nets | None = None,
                encoder: LatentOffsetEncoder | None = None, prior: Tensor | None = None,
                perceptual: PerceptualLoss | None = None, seed: int = 0,
                progress: bool = True, crop: list[int] | None = None,
                mask: Tensor | None = None) -> Reconstruction:
    """GAN2Shape on one image: prior → (step 1 → step 2 → step 3) × stages.

    Args:
        image: a ``3×S×S``/``1×3×S×S`` tensor in [−1, 1], a PIL image or a path (converted
            by :func:`~g2s_lite.images.load_image`'s rules to the preset's size).
        G, D: the GAN (frozen), G framed by the preset's ``gan_crop``
            (:class:`~g2s_lite.invert.FramedGAN`); D gives step 2 its feature loss.
        w: the image's latent; projected with :func:`~g2s_lite.invert.project` (the preset's
            ``project`` schedule) if None.
        preset: a name in :data:`~g2s_lite.paper.PRESETS` or a :class:`~g2s_lite.paper.Preset`
            (for quick mode: ``get_preset(name, quick=True)``).
        nets: the nets to start from (e.g. pretrained ones,
            :meth:`~g2s_lite.pretrain.Pretrained.starting_nets`); None: fresh nets with D at
            the prior. A copy is trained; the given nets are left as they were.
        encoder: a latent-offset encoder to start every stage's step 2 from (a copy is
            trained and carried through the stages); None: a fresh one each stage.
        prior: a ``S×S`` starting depth instead of :func:`~g2s_lite.prior.starting_prior`
            (for ablations: build it with ``starting_prior(preset, kind)`` to seat it the
            same way). Only with fresh nets.
        perceptual: default ``PerceptualLoss()`` (SSIM); ``PerceptualLoss("auto")`` for
            LPIPS wherever its weights can be had.
        seed: seeds every network and random draw (stage k uses ``seed + k``).
        progress: show progress bars.
        crop: where in a photo the image was cut from (kept in the result, see
            :func:`g2s_lite.photos.prepare`).
        mask: the object in the image, ``1×1×S×S`` in [0, 1] (a user's mask file, or a
            parsing net's, :mod:`g2s_lite.parsing`): fresh nets start at the prior placed on
            it, and with a preset that uses masks (cars, churches) pseudo samples count only
            on the object, as the paper's do.
    """
    preset = get_preset(preset)
    image = load_image(image, preset.image_size).to(G.device)  # refuse bad input before work
    if nets is not None and prior is not None:
        raise ValueError("give either nets or a prior: a prior only seats fresh nets' D (for "
                         "pretrained nets with D at a prior, make them with "
                         "Pretrained.starting_nets(preset, prior=...))")
    gan = FramedGAN(G, preset.gan_crop)
    renderer = Renderer(preset.image_size)
    perceptual = perceptual or PerceptualLoss()
    timings: dict[str, float] = {}
    if w is None:
        with timed(timings, "project"):
            w, _ = project(image, gan, D, preset.project, progress=progress, seed=seed)
    w = w.to(G.device)
    if mask is not None:
        mask = check_mask(mask, preset.image_size).to(G.device)
    if nets is None:
        nets = fresh_nets(preset, seed, G.device, mask, prior)
    else:  # a copy, on the GAN's device (pretrained nets are often loaded on the CPU)
        nets = copy.deepcopy(nets).to(G.device)
    encoder = None if encoder is None else copy.deepcopy(encoder).to(G.device)
    stages = []
    for stage in range(preset.stages):
        result = run_stage(image, w, gan, D, nets, preset, stage, encoder, perceptual,
                           renderer, seed + stage, progress, timings=timings, mask=mask)
        if encoder is not None:  # a given encoder is carried on; fresh ones are not
            encoder = result.step2.encoder
        stages.append(_keep_first(result, KEEP_SAMPLES))
    timings["total"] = sum(timings.values())
    return Reconstruction(**vars(stages[-1].factors), image=image, w=w, nets=nets,
                          encoder=stages[-1].step2.encoder, stages=stages, timings=timings,
                          crop=None if crop is None else [int(v) for v in crop],
                          gan_crop=preset.gan_crop)


def fresh_nets(preset: Preset, seed: int, device, mask: Tensor | None = None,
                prior: Tensor | None = None) -> Nets:
    """Fresh nets for ``preset``, seeded, with D at ``prior`` (default: the preset's prior,
    placed on ``mask``'s box when a mask is given)."""
    if prior is None:
        prior = starting_prior(preset, box=None if mask is None else box_from_mask(mask))
    return Nets.create(preset.image_size, preset.nf, seed, device, prior=prior)


# ----------------------------------------------------------------------------- several images
# One image keeps a GPU mostly idle: its nets are small and its batches of 16 samples short.
# reconstruct_batch runs K images' reconstructions side by side in one process: the stages
# are run_stage's on all K images at once, so the renderer, G and D see all K images'
# samples in one call, each image keeps its own nets (Stacked) and its own random streams,
# and every step's loss is the sum of the images' own losses (the steps' per-image losses),
# so each image gets the updates a reconstruction of it alone would get.
def reconstruct_batch(images: Tensor, G: Generator, D: Discriminator | None, ws: Tensor,
                      preset: str | Preset = "synface64", seeds: list[int] | None = None,
                      perceptual: PerceptualLoss | None = None, vectorize: bool | None = None,
                      masks: Tensor | None = None) -> list[Factors]:
    """GAN2Shape on ``K`` images at once: what :func:`reconstruct` gives each of them
    (fresh nets, D at the preset's prior; ``w`` given), side by side in one process.

    Args:
        images: ``K×3×S×S`` in [−1, 1]; ws: their latents ``K×style_dim`` (or W+).
        seeds: image k's ``seed`` as :func:`reconstruct` takes it (default 0, 1, …).
        vectorize: run the K copies of each net as one vectorised call (default: on a GPU;
            see :class:`~g2s_lite.nets.Stacked`).
        masks: the objects, ``K×1×S×S`` in [0, 1], each as :func:`reconstruct`'s ``mask``:
            the prior placed on its box and, with a preset that uses masks, step 2's pseudo
            samples kept to the object.

    Every image gets the numbers of its own :func:`reconstruct` up to rounding: G, D and
    the mapping network see the K images' samples in one batch, whose kernels add in
    another order, and the difference grows a little over the steps (three SynFaces on a
    tiny schedule: depths within 7e-5, views within 2e-8 rad; vectorised, 7e-4 and 2e-6).

    Returns:
        One :class:`Factors` per image (``1×…`` tensors, as a single reconstruction's).
    """
    preset = get_preset(preset)
    k, size = len(images), preset.image_size
    seeds = list(range(k)) if seeds is None else list(seeds)
    if len(seeds) != k or len(ws) != k:
        raise ValueError(f"{k} images need {k} latents and {k} seeds, got {len(ws)} and "
                         f"{len(seeds)}: give one of each per image")
    images = check_images(images, square=True).to(G.device)
    ws = ws.to(G.device)
    if masks is not None:
        if len(masks) != k:
            raise ValueError(f"{k} images need {k} masks (K×1×S×S), got {len(masks)}")
        masks = torch.cat([check_mask(m, size) for m in masks]).to(G.device)
    vectorize = G.device.type == "cuda" if vectorize is None else vectorize
    gan, renderer = FramedGAN(G, preset.gan_crop), Renderer(size)
    perceptual = perceptual or PerceptualLoss()
    each = [fresh_nets(preset, s, G.device, None if masks is None else masks[i:i + 1])
            for i, s in enumerate(seeds)]
    nets = Nets(*(Stacked([getattr(n, name) for n in each], vectorize)
                  for name in NET_NAMES))
    for stage in range(preset.stages):
        at = [s + stage for s in seeds]
        encoder = fresh_encoder(G, preset.for_stage(stage)[1], size, G.device, at, vectorize)
        run_stage(images, ws, gan, D, nets, preset, stage, encoder, perceptual, renderer, at,
                  progress=False, mask=masks)
    out = factors(nets, images, renderer)
    return [Factors(**{name: t[i:i + 1] for name, t in vars(out).items()}) for i in range(k)]
