"""Pretraining the four nets on GAN samples — the paper's protocol for synthetic faces
(Chapter 7).

The paper does not start each synthetic test face from scratch. Its synthetic-face run
(``configs/synface.yml`` of the official code) loads networks that GAN2Shape itself trained
beforehand, jointly on 200 training faces, and resets to them before every test face. The
pretraining is the same method (steps 1–3 from the ellipsoid, symmetry on) with the nets
shared across the training images, so no ground truth is used anywhere. What it buys is
what a single face cannot give: a view net V that already reads a face's pose, and a depth
net D that already outputs a face-like shape, before the face's own steps begin.

Here the training images are samples of the GAN itself (their latents are known, so no
projection is needed). Each round visits every image once and runs a short stage on it
with the shared D, A, V, L and one shared latent-offset encoder E; the schedule is the
preset's, with fewer steps per visit. With ``joint`` (the paper's ``joint_train``), step 3
waits until every image of the round has had steps 1 and 2, and then trains on all of them
together, several images in every step, as the paper's 8 processes do with one image each.
:meth:`Pretrained.starting_nets` gives :func:`~g2s_lite.method.reconstruct` its ``nets=``
(and the encoder its ``encoder=``); the reconstruction trains copies.

Under ``torchrun`` the pretraining is data-parallel, as the paper's is: every process
visits its share of the training images with its own copy of the nets, and every step
averages the gradients over the processes before the same optimiser step, so the copies
stay equal (``torchrun --nproc_per_node=8 -m g2s_lite.pretrain --out …``).
"""
from __future__ import annotations

import copy
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from .gan import Discriminator, Generator
from .invert import FramedGAN, LatentOffsetEncoder, make_encoder
from .losses import PerceptualLoss
from .method import run_stage
from .nets import NET_NAMES, Nets, ViewNet, module_state
from .paper import Preset, Step3Config, get_preset, quick_length
from .prior import starting_prior
from .refine import shuffled, step3_loss, step3_optimizer
from .render import Renderer
from .runtime import SOLO, World, seeded

#: Truncation ψ of the training samples: typical faces, as the paper's training faces are
#: dataset images, not the GAN's rare extremes.
TRUNCATION = 0.8


@dataclass(frozen=True)
class PretrainConfig:
    """How long to pretrain: ``rounds`` passes over ``images`` GAN samples; every visit runs
    ``step1``/``step2``/``step3`` steps and collects ``collect`` batches of projected samples.
    The paper pretrains on 200 faces for 8 stages of 1500 steps per step at batch 96 (on 8
    GPUs); the default here is a CPU-sized share of that (≈ 35 min on 2 cores)."""

    images: int = 60
    rounds: int = 2
    step1: int = 30
    step2: int = 30
    collect: int = 6
    step3: int = 30
    seed: int = 2021  #: draws the training latents and seeds the nets
    #: step 3 for all images together, as the paper's ``joint_train``: each round runs steps 1
    #: and 2 on every image, then ``step3 × images`` steps of step 3 in which every step
    #: holds ``images_per_step`` different images (the same number of projected samples as
    #: the visits). False: every visit runs its own step 3 on its one image, which leaves D
    #: drawing one face for all (Chapter 7; the committed ``synface64_pretrained.pt``).
    joint: bool = True
    images_per_step: int = 4

    def quick(self) -> "PretrainConfig":
        """Quick mode: every length cut by :func:`~g2s_lite.paper.quick_length`."""
        cut = quick_length
        return replace(self, images=cut(self.images), rounds=cut(self.rounds),
                       step1=cut(self.step1), step2=cut(self.step2), collect=cut(self.collect),
                       step3=cut(self.step3))


def kind(meta: dict) -> str | None:
    """How the nets a :class:`Pretrained`'s ``meta`` describes were pretrained: ``"joint"``
    (``config.joint``, the paper's protocol), ``"visits"`` (a step 3 per visit), or None
    where the meta has no config to say it. A config without ``joint`` was made before the
    option was, when every pretraining visited (the committed ``synface64_pretrained.pt``).

    >>> kind({"config": {"joint": True}}), kind({"config": {"images": 60}}), kind({})
    ('joint', 'visits', None)
    """
    config = meta.get("config")
    if not isinstance(config, dict):
        return None
    return "joint" if config.get("joint", False) else "visits"


@dataclass
class Pretrained:
    """Nets to start a reconstruction from: D, A, V, L and the latent-offset encoder E,
    with ``meta`` saying how they were made (preset, config, seconds, device)."""

    nets: Nets
    encoder: LatentOffsetEncoder
    meta: dict = field(default_factory=dict)

    def starting_nets(self, preset: Preset, seed: int = 0, prior: Tensor | None = None
                      ) -> Nets:
        """The nets a reconstruction with ``preset`` starts from (its ``nets=``): copies of
        A, V and L, and D fresh at ``prior`` (default :func:`~g2s_lite.prior.starting_prior`),
        seeded with ``seed`` as a fresh-net run's D is.

        Why D starts fresh: our pretraining's D draws one average face for every image
        (Chapter 7); the paper resets D to its pretrained weights too, but with ours that start
        was worse (4 tuning faces: SIDE 1.17 → 1.58, MAD 15.6° both ways). This is the one
        place to change once a longer pretraining gives a D that reads faces.
        """
        made_for = self.meta.get("preset")
        if made_for != preset.base_name:
            raise ValueError(f"the pretrained nets were made for preset {made_for!r}, not "
                             f"{preset.base_name!r}; pretrain for this preset or choose "
                             f"preset={made_for!r}")
        device = next(self.nets.depth.parameters()).device
        prior = starting_prior(preset) if prior is None else prior
        fresh = Nets.create(preset.image_size, preset.nf, seed, device, prior)
        return replace(copy.deepcopy(self.nets), depth=fresh.depth)

    def to(self, device: torch.device | str) -> "Pretrained":
        """The nets and the encoder moved to ``device`` (in place); returns them."""
        self.nets.to(device)
        self.encoder.to(device)
        return self

    def copy(self) -> "Pretrained":
        """An independent copy (a reconstruction trains its nets in place)."""
        return Pretrained(copy.deepcopy(self.nets), copy.deepcopy(self.encoder), dict(self.meta))

    def save(self, path: str | Path, half: bool = True) -> None:
        """Write the nets (:meth:`~g2s_lite.nets.Nets.save`), the encoder's weights and
        ``meta``, loadable with ``weights_only=True``, atomically: a run stopped while writing
        leaves the previous file whole.

        ``half`` stores the weights at half precision (10 MB instead of 20 MB for synface64);
        they are loaded back to full precision, so use the file, not the nets in memory, for
        any result that should be re-run from it."""
        self.nets.save(path, half, encoder=module_state(self.encoder, half), meta=self.meta)

    @classmethod
    def load(cls, path: str | Path, G: Generator, device: torch.device | str = "cpu"
             ) -> "Pretrained":
        """Read a file written by :meth:`save`, for the generator ``G`` it was trained with;
        files written before the nets had their own format (``{"state", "meta"}``, such as
        the committed ``results/synface64_pretrained*.pt``) too.

        Raises:
            ValueError: the file is not a pretrained-nets file, or its shapes do not fit the
                preset and ``G`` it names (with what was expected and what to do).
        """
        path = Path(path)
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError) as err:
            raise ValueError(f"{path} cannot be read as a pretrained-nets file ({err}); make "
                             "one with python -m g2s_lite.pretrain") from None
        if not isinstance(blob, dict) or "meta" not in blob or not {"nets", "state"} & set(blob):
            raise ValueError(f"{path} is not a pretrained-nets file (no nets and 'meta'); "
                             "make one with g2s_lite.pretrain.pretrain(...).save(path)")
        meta = blob["meta"]
        preset = get_preset(meta.get("preset", "synface64"), quick=False)
        size = preset.image_size
        earlier = blob.get("state", {})  # the earlier layout: the preset's nets and E by name
        nets_state = blob.get("nets") or {
            "image_size": size, "nf": preset.nf, "layout": "book",
            "state": {name: earlier.get(name, {}) for name in NET_NAMES}}
        encoder_state = blob.get("encoder", earlier.get("encoder", {}))
        encoder = make_encoder(G, preset.step2[0], size, device)
        try:
            nets = Nets.from_state(nets_state, device)
            encoder.load_state_dict(encoder_state)
        except (KeyError, RuntimeError) as err:
            raise ValueError(f"{path} does not fit preset {preset.name!r} and this generator "
                             f"(style_dim {G.style_dim}): {err}. Pretrain again for this GAN "
                             "and preset") from None
        # V's ranges are a buffer, so they travel with the file: a file made before a change
        # of range would silently bring the old range back
        with seeded(0):
            ranges = ViewNet(size, preset.nf).scale.to(device)
        if not torch.allclose(nets.view.scale, ranges, atol=1e-3):
            raise ValueError(f"{path} was made with V's ranges {nets.view.scale.tolist()} "
                             f"(rotations in radians, then translations x, y, z); this version "
                             f"of g2s_lite uses {ranges.tolist()}. Pretrain again")
        return cls(nets, encoder, meta)


def training_latents(G: Generator, n: int, seed: int) -> Tensor:
    """``n`` latents w ``n×style_dim`` of typical GAN samples (truncated by
    :data:`TRUNCATION` towards the mean w)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.style_dim, generator=gen).to(G.device, G.dtype)
    with torch.no_grad():
        w = G.mapping(z)
        center = G.mean_latent() if G.w_avg is None else G.w_avg
        return center + TRUNCATION * (w - center)


def pretrain(G: Generator, D: Discriminator | None, preset: str | Preset = "synface64",
             config: PretrainConfig = PretrainConfig(), perceptual: PerceptualLoss | None = None,
             progress: bool = True,
             on_round: Callable[[int, "Pretrained"], None] | None = None,
             world: World = SOLO) -> Pretrained:
    """GAN2Shape on many GAN samples at once, with shared nets (the paper's pretraining).

    Every visit of an image is one stage (:func:`~g2s_lite.method.run_stage`) with the shared
    nets and encoder. With ``config.joint`` the visits stop after step 2, and at the end of
    each round step 3 trains on all the round's images together (:func:`step3_joint`).

    Args:
        G, D: the GAN (frozen); D gives step 2 its feature loss.
        preset: whose networks, prior, symmetry and loss weights to use (its first stage);
            its schedule lengths are replaced by ``config``'s.
        config: how long (quick mode: ``PretrainConfig().quick()``).
        perceptual: default ``PerceptualLoss()`` (SSIM).
        progress: a progress bar over the steps.
        on_round: called after every round with the round's index (from 0) and a copy of the
            nets as they are then (with ``meta`` so far), e.g. to save them: how the nets
            change with the length of pretraining is then measured from one run. Under
            ``torchrun``, on rank 0 only.
        world: the processes sharing the work (:func:`~g2s_lite.runtime.joined`): each
            visits its :meth:`~g2s_lite.runtime.World.share` of the images (``images`` must
            divide among them) and gradients are averaged at every step; the joint step 3
            runs ``step3 ×`` (its share) steps, each of ``images_per_step`` images per
            process. Every process returns the same nets.
    """
    from tqdm.auto import tqdm

    if config.images % world.size:
        raise ValueError(f"{config.images} training images cannot be shared equally by "
                         f"{world.size} processes; give --images a multiple of {world.size}")
    preset = _visit_preset(get_preset(preset), config)
    size = preset.image_size
    renderer = Renderer(size)
    perceptual = perceptual or PerceptualLoss()
    gan = FramedGAN(G, preset.gan_crop)
    ws = training_latents(G, config.images, config.seed)
    with torch.no_grad():
        images = gan.generate(ws, size)
    nets = Nets.create(size, preset.nf, config.seed, G.device, prior=starting_prior(preset))
    encoder = None
    if world.size > 1:  # every process's copy starts the same (a visit would seed its own)
        with seeded(config.seed):
            encoder = make_encoder(G, preset.for_stage(0)[1], size, G.device)
    mine = world.share(range(config.images))
    start = time.perf_counter()
    per_visit = config.step1 + config.step2 + config.step3
    # counted in steps, so that the joint step 3 moves the bar as the visits do
    bar = tqdm(total=config.rounds * len(mine) * per_visit,
               desc="pretraining on GAN samples", unit="step",
               disable=not progress or not world.main)

    def made(rounds: int) -> dict:
        return {"preset": preset.base_name, "config": asdict(replace(config, rounds=rounds)),
                "truncation": TRUNCATION, "seconds": time.perf_counter() - start,
                "device": str(G.device), "torch": str(torch.__version__),
                "world_size": world.size}

    trained = [*nets.parameters(), *(encoder.parameters() if encoder is not None else [])]
    on_round = on_round if world.main else None
    with world.averaging(trained):  # nothing to average in a plain run
        for r in range(config.rounds):
            collected = []  # joint: the round's (projected, masks), in image order
            for k in mine:
                seed = config.seed + r * config.images + k
                visit = run_stage(images[k:k + 1], ws[k:k + 1], gan, D, nets, preset, 0,
                                  encoder, perceptual, renderer, seed, progress=False,
                                  step3_too=not config.joint)
                encoder = visit.step2.encoder
                collected.append((visit.step2.projected, visit.step2.masks))
                bar.update(config.step1 + config.step2
                           + (0 if config.joint else config.step3))
            if config.joint:
                projected, masks = (torch.stack(parts) for parts in zip(*collected))
                step3_joint(images[mine], projected, masks, nets, preset.for_stage(0)[2],
                            config.step3 * len(mine), config.images_per_step, perceptual,
                            renderer, config.seed + r, on_step=bar.update)
            if on_round is not None:
                on_round(r, Pretrained(nets, encoder, made(r + 1)).copy())
    bar.close()
    return Pretrained(nets, encoder, made(config.rounds))


def _visit_preset(preset: Preset, config: PretrainConfig) -> Preset:
    """``preset`` with its first stage cut to one visit's lengths."""
    c1, c2, c3 = preset.for_stage(0)
    return replace(preset, stages=1, step1=(replace(c1, steps=config.step1),) * 2,
                   step2=(replace(c2, steps=config.step2, collect=config.collect),) * 2,
                   step3=(replace(c3, steps=config.step3),) * 2)


def step3_joint(images: Tensor, projected: Tensor, masks: Tensor, nets: Nets,
                config: Step3Config, steps: int, images_per_step: int,
                perceptual: PerceptualLoss, renderer: Renderer, seed: int,
                on_step: Callable[[], None] | None = None) -> list[dict[str, float]]:
    """Step 3 on many images at once (the paper's joint pretraining), in place.

    Every step takes ``images_per_step`` different images, in turn from a shuffled order, and
    ``config.batch // images_per_step`` of each one's projected samples, and trains the
    shared nets on the mean of the images' own step-3 losses
    (:func:`~g2s_lite.refine.step3_loss`), as the paper's processes, one image each, average
    their gradients. Why: a net shared by many faces that sees one face for many steps in a
    row can follow each face with the output it gives every face; one that must explain
    several faces in the same step can only do it by reading them.

    Args:
        images: ``K×3×S×S``; projected ``K×N×3×S×S`` and masks ``K×N×1×S×S``, image k's
            samples at index k.
        steps: how many steps; seed orders the images and samples.
        on_step: called after every step (a progress bar's update).

    Returns:
        The per-step history of the loss terms (means over the step's images).
    """
    per_step = min(images_per_step, len(images))
    m = max(1, config.batch // per_step)
    opt = step3_optimizer(nets, config)
    gen = torch.Generator().manual_seed(seed)
    order = shuffled(len(images), per_step, gen)
    history: list[dict[str, float]] = []
    for _ in range(steps):
        pick = next(order)
        chosen = torch.stack([torch.randperm(projected.shape[1], generator=gen)[:m]
                              for _ in pick])  # per_step × m sample indices
        rows = pick[:, None].expand_as(chosen)
        terms = step3_loss(nets, images[pick], projected[rows, chosen].flatten(0, 1),
                           masks[rows, chosen].flatten(0, 1), config, perceptual, renderer)
        opt.zero_grad()
        terms["loss"].mean().backward()
        opt.step()
        history.append({k: v.mean().item() for k, v in terms.items()})
        if on_step is not None:
            on_step()
    return history


def round_path(out: str | Path, rounds: int) -> Path:
    """Where ``--save-rounds`` writes the nets after ``rounds`` rounds:
    ``runs/pre.pt`` → ``runs/pre.round2.pt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.round{rounds}{out.suffix}")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from . import hub
    from .runtime import downloads_allowed, joined, quick_mode

    defaults = PretrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m g2s_lite.pretrain",
        description="Pretrain D, A, V, L and the latent-offset encoder on samples of the "
                    "bundled GAN (the paper's protocol for synthetic faces); the benchmark's "
                    "g2s_joint (--no-joint: g2s_visits) starts from the file this writes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="file to write (.pt)")
    parser.add_argument("--preset", default="synface64", help="preset whose nets and prior to use")
    for name in ("images", "rounds", "step1", "step2", "collect", "step3", "seed",
                 "images_per_step"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int,
                            default=getattr(defaults, name), help=f"PretrainConfig.{name}")
    parser.add_argument("--joint", action=argparse.BooleanOptionalAction, default=defaults.joint,
                        help="PretrainConfig.joint: step 3 on all images together, several "
                             "images in every step (the paper's joint_train)")
    parser.add_argument("--quick", action=argparse.BooleanOptionalAction,
                        default=quick_mode(),
                        help="cut every length by ten (the default when G2S_QUICK=1)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--device", default=None, help="torch device (default cuda if any)")
    parser.add_argument("--save-rounds", action="store_true",
                        help="also write the nets after every round, as OUT with .roundK "
                             "before its suffix (K from 1), to measure how they change with "
                             "the length of pretraining")
    args = parser.parse_args(argv)
    if args.out.is_dir() or not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: give a file in an existing folder")
    try:
        preset = get_preset(args.preset)
    except ValueError as err:
        parser.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PretrainConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    if args.quick:
        config = config.quick()
    command = "python -m g2s_lite.pretrain " + " ".join(sys.argv[1:] if argv is None else argv)

    def save_round(r: int, nets: Pretrained) -> None:
        nets.meta["command"] = command
        nets.save(round_path(args.out, r + 1))

    with joined(args.device) as world:  # meta.world_size says how many ran the command
        G, D = hub.load(hub.BOOK_GAN, device=world.device(args.device))
        try:
            result = pretrain(G, D, preset, config,
                              PerceptualLoss("auto", downloads=downloads_allowed()),
                              on_round=save_round if args.save_rounds else None, world=world)
        except ValueError as err:  # images that do not divide among the processes
            parser.error(str(err))
    if world.main:
        result.meta["command"] = command
        result.save(args.out)
        print(f"wrote {args.out} ({result.meta['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
