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

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from .gan import Discriminator, Generator
from .images import check_image, load_image
from .invert import Step2Config, project, step2
from .losses import PerceptualLoss, photometric_l1, smoothness
from .nets import LR, AlbedoNet, DepthNet, LightNet, ViewNet, adam
from .prior import make_prior
from .pseudo import FACE_LIGHTS
from .render import Renderer
from .runtime import quick_mode

if TYPE_CHECKING:
    from .pretrain import Pretrained

#: Loss weights of the paper (DESIGN §5), shared by steps 1 and 3.
LAM_PERC, LAM_SMOOTH = 0.5, 0.01


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


def step1(image: Tensor, depth: Tensor, config: Step1Config = Step1Config(),
          perceptual: PerceptualLoss | None = None, renderer: Renderer | None = None,
          seed: int = 0, progress: bool = True, albedo_net: AlbedoNet | None = None,
          light_net: LightNet | None = None, view: Tensor | None = None) -> Step1Result:
    """Step 1: fit albedo and light to ``image`` with the depth held at ``depth``.

    Args:
        image: ``1×3×S×S`` (or ``3×S×S``) in [−1, 1].
        depth: ``S×S`` or ``1×S×S``: the prior, or D(image) after :func:`~g2s_lite.nets.init_depth_to_prior`.
        config: schedule and loss weights.
        perceptual: the perceptual loss (default: ``PerceptualLoss("auto")``).
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
    perceptual = perceptual or PerceptualLoss("auto")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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
@dataclass(frozen=True)
class Step3Config:
    """Schedule of step 3 (DESIGN §5: 200 steps, batch 16, symmetry on, for synthetic faces)."""

    steps: int = 200
    batch: int = 16
    lr: float = LR
    lam_perc: float = LAM_PERC
    lam_smooth: float = LAM_SMOOTH
    flip: bool = True  #: also explain every image with the mirrored depth and albedo
    #: learning rate of the view net V alone (None: ``lr``); V starts knowing no pose
    view_lr: float | None = None


@dataclass
class Nets:
    """The four networks that factor an image (Chapter 2): depth D, albedo A, view V, light L."""

    depth: DepthNet
    albedo: AlbedoNet
    view: ViewNet
    light: LightNet

    @classmethod
    def create(cls, image_size: int, nf: int | None, seed: int = 0,
               device: torch.device | str = "cpu", prior: Tensor | None = None) -> "Nets":
        """Fresh nets, seeded; with ``prior`` (``S×S``) D starts exactly at it
        (:meth:`~g2s_lite.nets.DepthNet.start_at`)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets = cls(DepthNet(image_size, nf).to(device), AlbedoNet(image_size, nf).to(device),
                       ViewNet(image_size, nf).to(device), LightNet(image_size, nf).to(device))
        if prior is not None:
            nets.depth.start_at(prior.to(device))
        return nets

    def parameters(self) -> list[nn.Parameter]:
        return [p for net in (self.depth, self.albedo, self.view, self.light)
                for p in net.parameters()]


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
        perceptual: default ``PerceptualLoss("auto")``.
        renderer: default ``Renderer(S)``.
        seed: orders the samples (the global random state is left alone).
        progress: show a progress bar.

    Returns:
        The per-step history of the loss terms.
    """
    from tqdm.auto import trange

    image = check_image(image)
    renderer = renderer or Renderer(image.shape[-1])
    perceptual = perceptual or PerceptualLoss("auto")
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


# ============================================================================ presets
#: How far behind the paper's ellipsoid the SynFace preset seats its prior (see
#: :meth:`Preset.starting_prior`). On 4 tuning faces (SynFaces seed 555), full schedule:
#: SIDE 1.45 → 1.22 and MAD 27.7° → 16.0° against 0.0, and V’s yaw within 0.12 rad of the
#: truth on all four (0.0: off by up to 0.6 rad).
SYNFACE_PRIOR_SHIFT = 0.07

#: Quick mode (DESIGN §7) divides every schedule length by this — the one scaling rule.
QUICK_DIVISOR = 10
#: What quick mode adds to a preset's name (so quick and full results are never mixed).
QUICK_SUFFIX = " (quick)"


@dataclass(frozen=True)
class Preset:
    """Everything :func:`reconstruct` needs to know: sizes, stages and the schedules of the
    first and of later stages (DESIGN §5)."""

    name: str
    image_size: int
    stages: int
    step1: tuple[Step1Config, Step1Config]  #: (first stage, later stages)
    step2: tuple[Step2Config, Step2Config]
    step3: tuple[Step3Config, Step3Config]
    flip: tuple[bool, ...]  #: symmetry per stage (the last value repeats)
    project_steps: int = 300  #: projection of the image when no w is given
    prior: str = "ellipsoid"
    #: depth added to the prior, to seat it where the world's objects sit relative to the
    #: renderer's rotation centre (see :meth:`starting_prior`)
    prior_shift: float = 0.0
    nf: int | None = None  #: width of D, A, V, L (None: the paper's)
    quick_scaled: bool = False  #: already divided by QUICK_DIVISOR

    @property
    def base_name(self) -> str:
        """The name of the preset this one was made from (without the quick-mode mark)."""
        return self.name.removesuffix(QUICK_SUFFIX)

    def starting_prior(self, kind: str | None = None, **options) -> Tensor:
        """The prior depth ``S×S`` the method starts from: ``make_prior(kind or self.prior,
        S, **options) + prior_shift``.

        Why the shift: views rotate about a fixed point (``Renderer.rot_center_depth``,
        1.0), so where a shape sits relative to it decides what a turn looks like. SynFaces
        put the middle of a head's depth at about 1.0; the paper's ellipsoid (0.91 to 1.02)
        sits in front of that point, and turned, it slides across the image more than it
        turns. A pose regressor trained on SynFaces reads pseudo samples of the paper's
        ellipsoid as turned by about 0.1 of their sampled yaw, and those of the ellipsoid
        moved back by 0.07 by about 0.9; the GAN's projected samples then turn too, and V
        finds the pose (see :data:`SYNFACE_PRIOR_SHIFT`).
        """
        return make_prior(kind or self.prior, self.image_size, **options) + self.prior_shift

    def for_stage(self, stage: int) -> tuple[Step1Config, Step2Config, Step3Config]:
        k = 0 if stage == 0 else 1
        flip = self.flip[min(stage, len(self.flip) - 1)]
        return self.step1[k], self.step2[k], replace(self.step3[k], flip=flip)

    def quick(self) -> "Preset":
        """The same preset with every schedule length divided by :data:`QUICK_DIVISOR`."""
        def cut(n: int) -> int:
            return max(1, n // QUICK_DIVISOR)

        return replace(
            self, name=self.name + QUICK_SUFFIX, quick_scaled=True,
            step1=tuple(replace(c, steps=cut(c.steps)) for c in self.step1),
            step2=tuple(replace(c, steps=cut(c.steps), collect=cut(c.collect))
                        for c in self.step2),
            step3=tuple(replace(c, steps=cut(c.steps)) for c in self.step3),
            project_steps=cut(self.project_steps))


def _synface64() -> Preset:
    s1, s2, s3 = Step1Config(steps=500, nf=16), Step2Config(steps=500, nf=16), Step3Config()
    return Preset("synface64", 64, stages=1, step1=(s1, s1), step2=(s2, s2), step3=(s3, s3),
                  flip=(True,), nf=16, prior_shift=SYNFACE_PRIOR_SHIFT)


def _face128() -> Preset:
    s2 = dict(f1_d=2, lights=FACE_LIGHTS)
    return Preset("face128", 128, stages=4,
                  step1=(Step1Config(steps=600), Step1Config(steps=200)),
                  step2=(Step2Config(steps=600, **s2), Step2Config(steps=500, **s2)),
                  step3=(Step3Config(steps=400), Step3Config(steps=300)),
                  flip=(True, False))


#: The named presets (DESIGN §5): synthetic faces at 64 px, real faces at 128 px.
PRESETS = {"synface64": _synface64(), "face128": _face128()}


def get_preset(name: str | Preset, quick: bool | None = None) -> Preset:
    """A named preset (or a given one), scaled for quick mode when ``quick`` (default: the
    ``G2S_QUICK`` setting)."""
    preset = name if isinstance(name, Preset) else PRESETS.get(name)
    if preset is None:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    quick = quick_mode() if quick is None else quick
    return preset.quick() if quick and not preset.quick_scaled else preset


# ============================================================================ reconstruct
@dataclass
class Reconstruction:
    """The factors of one image, and how they were found.

    ``depth`` ``1×S×S`` is the shape *in the image's own view* (what the paper evaluates),
    with ``valid`` ``1×1×S×S`` where the surface covers the image and ``normal``
    ``1×S×S×3`` its normals; ``depth_canon``, ``albedo`` ``1×3×S×S`` and ``shading``
    ``1×1×S×S`` live in the canonical frame, ``view`` ``1×6`` maps it to the image, and
    ``light`` is ``1×4``. ``reconstruction`` is Φ of all four, ``w`` the image's latent.
    ``history`` holds one dict per stage (its depth maps and every step's losses) and
    ``timings`` the seconds spent in each part.
    """

    image: Tensor
    depth: Tensor
    valid: Tensor
    normal: Tensor
    depth_canon: Tensor
    albedo: Tensor
    shading: Tensor
    view: Tensor
    light: Tensor
    reconstruction: Tensor
    w: Tensor
    history: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> "Reconstruction":
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in vars(self).items()}
        return Reconstruction(**moved)


def _factors(nets: Nets, image: Tensor, renderer: Renderer) -> dict[str, Tensor]:
    with torch.no_grad():
        depth_canon, albedo = nets.depth(image), nets.albedo(image)
        view, light = nets.view(image), nets.light(image)
        recon, valid = renderer.render(depth_canon, albedo, light, view)
        depth = renderer.warp_depth(depth_canon, view)
        return {"depth": depth, "valid": valid, "normal": renderer.normals(depth),
                "depth_canon": depth_canon, "albedo": albedo,
                "shading": renderer.shading(renderer.normals(depth_canon), light),
                "view": view, "light": light, "reconstruction": recon}


def reconstruct(image, G: Generator, D: Discriminator | None = None, w: Tensor | None = None,
                preset: str | Preset = "synface64", progress: bool = True, seed: int = 0,
                perceptual: PerceptualLoss | None = None, prior: Tensor | None = None,
                start: "Pretrained | None" = None) -> Reconstruction:
    """GAN2Shape on one image: prior → (step 1 → step 2 → step 3) × stages.

    Args:
        image: a ``3×S×S``/``1×3×S×S`` tensor in [−1, 1], a PIL image or a path (converted
            by :func:`~g2s_lite.images.load_image`'s rules to the preset's size).
        G, D: the GAN (frozen); D gives step 2 its feature loss.
        w: the image's latent; projected with :func:`~g2s_lite.invert.project` if None.
        preset: a name in :data:`PRESETS` or a :class:`Preset`; scaled down in quick mode.
        progress: show progress bars.
        seed: seeds every network and random draw.
        perceptual: default ``PerceptualLoss("auto")``.
        prior: a ``S×S`` starting depth instead of ``preset.starting_prior()`` (e.g. for
            ablations: build it with ``preset.starting_prior(kind)`` to seat it the same way).
        start: pretrained nets (:class:`~g2s_lite.pretrain.Pretrained`, the paper's protocol
            for synthetic faces) to start from instead of fresh nets and the prior; a copy is
            trained, ``start`` is left as it was. Its latent-offset encoder is carried
            through the stages. With ``prior`` too, D alone starts fresh at the prior (as
            without ``start``) and A, V, L and E come from ``start``.
    """
    preset = get_preset(preset)
    image = load_image(image, preset.image_size)  # refuse bad input before any work
    device = G.input.input.device
    image = image.to(device)
    size = preset.image_size
    renderer = Renderer(size)
    perceptual = perceptual or PerceptualLoss("auto")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    if w is None:
        w, _ = project(image, G, D, steps=preset.project_steps, progress=progress, seed=seed)
        lap("project")
    w = w.to(device)
    if start is None:
        nets = Nets.create(size, preset.nf, seed, device,
                           prior=preset.starting_prior() if prior is None else prior)
        encoder = None  # step 2 makes a fresh one each stage
    else:
        if start.meta.get("preset") != preset.base_name:
            raise ValueError(f"the pretrained nets were made for preset "
                             f"{start.meta.get('preset')!r}, not {preset.name!r}; pretrain for "
                             f"this preset or choose preset={start.meta.get('preset')!r}")
        start = start.copy()
        nets, encoder = start.nets, start.encoder
        if prior is not None:  # D alone starts fresh at the prior, as without start
            nets = replace(nets, depth=Nets.create(size, preset.nf, seed, device, prior).depth)
    history: list[dict] = []
    for stage in range(preset.stages):
        c1, c2, c3 = preset.for_stage(stage)
        with torch.no_grad():
            depth, view = nets.depth(image), nets.view(image)
        s1 = step1(image, depth, c1, perceptual, renderer, seed + stage, progress,
                   albedo_net=nets.albedo, light_net=nets.light, view=view)
        lap("step1")
        s2 = step2(image, w, G, D, s1.depth, s1.albedo, s1.light, c2, renderer, seed + stage,
                   progress, encoder=encoder)
        encoder = s2.encoder if start is not None else None
        lap("step2")
        h3 = step3(image, s2.projected, s2.masks, nets, c3, perceptual, renderer,
                   seed + stage, progress)
        lap("step3")
        f = _factors(nets, image, renderer)
        history.append({"stage": stage, "depth": f["depth"], "depth_canon": f["depth_canon"],
                        "valid": f["valid"], "albedo": f["albedo"], "view": f["view"],
                        "light": f["light"], "projected": s2.projected[:16],
                        "pseudo": s2.pseudo[:16], "step1": s1.history,
                        "step2": s2.history, "step3": h3})
    f = _factors(nets, image, renderer)
    timings["total"] = sum(timings.values())
    return Reconstruction(image=image, w=w, history=history, timings=timings, **f)


def reconstruct_each(image, G: Generator, D: Discriminator | None,
                     presets: dict[str, str | Preset], workers: int | None = None,
                     **options) -> dict[str, Reconstruction]:
    """:func:`reconstruct` once per preset, the runs side by side on a CPU's cores.

    Ablations (with and without symmetry, one prior or another) are independent runs on the
    same image, and on a CPU one run keeps only one core busy, so they are run in separate
    processes at once. Each process computes exactly what ``reconstruct(image, G, D,
    preset=p, **options)`` would, with the same seeds; only the wall time changes. On a
    GPU, or with ``workers=1``, the runs go one after the other in this process.

    Args:
        image, G, D, options: as for :func:`reconstruct` (e.g. ``w``, ``seed``,
            ``perceptual``); progress bars are off in the worker processes.
        presets: ``{label: preset}``, the runs to make.
        workers: processes at once (default: one per run, at most one per CPU core; 1 on a
            GPU).

    Returns:
        ``{label: Reconstruction}`` in the order of ``presets``.
    """
    if not presets:
        raise ValueError("presets is empty: give at least one {label: preset} to run")
    on_gpu = G.input.input.device.type != "cpu"
    if workers is None:
        workers = 1 if on_gpu else os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if on_gpu and workers > 1:
        raise ValueError("reconstruct_each runs several processes only on the CPU; on a GPU "
                         "use workers=1 (the default there)")
    workers = min(workers, len(presets))  # no idle processes
    if workers == 1:
        return {label: reconstruct(image, G, D, preset=p, **options)
                for label, p in presets.items()}
    # each process gets its share of this process's threads, so the cores are not
    # oversubscribed (and with one thread each, the numbers are bit for bit the serial ones)
    threads = max(1, torch.get_num_threads() // workers)
    options = {**options, "progress": False}
    spawn = multiprocessing.get_context("spawn")  # fork is unsafe once torch has threads
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        futures = {label: pool.submit(_reconstruct_in_worker, threads, image, G, D, p, options)
                   for label, p in presets.items()}
        return {label: future.result() for label, future in futures.items()}


def _reconstruct_in_worker(threads: int, image, G: Generator, D: Discriminator | None,
                           preset: str | Preset, options: dict) -> Reconstruction:
    torch.set_num_threads(threads)
    return reconstruct(image, G, D, preset=preset, **options)
