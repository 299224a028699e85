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
and the pretraining of Chapter 7 (:mod:`~g2s_lite.pretrain`) runs the same stage on many.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .gan import Discriminator, Generator
from .images import check_mask, load_image
from .invert import LatentOffsetEncoder, Step2Result, project, step2
from .losses import PerceptualLoss
from .nets import NET_NAMES, Nets, Stacked, adam
from .paper import Preset, get_preset
from .prior import box_from_mask, starting_prior
from .refine import Step1Result, step1, step3
from .render import Renderer
from .runtime import seeded, timed


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


def run_stage(image: Tensor, w: Tensor, G: Generator, D: Discriminator | None, nets: Nets,
              preset: Preset, stage: int, encoder: LatentOffsetEncoder | None = None,
              perceptual: PerceptualLoss | None = None, renderer: Renderer | None = None,
              seed: int = 0, progress: bool = True, step3_too: bool = True,
              timings: dict[str, float] | None = None, mask: Tensor | None = None) -> Stage:
    """One stage of the method on ``image`` ``1×3×S×S`` with latent ``w``; ``nets`` (and
    ``encoder``, when given) are trained in place.

    Args:
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
    renderer = renderer or Renderer(preset.image_size)
    perceptual = perceptual or PerceptualLoss()
    timings = {} if timings is None else timings
    with torch.no_grad():
        depth, view = nets.depth(image), nets.view(image)
    with timed(timings, "step1"):
        s1 = step1(image, depth, c1, perceptual, renderer, seed, progress,
                   albedo_net=nets.albedo, light_net=nets.light, view=view)
    with timed(timings, "step2"):
        canonical = None
        if mask is not None and preset.use_mask:
            canonical = renderer.unwarp_image(mask.to(image), s1.depth, s1.view) > 0.5
            canonical = canonical.to(image.dtype)
        s2 = step2(image, w, G, D, s1.depth, s1.albedo, s1.light, c2, renderer, seed,
                   progress, encoder=encoder, object_mask=canonical, gan_crop=preset.gan_crop)
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
        G, D: the GAN (frozen); D gives step 2 its feature loss.
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
    renderer = Renderer(preset.image_size)
    perceptual = perceptual or PerceptualLoss()
    timings: dict[str, float] = {}
    if w is None:
        with timed(timings, "project"):
            w, _ = project(image, G, D, preset.project, progress=progress, seed=seed,
                           gan_crop=preset.gan_crop)
    w = w.to(G.device)
    if mask is not None:
        mask = check_mask(mask, preset.image_size).to(G.device)
        if prior is None and nets is None:
            prior = starting_prior(preset, box=box_from_mask(mask))
    if nets is None:
        nets = Nets.create(preset.image_size, preset.nf, seed, G.device,
                           prior=starting_prior(preset) if prior is None else prior)
    else:  # a copy, on the GAN's device (pretrained nets are often loaded on the CPU)
        nets = copy.deepcopy(nets).to(G.device)
    encoder = None if encoder is None else copy.deepcopy(encoder).to(G.device)
    stages = []
    for stage in range(preset.stages):
        result = run_stage(image, w, G, D, nets, preset, stage, encoder, perceptual,
                           renderer, seed + stage, progress, timings=timings, mask=mask)
        if encoder is not None:  # a given encoder is carried on; fresh ones are not
            encoder = result.step2.encoder
        stages.append(_keep_first(result, KEEP_SAMPLES))
    timings["total"] = sum(timings.values())
    return Reconstruction(**vars(stages[-1].factors), image=image, w=w, nets=nets,
                          encoder=stages[-1].step2.encoder, stages=stages, timings=timings,
                          crop=None if crop is None else [int(v) for v in crop],
                          gan_crop=preset.gan_crop)


# ----------------------------------------------------------------------------- several images
# One image keeps a GPU mostly idle: its nets are small and its batches of 16 samples short.
# reconstruct_batch runs K images' reconstructions side by side in one process: the renderer,
# G and D see all K images' samples in one call, each image keeps its own nets (Stacked) and
# its own random streams, and every step's loss is the sum of the images' own losses, so
# each image gets the updates a reconstruction of it alone would get.
def _each(k: int, fn, *tensors: Tensor) -> Tensor:
    """``Σ_i fn(image i's rows of each tensor)`` over the ``k`` images."""
    return sum(fn(*(t.chunk(k)[i] for t in tensors)) for i in range(k))


def _step1_batch(images, depth, view, nets: Nets, c1, perceptual, renderer) -> None:
    """Step 1 (:func:`~g2s_lite.refine.step1`) on K images at once, training the stacked A
    and L in place."""
    from .losses import photometric_l1, smoothness

    k = len(images)
    opt = adam([*nets.albedo.parameters(), *nets.light.parameters()], c1.lr)
    normals = renderer.normals(depth)
    for _ in range(c1.steps):
        albedo, light = nets.albedo(images), nets.light(images)
        recon, valid = renderer.render(depth, albedo, light, view)

        def loss(recon, image, valid, depth, normals, light):
            smooth = smoothness(depth) + smoothness(renderer.diffuse(normals, light))
            return (photometric_l1(recon, image, valid)
                    + c1.lam_perc * perceptual(recon, image, valid) + c1.lam_smooth * smooth)

        total = _each(k, loss, recon, images, valid, depth, normals, light)
        opt.zero_grad()
        total.backward()
        opt.step()


def _step2_batch(images, ws, G, D, depth, albedo, light, c2, renderer, seeds, vectorize,
                 gan_crop):
    """Step 2 (:func:`~g2s_lite.invert.step2`) on K images at once, each with a fresh
    encoder seeded as its own run's; returns each image's (projected, masks)."""
    from .gan import frozen
    from .images import to_size
    from .invert import add_offset, generate, make_encoder
    from .losses import feature_l1, photometric_l1
    from .pseudo import sample_pseudo

    k, size, device = len(images), images.shape[-1], images.device
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    encoders = []
    for s in seeds:
        with seeded(s):
            encoders.append(make_encoder(G, c2, size, device))
    E = Stacked([e.encoder for e in encoders], vectorize)
    center, start, relative = encoders[0].center_h, encoders[0].start, encoders[0].relative
    opt = adam(E.parameters(), c2.lr)
    rows = ws.repeat_interleave(c2.batch, 0)

    def sample():
        drawn = [sample_pseudo(renderer, depth[i:i + 1], albedo[i:i + 1], light[i:i + 1],
                               c2.batch, c2.views, c2.lights, gens[i]) for i in range(k)]
        pseudo, masks = (torch.cat(parts) for parts in list(zip(*drawn))[:2])
        e = E(pseudo)
        if relative:
            e = e - E(gan_images).repeat_interleave(c2.batch, 0)
        offset = G.mapping(center + e, start) - G.mapping(center, start)
        return pseudo, masks, generate(G, add_offset(rows, offset), size, gan_crop), offset

    with frozen(G, D):
        gan_images = generate(G, ws, size, gan_crop).detach()
        for _ in range(c2.steps):
            pseudo, masks, projected, offset = sample()
            small = [to_size(t, D.size) for t in (projected, pseudo, masks)] if D else None
            if D is not None:
                fake = D.features(small[0], c2.d_blocks)
                with torch.no_grad():
                    real = D.features(small[1], c2.d_blocks)

            def loss(i, projected, pseudo, masks, offset):
                feat = projected.new_zeros(())
                if D is not None:  # image i's rows of the features computed for all K
                    feat = feature_l1([f.chunk(k)[i] for f in fake],
                                      [r.chunk(k)[i] for r in real], small[2].chunk(k)[i])
                return (photometric_l1(projected, pseudo, masks) + feat
                        + c2.lam_offset * offset.pow(2).mean())

            total = sum(loss(i, *(t.chunk(k)[i] for t in (projected, pseudo, masks, offset)))
                        for i in range(k))
            opt.zero_grad()
            total.backward()
            opt.step()
        with torch.no_grad():
            kept = [sample()[:3] for _ in range(c2.collect)]
    return [(torch.cat([p.chunk(k)[i] for _, _, p in kept]),
             torch.cat([m.chunk(k)[i] for _, m, _ in kept])) for i in range(k)]


def _step3_batch(images, samples, nets: Nets, c3, perceptual, renderer, seeds) -> None:
    """Step 3 (:func:`~g2s_lite.refine.step3`) on K images at once, in place; ``samples``
    is each image's (projected, masks)."""
    from .losses import photometric_l1, smoothness
    from .refine import step3_optimizer

    k, m = len(images), c3.batch
    opt = step3_optimizer(nets, c3)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    orders = [[torch.randperm(len(p), generator=g), 0] for (p, _), g in zip(samples, gens)]

    def explain(depth, albedo, view, light, target, mask):
        renders = [renderer.render(depth, albedo, light, view)]
        if c3.flip:
            renders.append(renderer.render(depth.flip(-1), albedo.flip(-1), light, view))
        valid = renders[0][1] if not c3.flip else renders[0][1] * renders[1][1]
        valid = valid if mask is None else valid * mask
        return [r for r, _ in renders], valid

    for _ in range(c3.steps):
        picked = []
        for (projected, masks), gen, order in zip(samples, gens, orders):
            if order[1] + m > len(order[0]):
                order[:] = [torch.randperm(len(projected), generator=gen), 0]
            pick = order[0][order[1]:order[1] + m].to(projected.device)
            order[1] += m
            picked.append((projected[pick], masks[pick]))
        chosen, chosen_masks = (torch.cat(parts) for parts in zip(*picked))
        depth, albedo = nets.depth(images), nets.albedo(images)
        view_i, light_i = nets.view(images), nets.light(images)
        own, valid_i = explain(depth, albedo, view_i, light_i, images, None)
        theirs, valid_p = explain(depth.repeat_interleave(m, 0), albedo.repeat_interleave(m, 0),
                                  nets.view(chosen), nets.light(chosen), chosen, chosen_masks)

        def terms(renders, target, valid):
            return sum(photometric_l1(r, target, valid)
                       + c3.lam_perc * perceptual(r, target, valid) for r in renders)

        total = 0
        for i in range(k):
            part = lambda t: t.chunk(k)[i]  # noqa: E731
            smooth = (smoothness(part(depth))
                      + smoothness(renderer.diffuse(renderer.normals(part(depth)),
                                                    part(light_i))))
            total = total + (terms([part(r) for r in own], part(images), part(valid_i))
                             + terms([part(r) for r in theirs], part(chosen), part(valid_p))
                             + c3.lam_smooth * smooth)
        opt.zero_grad()
        total.backward()
        opt.step()


def reconstruct_batch(images: Tensor, G: Generator, D: Discriminator | None, ws: Tensor,
                      preset: str | Preset = "synface64", seeds: list[int] | None = None,
                      perceptual: PerceptualLoss | None = None, vectorize: bool | None = None
                      ) -> list[Factors]:
    """GAN2Shape on ``K`` images at once: what :func:`reconstruct` gives each of them
    (fresh nets, D at the preset's prior; ``w`` given), side by side in one process.

    Args:
        images: ``K×3×S×S`` in [−1, 1]; ws: their latents ``K×style_dim`` (or W+).
        seeds: image k's ``seed`` as :func:`reconstruct` takes it (default 0, 1, …).
        vectorize: run the K copies of each net as one vectorised call (default: on a GPU;
            see :class:`~g2s_lite.nets.Stacked`).

    Every image gets the numbers of its own :func:`reconstruct` up to rounding: G, D and
    the mapping network see the K images' samples in one batch, whose kernels add in
    another order, and the difference grows a little over the steps (three SynFaces on a
    tiny schedule: depths within 7e-5, views within 2e-8 rad; vectorised, 7e-4 and 2e-6).

    Returns:
        One :class:`Factors` per image (``1×…`` tensors, as a single reconstruction's).
    """
    preset = get_preset(preset)
    k = len(images)
    seeds = list(range(k)) if seeds is None else list(seeds)
    if len(seeds) != k or len(ws) != k:
        raise ValueError(f"{k} images need {k} latents and {k} seeds, got {len(ws)} and "
                         f"{len(seeds)}: give one of each per image")
    images, ws = images.to(G.device), ws.to(G.device)
    vectorize = G.device.type == "cuda" if vectorize is None else vectorize
    renderer = Renderer(preset.image_size)
    perceptual = perceptual or PerceptualLoss()
    each = [Nets.create(preset.image_size, preset.nf, s, G.device, prior=starting_prior(preset))
            for s in seeds]
    nets = Nets(*(Stacked([getattr(n, name) for n in each], vectorize)
                  for name in NET_NAMES))
    for stage in range(preset.stages):
        c1, c2, c3 = preset.for_stage(stage)
        at = [s + stage for s in seeds]
        with torch.no_grad():
            depth, view = nets.depth(images), nets.view(images)
        _step1_batch(images, depth, view, nets, c1, perceptual, renderer)
        with torch.no_grad():
            albedo, light = nets.albedo(images), nets.light(images)
        samples = _step2_batch(images, ws, G, D, depth, albedo, light, c2, renderer, at,
                               vectorize, preset.gan_crop)
        _step3_batch(images, samples, nets, c3, perceptual, renderer, at)
    out = factors(nets, images, renderer)
    return [Factors(**{name: t[i:i + 1] for name, t in vars(out).items()}) for i in range(k)]
