"""The SynFace benchmark: how *accurate* the methods are (how *long*: :mod:`~g2s_lite.bench`).

Chapter 7: the paper's Tables 1 and 2, measured on our world, by ``python -m
g2s_lite.benchmark`` (``python -m g2s_lite.bench``, a different command, times things).

Held-out SynFaces (seed :data:`BENCHMARK_SEED`, used for nothing else) are reconstructed by
every method and compared with their ground truth in the image's own view:

* trivial baselines: ``null_depth`` (a constant), ``mean_gt_depth`` (the average true depth
  of the test set, in the image view), ``ellipsoid_prior`` (the starting shape alone);
* ``supervised``: the same depth network trained directly on SynFaces ground truth (other
  faces, other seeds) — the upper bound;
* ``unsup3d_sym`` / ``unsup3d_nosym``: Unsup3d (:mod:`~g2s_lite.unsup3d`), trained beforehand
  on a collection of other SynFaces with and without the symmetry assumption, feed-forward
  (its shipped weights, or those in ``--unsup3d-dir``);
* ``g2s_sym`` / ``g2s_nosym``: the method with and without the mirror term; ``g2s_stages4``:
  with it, for four stages (the paper's per-image schedule when it starts from fresh nets);
  ``g2s_step3_600``: with step 3 three times as long (600 iterations, as that schedule's
  first stage) — two changes tried and not kept (:data:`TRIED_VARIANTS`), run when named;
* ``g2s_prior_*``: the method started from the prior variants of the paper's Table 2;
* ``g2s_joint``: the method (with the mirror term) with A, V, L and the encoder E started
  from nets pretrained *jointly* on GAN samples (:mod:`~g2s_lite.pretrain`), as the paper's
  synthetic-face run starts — from ``--pretrained FILE``, or pretrained once at the start of
  the run. D starts at the prior, as in ``g2s_sym``: our pretrained D draws one shape for
  every face (Chapter 7), so only what the other nets learned is carried over;
* ``g2s_visits``: the same from nets pretrained by *visits* (``pretrain --no-joint``, the
  book's first pretraining), kept to compare the two starts;
* ``g2s_pretrained_nosym``, ``g2s_pretrained_prior_*``: the same ablations from the run's
  pretrained nets, whichever the file.

The pretrained rows run only when ``--methods`` names them, from one set of nets per file
(``meta.pretrained``): a file pretrained the other way (:func:`~g2s_lite.pretrain.kind`) is
refused for ``g2s_joint`` or ``g2s_visits``, as is a resumed run without its rows' file.

Each row is one entry of :data:`ROWS` (how a face's depth is predicted); :func:`prepare`
makes what the rows share once. Each test image is projected onto the GAN once; every
GAN2Shape variant starts from that w. Results are written after every method of every image
(:mod:`~g2s_lite.results` keeps the files, never half written), so ``--resume`` continues an
interrupted run from the last method it finished. Beside the JSON, ``<out>.depths.pt`` keeps
the depth maps the learned methods predicted, so that a chapter can show the best and worst
reconstructions without re-running them, and each GAN2Shape entry keeps the ``view`` its V
found (pitch, yaw, roll in radians, translation) to hold against the true one.

    python -m g2s_lite.benchmark --n 50 --out results/synface64.json --markdown results/synface64.md

Several processes share a run under ``torchrun`` (one per GPU, or a few on a CPU's cores,
on one machine or several through torchrun's rendezvous)::

    torchrun --nproc_per_node=4 -m g2s_lite.benchmark --n 50 --out results/synface64.json

Each process takes every fourth test face still to do, keeps what it has done in its own
:func:`~g2s_lite.results.part_path` file, and at the end rank 0 joins the shares into the
one results file a single process would have written (the same rows: every face's method is
seeded with the face's index), with ``meta.world_size`` saying how many processes shared it.
``--resume`` picks up the part files of a stopped run too, with any number of processes.
Older hand-made shares (``--first``/``--stop``) are joined, rows dropped and notes added
with ``python -m g2s_lite.results``.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import torch
from torch import Tensor

from . import __version__, results
from .hub import BOOK_GAN
from .metrics import depth_errors
from .nets import DepthNet, adam
from .paper import PAPER_TABLES, Preset, quick_length
from .prior import starting_prior
from .render import Renderer
from .runtime import (SOLO, World, add_run_options, command_text, downloads_allowed, joined,
                      run_options, seeded)
from .synth import SynFaces
from .unsup3d import WEIGHTS_DIR, Unsup3d

if TYPE_CHECKING:
    from .gan import Discriminator, Generator
    from .losses import PerceptualLoss
    from .pretrain import Pretrained

#: Seed of the test faces: never used for training, tuning or any figure.
BENCHMARK_SEED = 31337
#: Seed of the faces the supervised bound trains on (disjoint from the test faces).
SUPERVISED_SEED = 4096

#: The prior variants of Table 2: method → (make_prior kind, extra arguments as a function
#: of the image size).
PRIOR_ABLATIONS = {
    "g2s_prior_asymmetric": ("asymmetric", lambda s: {}),
    "g2s_prior_shift6": ("shifted", lambda s: {"shift": s / 6}),
    "g2s_prior_shift4": ("shifted", lambda s: {"shift": s / 4}),
    "g2s_prior_weak": ("weak", lambda s: {}),
    "g2s_prior_flat": ("flat", lambda s: {}),
}
#: The fresh-net rows that change the preset's schedule: row → the change.
SCHEDULE_VARIANTS = {"g2s_nosym": lambda p: replace(p, flip=(False,)),  # no mirror term
                     "g2s_stages4": lambda p: p.with_stages(4),  # the paper's fresh-net stages
                     # step 3 as long as the paper's fresh-net configurations run it
                     "g2s_step3_600": lambda p: p.with_first_step3(600)}
#: Schedule changes tried on the tuning faces that did not become the method's schedule
#: (the reproduction appendix): a run makes them only when ``--methods`` names them.
TRIED_VARIANTS = ("g2s_stages4", "g2s_step3_600")
#: The ablations again from the pretrained start (Table 2 as the paper ran it: its
#: synthetic-face runs start from pretrained nets): ``g2s_pretrained_`` + the fresh-net key
#: without ``g2s_`` → that fresh-net key.
PRETRAINED_ABLATIONS = {"g2s_pretrained_" + m.removeprefix("g2s_"): m
                        for m in ("g2s_nosym", *PRIOR_ABLATIONS)}
#: The rows named by how their nets were pretrained (:func:`~g2s_lite.pretrain.kind`):
#: ``g2s_joint`` jointly (the paper's protocol), ``g2s_visits`` one GAN sample at a time.
PRETRAINED_STARTS = {"g2s_joint": "joint", "g2s_visits": "visits"}
#: The Unsup3d rows: method → the weights file it reads (:mod:`~g2s_lite.unsup3d`).
UNSUP3D_METHODS = {"unsup3d_sym": "unsup3d_sym.pt", "unsup3d_nosym": "unsup3d_nosym.pt"}


# ----------------------------------------------------------------------------- supervised
#: Weight of the normals' term in the supervised bound's loss (1 − cos of the angle between
#: predicted and true normals, averaged over the head). Without it the bound learns log depth
#: alone, and GAN2Shape beat it in MAD. On 50 tuning faces (seed 555, 3000 steps): log depth
#: alone at a constant rate SIDE 0.753, MAD 17.1°; with the normals 0.739, 11.9°; with the
#: normals and the rate decayed 0.610, 9.6° (Chapter 7).
LAM_SUPERVISED_NORMAL = 0.1
#: Learning rate of the supervised bound, decayed to 0 over its steps (cosine): at a constant
#: rate its SIDE on the tuning faces moved by up to 0.13 from one thousand steps to the next.
LR_SUPERVISED = 1e-3
#: Training steps of the supervised bound (on 50 tuning faces its SIDE had settled by then).
SUPERVISED_STEPS = 3000


def train_supervised(steps: int, image_size: int = 64, nf: int = 16, batch: int = 16,
                     seed: int = SUPERVISED_SEED, progress: bool = True,
                     device: torch.device | str = "cpu",
                     lam_normal: float = LAM_SUPERVISED_NORMAL, decay: bool = True) -> DepthNet:
    """The supervised bound: D trained to predict the true depth *in the image's view* from
    the image, on SynFaces drawn with ``seed`` (never the test faces). The loss holds what
    both measures compare: the squared scale-invariant log-depth error on the head plus a
    small L1 on the log depth (which fixes the scale) for SIDE, and the angle between
    predicted and true normals (weight ``lam_normal``) for MAD. Adam's rate
    (:data:`LR_SUPERVISED`) falls to 0 along a cosine over the ``steps`` (``decay=False``:
    it stays constant, as in this bound's first version; Chapter 7, Exercise 7)."""
    from tqdm.auto import trange

    world = SynFaces(image_size)
    renderer = Renderer(image_size)
    with seeded(seed):
        net = DepthNet(image_size, nf, border=0).to(device)
    opt = adam(net.parameters(), LR_SUPERVISED)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps)) if decay
                else None)
    for step in trange(steps, desc="supervised depth net", disable=not progress):
        faces = world.sample(batch, seed=seed, start=step * batch, device=device)
        mask = faces["mask"][:, 0]
        pred = net(faces["image"])
        delta = (pred.log() - faces["depth"].log()) * mask
        count = mask.flatten(1).sum(1).clamp(min=1)
        mean = delta.flatten(1).sum(1) / count
        sie = (((delta - mean[:, None, None]) * mask) ** 2).flatten(1).sum(1) / count
        cos = (renderer.normals(pred) * faces["normal"]).sum(-1)
        angle = ((1 - cos) * mask).flatten(1).sum(1) / count
        loss = (sie.mean() + 0.1 * (delta.abs().flatten(1).sum(1) / count).mean()
                + lam_normal * angle.mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if schedule is not None:
            schedule.step()
    return net.eval()


# ----------------------------------------------------------------------------- the rows
class Prediction(NamedTuple):
    """A row's answer for one face: ``depth`` (``S×S`` or ``1×S×S``), where it is ``valid``
    (``1×1×S×S``; None: everywhere), the ``view`` the method found (pitch, yaw, roll, then
    translation) and the seconds of the face's projection, when this row made it."""

    depth: Tensor
    valid: Tensor | None = None
    view: list[float] | None = None
    project_seconds: float | None = None


@dataclass(frozen=True)
class Row:
    """One row of the table: ``predict(face index, shared)`` → :class:`Prediction`;
    ``needs``: the parts of :class:`Shared` it reads that take time to make (``"gan"``,
    ``"supervised"``, ``"pretrained"``: :func:`prepare` makes them only for a run that holds
    such a row); ``constant``: one depth for every face (its map is not kept per face)."""

    predict: Callable[[int, "Shared"], Prediction]
    needs: tuple[str, ...] = ()
    constant: bool = False


def constant_row(depth: Callable[["Shared"], Tensor]) -> Row:
    """A row whose depth is the same map ``depth(shared)`` (``S×S``) for every face."""
    return Row(lambda i, shared: Prediction(depth(shared)), constant=True)


def _supervised(i: int, shared: "Shared") -> Prediction:
    with torch.no_grad():
        return Prediction(shared.supervised(shared.image(i)).cpu())


def _pretrained_start(i: int, shared: "Shared") -> Prediction:
    """What the pretrained rows start from, before any step: D fresh at the preset's prior,
    turned by the pretrained V's view of the face (to ``g2s_joint`` what ``ellipsoid_prior``
    is to the fresh-net rows)."""
    from .method import factors

    nets = shared.pretrained.starting_nets(shared.preset, i)
    start = factors(nets, shared.image(i), shared.renderer)
    return Prediction(start.depth.cpu(), start.valid.cpu(), start.view[0].tolist())


def unsup3d_row(method: str) -> Row:
    """An Unsup3d row: the canonical depth of the weights :data:`UNSUP3D_METHODS` names for
    ``method``, warped by the view they predict."""
    def predict(i: int, shared: "Shared") -> Prediction:
        seen = shared.unsup3d[method].predict(shared.image(i))
        return Prediction(seen["depth"].cpu(), seen["valid"].cpu())

    return Row(predict)


def gan2shape_row(variant: str = "g2s_sym", pretrained: bool = False) -> Row:
    """A GAN2Shape row: the method as ``variant`` (a fresh-net row's name) runs it — the
    preset's schedule (a :data:`SCHEDULE_VARIANTS` name: so changed) from the preset's prior
    (a :data:`PRIOR_ABLATIONS` name: from that prior) — with fresh nets, or with
    ``pretrained`` A, V, L and E (D fresh at the prior all the same). Every face is seeded
    with its index."""
    def predict(i: int, shared: "Shared") -> Prediction:
        from .method import reconstruct

        preset = SCHEDULE_VARIANTS.get(variant, lambda p: p)(shared.preset)
        prior = shared.prior(variant) if variant in PRIOR_ABLATIONS else None
        if pretrained:  # D fresh at the prior, A, V, L and E pretrained
            start = dict(nets=shared.pretrained.starting_nets(preset, i, prior),
                         encoder=shared.pretrained.encoder)
        else:  # fresh nets, D at the prior
            start = dict(prior=prior)
        w, seconds = shared.latent(i)
        rec = reconstruct(shared.image(i), shared.G, shared.D, w=w, preset=preset,
                          progress=False, seed=i, perceptual=shared.perceptual, **start)
        return Prediction(rec.depth.cpu(), rec.valid.cpu(), rec.view[0].tolist(), seconds)

    return Row(predict, needs=("gan", "pretrained") if pretrained else ("gan",))


#: Every row, in the order the table lists them: name → how a face's depth is predicted.
#: A new row is one entry here (and, if it is a prior variant, one in PRIOR_ABLATIONS).
ROWS: dict[str, Row] = {
    "null_depth": constant_row(lambda shared: torch.ones(shared.size, shared.size)),
    "mean_gt_depth": constant_row(lambda shared: shared.mean_depth),
    "ellipsoid_prior": constant_row(lambda shared: shared.ellipsoid),  # the method's own start
    "pretrained_start": Row(_pretrained_start, needs=("gan", "pretrained")),  # g2s_joint's
    "supervised": Row(_supervised, needs=("supervised",)),
    **{m: unsup3d_row(m) for m in UNSUP3D_METHODS},
    **{m: gan2shape_row(m)
       for m in ("g2s_sym", "g2s_stages4", "g2s_step3_600", "g2s_nosym", *PRIOR_ABLATIONS)},
    **{m: gan2shape_row(pretrained=True) for m in PRETRAINED_STARTS},
    **{m: gan2shape_row(fresh, pretrained=True) for m, fresh in PRETRAINED_ABLATIONS.items()},
}
#: Methods whose depth is one map for every image (not kept per image).
CONSTANT_MAPS = tuple(m for m, row in ROWS.items() if row.constant)
#: The rows that start from the nets ``meta["pretrained"]`` records.
PRETRAINED_ROWS = tuple(m for m, row in ROWS.items() if "pretrained" in row.needs)
#: What a run evaluates unless told otherwise: every row that needs no pretrained nets (name
#: those in ``--methods``, their file in ``--pretrained``: a row says how its nets were
#: pretrained, a results file holds one set of them, and the ablations cost as much again),
#: except the :data:`TRIED_VARIANTS`.
DEFAULT_METHODS = tuple(m for m in ROWS if m not in PRETRAINED_ROWS + TRIED_VARIANTS)
METHODS = tuple(ROWS)

#: The paper's figures beside the rows that run its protocol: the baselines as they are, and
#: its GAN2Shape rows (nets pretrained jointly) beside ``g2s_joint`` and the pretrained
#: ablations. ``g2s_visits`` gets none: the paper never pretrains by visits, so its figure
#: would stand beside a protocol it did not run; nor do the fresh-net rows.
PAPER_ROWS = {**{m: v for m, v in PAPER_TABLES.items() if not m.startswith("g2s_")},
              "g2s_joint": PAPER_TABLES["g2s_sym"],
              **{m: PAPER_TABLES[fresh] for m, fresh in PRETRAINED_ABLATIONS.items()}}

#: How a results file's rows are listed and compared (:mod:`~g2s_lite.results`).
TABLE = results.Table(METHODS, reference="null_depth", paper=PAPER_ROWS,
                      pretrained=PRETRAINED_ROWS)


# ----------------------------------------------------------------------------- a run
@dataclass(frozen=True)
class BenchmarkConfig:
    """What a run evaluates and where it writes (one field per command-line option).

    ``n``, ``seed``: the test faces ``SynFaces(64).sample(n, seed)``, of which faces ``first
    … stop−1`` are evaluated (default all; shares of a run are joined by
    :func:`~g2s_lite.results.merge`, the faces and ``mean_gt_depth`` being those of the whole
    ``n`` in each). ``methods``: keys of :data:`ROWS`. ``preset``: the GAN2Shape schedule
    (:func:`~g2s_lite.paper.get_preset`); ``quick``: every schedule cut for a quick look (the
    preset, the supervised bound's, the pretraining), recorded in ``meta`` and in the
    preset's name. ``out`` (None: keep in memory) and ``markdown_out`` are rewritten after
    every image; ``resume`` keeps the images already in ``out`` (the same seed and preset:
    :func:`~g2s_lite.results.resume`). ``supervised_steps``: default :data:`SUPERVISED_STEPS`
    (cut in quick mode). ``pretrained``: a file of the nets the pretrained rows start from
    (:meth:`~g2s_lite.pretrain.Pretrained.save`), pretrained as the run's ``g2s_joint`` or
    ``g2s_visits`` says; None: pretrained once at the start with the default
    :class:`~g2s_lite.pretrain.PretrainConfig` (by visits for ``g2s_visits``), cut in quick
    mode. ``gan``: the GAN of GAN2Shape's rows, a hub name or a ``{"g_ema", "d"}`` file
    of the same layout (recorded in ``meta`` unless it is :data:`~g2s_lite.hub.BOOK_GAN`).
    ``unsup3d_dir``:
    the folder of the Unsup3d rows' weights (:data:`UNSUP3D_METHODS`; default the shipped
    ones). ``perceptual``: the kind of :class:`~g2s_lite.losses.PerceptualLoss` the method
    uses; ``downloads``: whether its ``"auto"`` may download LPIPS's backbone (an entry
    point decides). ``device``: default CUDA when available. ``command``: recorded in
    ``meta``.
    """

    n: int
    seed: int = BENCHMARK_SEED
    methods: tuple[str, ...] = DEFAULT_METHODS
    preset: str | Preset = "synface64"
    quick: bool = False
    first: int = 0
    stop: int | None = None
    out: str | Path | None = None
    markdown_out: str | Path | None = None
    resume: bool = False
    supervised_steps: int | None = None
    pretrained: str | Path | None = None
    gan: str = BOOK_GAN
    unsup3d_dir: str | Path | None = None
    perceptual: str = "auto"
    downloads: bool = False
    device: str | torch.device | None = None
    progress: bool = True
    command: str | None = None

    def __post_init__(self):
        TABLE.check(self.methods)
        object.__setattr__(self, "methods", tuple(self.methods))
        if len({PRETRAINED_STARTS.get(m) for m in self.methods} - {None}) > 1:
            raise ValueError("g2s_joint and g2s_visits start from differently pretrained nets "
                             "and a run holds one set: run them apart, each into its own "
                             "--out with its own --pretrained file")
        if not 0 <= self.first < self.faces.stop <= self.n:
            raise ValueError(f"test faces {self.first}…{self.faces.stop - 1} are not a range "
                             f"within the {self.n} test faces; use 0 <= --first < --stop <= "
                             "--n")

    @property
    def faces(self) -> range:
            return range(self.first, self.n if self.stop is None else self.stop)


@dataclass
class Shared:
    """What the rows of a run share, made once by :func:`prepare`: the test faces, the
    schedule, the device, and the parts the chosen rows need (None where none does)."""

    faces: dict[str, Tensor]
    preset: Preset
    device: torch.device
    G: Generator | None = None
    D: Discriminator | None = None
    perceptual: PerceptualLoss | None = None
    supervised: DepthNet | None = None
    unsup3d: dict[str, Unsup3d] = field(default_factory=dict)
    pretrained: Pretrained | None = None
    #: the face last projected and its w (each face is projected once for all its rows)
    projected: tuple[int, Tensor] | None = None

    @property
    def size(self) -> int:
        return self.preset.image_size

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.size)

    def image(self, i: int) -> Tensor:
        """Test face ``i``, ``1×3×S×S`` on the run's device."""
        return self.faces["image"][i:i + 1].to(self.device)

    @cached_property
    def mean_depth(self) -> Tensor:
        """The average true depth where each face covers the pixel, ``S×S`` (uncovered
        pixels hold the renderer's invalid depth, which is no depth at all)."""
        depth = self.faces["depth"]
        covered = (depth <= self.renderer.valid_max_depth).float()
        return ((depth * covered).sum(0) / covered.sum(0).clamp(min=1)
                ).where(covered.sum(0) > 0, torch.ones(self.size, self.size))

    @cached_property
    def ellipsoid(self) -> Tensor:
        """The depth the method starts from, ``S×S``."""
        return starting_prior(self.preset)

    def prior(self, variant: str) -> Tensor:
        """The starting depth of the prior variant ``variant`` (:data:`PRIOR_ABLATIONS`)."""
        kind, extra = PRIOR_ABLATIONS[variant]
        return starting_prior(self.preset, kind, **extra(self.size))

    def latent(self, i: int) -> tuple[Tensor, float | None]:
        """Face ``i``'s w, and the seconds its projection took when this call made it (None
        when an earlier row of the face already had)."""
        if self.projected is not None and self.projected[0] == i:
            return self.projected[1], None
        from .invert import FramedGAN, project

        t0 = time.perf_counter()
        w, _ = project(self.image(i), FramedGAN(self.G, self.preset.gan_crop), self.D,
                       self.preset.project, progress=False)
        self.projected = (i, w)
        return w, time.perf_counter() - t0


def _made_once(world: World, device: torch.device, make: Callable):
    """``make()`` in a plain run; under torchrun made by rank 0 alone and sent to the other
    processes, each moving it to its own ``device``."""
    if world.size == 1:
        return make()
    return world.broadcast(make() if world.main else None).to(device)


def prepare(config: BenchmarkConfig, shared: Shared, world: World,
            ledger: results.Ledger) -> Shared:
    """Make once what ``config``'s rows share, each part recorded in the ``ledger``'s meta:
    the GAN and the perceptual loss for GAN2Shape's rows and each Unsup3d row's weights; the
    supervised bound and the pretrained nets (minutes) only if a face of the run still lacks
    a row that needs them."""
    from . import hub
    from .losses import PerceptualLoss

    def needed(part: str, to_do: bool = False) -> bool:
        return any(part in ROWS[m].needs
                   and (not to_do or any(ledger.lacks(i, m) for i in config.faces))
                   for m in config.methods)

    meta = ledger.meta
    if needed("gan"):
        shared.G, shared.D = hub.load(config.gan, device=shared.device)
        shared.G.mean_latent()
    if needed("supervised", to_do=True):
        steps = (config.supervised_steps if config.supervised_steps is not None
                 else quick_length(SUPERVISED_STEPS) if config.quick else SUPERVISED_STEPS)
        t0 = time.perf_counter()
        shared.supervised = _made_once(world, shared.device, lambda: train_supervised(
            steps, shared.size, progress=config.progress, device=shared.device))
        meta["supervised_training_seconds"] = time.perf_counter() - t0
        meta["supervised_steps"] = steps
    if needed("gan"):
        shared.perceptual = PerceptualLoss(config.perceptual, downloads=config.downloads)
    for m in (m for m in config.methods if m in UNSUP3D_METHODS):
        path = Path(config.unsup3d_dir or WEIGHTS_DIR) / UNSUP3D_METHODS[m]
        shared.unsup3d[m] = Unsup3d.load(path, shared.device)
        meta.setdefault("unsup3d", {})[m] = {"file": str(path), "sha256": hub.sha256(path),
                                             **{k: v for k, v in shared.unsup3d[m].meta.items()
                                                if k in ("command", "train_seconds",
                                                         "device", "config")}}
    if needed("pretrained", to_do=True):
        shared.pretrained = _pretrained_nets(config, shared, world, meta)
    return shared


def _pretrained_nets(config: BenchmarkConfig, shared: Shared, world: World,
                     meta: dict) -> Pretrained:
    """The nets the pretrained rows start from: ``config.pretrained``'s (which must be
    those a resumed file was run with, pretrained as the run's ``g2s_joint`` or
    ``g2s_visits`` says), or pretrained here, once, that way."""
    from . import hub
    from .pretrain import Pretrained, PretrainConfig, kind, pretrain

    wanted = next((PRETRAINED_STARTS[m] for m in config.methods if m in PRETRAINED_STARTS),
                  None)  # how the nets must have been pretrained (None: either way)
    if config.pretrained is None:
        if "pretrained" in meta:  # resumed: nets made anew here would not be those
            raise ValueError(f"{config.out} holds pretrained rows started from "
                             f"{meta['pretrained'].get('file') or 'nets its first run made'}: "
                             "resume them with --pretrained and the file of those nets")
        schedule = PretrainConfig(joint=wanted != "visits")
        schedule = schedule.quick() if config.quick else schedule
        start = _made_once(world, shared.device, lambda: pretrain(
            shared.G, shared.D, shared.preset.base_name, perceptual=shared.perceptual,
            config=schedule, progress=config.progress))
        meta["pretrained"] = {"file": None, **start.meta}
        return start
    start = Pretrained.load(config.pretrained, shared.G, shared.device)
    made_by = kind(start.meta)
    if None not in (made_by, wanted) and made_by != wanted:
        row = next(m for m, k in PRETRAINED_STARTS.items() if k == made_by)
        how = {"joint": ("jointly", "--joint"), "visits": ("by visits", "--no-joint")}
        raise ValueError(f"{config.pretrained} holds nets pretrained {how[made_by][0]}, not "
                         f"{how[wanted][0]}: run {row} from it, or give a file made by python "
                         f"-m g2s_lite.pretrain {how[wanted][1]}")
    made = {"file": str(config.pretrained), "sha256": hub.sha256(config.pretrained),
            **start.meta}
    before = meta.get("pretrained", {}).get("sha256", made["sha256"])
    if before != made["sha256"]:
        raise ValueError(f"{config.out} was run with other pretrained nets (sha256 {before}) "
                         f"than {config.pretrained}; resume with the same --pretrained file")
    meta["pretrained"] = made
    return start


# ----------------------------------------------------------------------------- evaluation
def _errors(depth: Tensor, faces: dict[str, Tensor], i: int, renderer: Renderer,
            valid: Tensor | None = None) -> tuple[float, float]:
    e = depth_errors(depth.reshape(1, *depth.shape[-2:]), faces["depth"][i:i + 1],
                     faces["mask"][i:i + 1], renderer, pred_valid=valid)
    return 100 * e["side"].item(), e["mad"].item()


def evaluate(config: BenchmarkConfig, world: World = SOLO) -> dict:
    """Evaluate ``config.methods`` on its test faces; write (and return) the results JSON.

    ``world``: the processes sharing the run (:func:`~g2s_lite.runtime.joined`): each does
    its :meth:`~g2s_lite.runtime.World.share` of the faces to do, rank 0 trains the
    supervised bound and pretrains (the others get its nets) and writes ``out``; every
    process returns the whole result.
    """
    from tqdm.auto import tqdm

    from .paper import get_preset

    device = world.device(None if config.device is None else str(config.device))
    preset = get_preset(config.preset, quick=config.quick)
    meta = {"command": config.command or "g2s_lite.benchmark.run", "device": str(device),
            "n_images": config.n, "seed": config.seed, "preset": preset.name,
            "version": __version__, "quick": config.quick, "torch": torch.__version__,
            "wall_seconds": 0.0, "world_size": world.size, **results.gan_record(config.gan)}
    ledger = results.Ledger.start(TABLE, config.out, config.markdown_out, meta, world,
                                  config.resume)
    faces = SynFaces(preset.image_size).sample(config.n, seed=config.seed)
    shared = prepare(config, Shared(faces, preset, device), world, ledger)
    mine = world.share([i for i in config.faces
                        if any(ledger.lacks(i, m) for m in config.methods)])
    for i in tqdm(mine, desc="benchmark", disable=not config.progress or not world.main):
        for m in [m for m in config.methods if ledger.lacks(i, m)]:
            t0 = time.perf_counter()
            p = ROWS[m].predict(i, shared)
            side, mad = _errors(p.depth, faces, i, shared.renderer, p.valid)
            if not (math.isfinite(side) and math.isfinite(mad)):
                raise RuntimeError(f"method {m} gave a non-finite error on test image {i}")
            if p.project_seconds is not None:
                ledger.face(i)["project_seconds"] = p.project_seconds
            entry = {"side": side, "mad": mad, "seconds": time.perf_counter() - t0}
            if p.view is not None:
                entry["view"] = p.view  # to hold against the true view
            ledger.add(i, m, entry, None if ROWS[m].constant else _kept(p, shared.size))
            ledger.save(joined_up=world.size == 1)
    return ledger.finish(mine)


def _kept(p: Prediction, size: int) -> Tensor:
    """A depth map as the results keep it (:func:`~g2s_lite.results.depths_path`)."""
    kept = p.depth.reshape(size, size) - 1
    if p.valid is not None:
        kept = kept.where(p.valid.reshape(size, size) > 0, torch.nan)
    return kept.to(torch.float16)


def run(n: int, world: World = SOLO, **options) -> dict:
    """:func:`evaluate` on the first ``n`` test faces, ``options`` being the other fields of
    :class:`BenchmarkConfig`: ``run(8, methods=["null_depth", "supervised"])``."""
    return evaluate(BenchmarkConfig(n, **options), world)


def main(argv: list[str] | None = None) -> int:
    prog = "python -m g2s_lite.benchmark"
    parser = results.command_parser(
        prog, "How accurate GAN2Shape and its baselines are on held-out SynFaces (Chapter 7); "
        "for how long things take, see python -m g2s_lite.bench.")
    # --faces under torchrun, whose own options --n would abbreviate
    parser.add_argument("--n", "--faces", type=int, default=50,
                        help="number of test faces (--faces under torchrun)")
    parser.add_argument("--seed", type=int, default=BENCHMARK_SEED, help="seed of the test faces")
    parser.add_argument("--out", type=Path, required=True,
                        help="results JSON (join, drop and annotate with python -m "
                        "g2s_lite.results)")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write a markdown table (rewritten after every image)")
    parser.add_argument("--resume", action="store_true", help="continue a run in --out")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        choices=METHODS, metavar="METHOD",
                        help=f"any of: {' '.join(METHODS)}; the default leaves out the "
                        "pretrained rows (g2s_joint, g2s_visits, g2s_pretrained_*)")
    parser.add_argument("--preset", default="synface64", help="GAN2Shape preset")
    parser.add_argument("--gan", default=BOOK_GAN, metavar="NAME|FILE",
                        help=f"the GAN of GAN2Shape's rows: a hub name or a {{'g_ema', 'd'}} "
                        f"file of the same layout (default {BOOK_GAN})")
    parser.add_argument("--supervised-steps", type=int, default=None,
                        help="training steps of the supervised bound (default 3000, quick 30)")
    parser.add_argument("--first", type=int, default=0,
                        help="evaluate test faces from this index on (to share a run)")
    parser.add_argument("--stop", type=int, default=None,
                        help="evaluate test faces before this index (default --n)")
    parser.add_argument("--pretrained", type=Path, default=None, metavar="FILE.pt",
                        help="nets of the pretrained rows (default: pretrained at the start; "
                        "make a file with python -m g2s_lite.pretrain)")
    parser.add_argument("--perceptual", default="auto", choices=("auto", "lpips", "ssim"),
                        help="the method's perceptual loss (auto: LPIPS where its weights are "
                        "available, else SSIM)")
    parser.add_argument("--unsup3d-dir", type=Path, default=None, metavar="DIR",
                        help="folder with unsup3d_sym.pt and unsup3d_nosym.pt (default: the "
                        "shipped weights; make them with python -m g2s_lite.unsup3d)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    quick = run_options(args)
    with joined(args.device) as world:  # meta.world_size says how many ran the command
        try:
            config = BenchmarkConfig(
                args.n, args.seed, tuple(args.methods), args.preset, quick, args.first,
                args.stop, out=args.out, markdown_out=args.markdown, resume=args.resume,
                supervised_steps=args.supervised_steps, pretrained=args.pretrained,
                gan=args.gan, unsup3d_dir=args.unsup3d_dir, perceptual=args.perceptual,
                downloads=downloads_allowed(), device=args.device, progress=not args.no_progress,
                command=command_text(prog, argv))
            result = evaluate(config, world)
        except ValueError as error:  # faces out of range, a file that cannot be resumed
            parser.error(str(error))
    if world.main:
        print(results.markdown(result, TABLE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
