"""The SynFace benchmark — Chapter 7: the paper's Tables 1 and 2, measured on our world.

Held-out SynFaces (seed :data:`BENCHMARK_SEED`, used for nothing else) are reconstructed by
every method and compared with their ground truth in the image's own view:

* trivial baselines: ``null_depth`` (a constant), ``mean_gt_depth`` (the average true depth
  of the test set, in the image view), ``ellipsoid_prior`` (the starting shape alone);
* ``supervised``: the same depth network trained directly on SynFaces ground truth (other
  faces, other seeds) — the upper bound;
* ``unsup3d_sym`` / ``unsup3d_nosym``: Unsup3d (:mod:`~g2s_lite.unsup3d`), trained beforehand
  on a collection of other SynFaces with and without the symmetry assumption, feed-forward
  (its shipped weights, or those in ``--unsup3d-dir``);
* ``g2s_sym`` / ``g2s_nosym``: the method with and without the mirror term;
* ``g2s_prior_*``: the method started from the prior variants of the paper's Table 2;
* ``g2s_pretrained``: the method (with the mirror term) with A, V, L and the encoder E
  started from nets pretrained on GAN samples (:mod:`~g2s_lite.pretrain`), as the paper's
  synthetic-face run starts — from ``--pretrained FILE``, or pretrained once at the start of
  the run. D starts at the prior, as in ``g2s_sym``: our pretrained D draws one shape for
  every face (Chapter 7), so only what the other nets learned is carried over;
* ``g2s_pretrained_nosym``, ``g2s_pretrained_prior_*``: the same ablations from that start
  (not run unless asked for with ``--methods``).

Each test image is projected onto the GAN once; every GAN2Shape variant starts from that w.
Results are written after every method of every image (:mod:`~g2s_lite.results` keeps the
files, never half written), so ``--resume`` continues an interrupted run from the last
method it finished. Beside the JSON, ``<out>.depths.pt`` keeps the
depth maps the learned methods predicted, so that a chapter can show the best and worst
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

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from . import __version__, results
from .metrics import depth_errors
from .nets import DepthNet, adam
from .paper import PAPER_TABLES, quick_length
from .render import Renderer
from .runtime import QUICK_ENV, SOLO, World, downloads_allowed, joined, quick_mode, seeded
from .synth import SynFaces
from .unsup3d import WEIGHTS_DIR, Unsup3d

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
#: The ablations again from the pretrained start (Table 2 as the paper ran it: its
#: synthetic-face runs start from pretrained nets): ``g2s_pretrained_`` + the fresh-net key
#: without ``g2s_`` → that fresh-net key.
PRETRAINED_ABLATIONS = {"g2s_pretrained_" + m.removeprefix("g2s_"): m
                        for m in ("g2s_nosym", *PRIOR_ABLATIONS)}
#: Methods whose depth is one map for every image (not kept per image).
CONSTANT_MAPS = ("null_depth", "mean_gt_depth", "ellipsoid_prior")
#: The Unsup3d rows: method → the weights file it reads (:mod:`~g2s_lite.unsup3d`).
UNSUP3D_METHODS = {"unsup3d_sym": "unsup3d_sym.pt", "unsup3d_nosym": "unsup3d_nosym.pt"}
#: What a run evaluates unless told otherwise (the pretrained ablations cost as much again:
#: ask for them with ``--methods``).
DEFAULT_METHODS = ("null_depth", "mean_gt_depth", "ellipsoid_prior", "supervised",
                   *UNSUP3D_METHODS, "g2s_sym",
                   "g2s_nosym", *PRIOR_ABLATIONS, "g2s_pretrained")
METHODS = (*DEFAULT_METHODS, *PRETRAINED_ABLATIONS)

#: How a results file's rows are listed and compared (:mod:`~g2s_lite.results`).
TABLE = results.Table(METHODS, reference="null_depth", paper=PAPER_TABLES,
                      pretrained_prefix="g2s_pretrained")


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


# ----------------------------------------------------------------------------- evaluation
def _errors(depth: Tensor, faces: dict[str, Tensor], i: int, renderer: Renderer,
            valid: Tensor | None = None) -> tuple[float, float]:
    e = depth_errors(depth.reshape(1, *depth.shape[-2:]), faces["depth"][i:i + 1],
                     faces["mask"][i:i + 1], renderer, pred_valid=valid)
    return 100 * e["side"].item(), e["mad"].item()


def _pretrained(method: str) -> bool:
    """Whether ``method`` starts from the pretrained nets."""
    return method.startswith(TABLE.pretrained_prefix)


def run(n: int, seed: int = BENCHMARK_SEED, out: str | Path | None = None,
        methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, preset: str = "synface64",
        resume: bool = False, supervised_steps: int | None = None, progress: bool = True,
        device: torch.device | str | None = None, command: str | None = None,
        markdown_out: str | Path | None = None, first: int = 0, stop: int | None = None,
        pretrained: str | Path | None = None, quick: bool = False,
        perceptual: str = "auto", world: World = SOLO,
        unsup3d_dir: str | Path | None = None, downloads: bool = False) -> dict:
    """Evaluate ``methods`` on ``n`` test faces; write (and return) the results JSON.

    Args:
        n, seed: the test faces ``SynFaces(64).sample(n, seed)``.
        out: JSON file, rewritten after every image (None: keep in memory).
        methods: keys of :data:`METHODS`.
        preset: the GAN2Shape schedule (:func:`~g2s_lite.paper.get_preset`).
        resume: keep the images already in ``out`` (same seed and preset;
            :func:`~g2s_lite.results.resume`).
        supervised_steps: training steps of the supervised bound (default
            :data:`SUPERVISED_STEPS`, cut in quick mode).
        progress: progress bars.
        device: default CUDA when available.
        command: recorded in ``meta``.
        markdown_out: also rewrite this markdown table (:func:`~g2s_lite.results.markdown`)
            after every image.
        first, stop: evaluate only test faces ``first … stop−1`` of the ``n`` (default all),
            so that two machines or cores can share a run; :func:`~g2s_lite.results.merge`
            joins the files.
            The faces and ``mean_gt_depth`` stay those of the whole ``n``.
        pretrained: the nets ``g2s_pretrained`` and its ablations start from (a file written
            by :meth:`~g2s_lite.pretrain.Pretrained.save`); None pretrains them once here with
            the default :class:`~g2s_lite.pretrain.PretrainConfig` (quick mode: its
            :meth:`~g2s_lite.pretrain.PretrainConfig.quick` cut).
        quick: every schedule cut for a quick look (the preset, the supervised bound's
            steps, the pretraining); recorded in ``meta`` and in the preset's name.
        perceptual: the kind of :class:`~g2s_lite.losses.PerceptualLoss` the method uses.
        downloads: whether that loss may download LPIPS's backbone (``"auto"``).
        world: the processes sharing the run (:func:`~g2s_lite.runtime.joined`): each does
            its :meth:`~g2s_lite.runtime.World.share` of the faces to do, rank 0 trains the
            supervised bound and pretrains (the others get its nets) and writes ``out``;
            every process returns the whole result.
        unsup3d_dir: the folder holding the Unsup3d rows' weights (:data:`UNSUP3D_METHODS`;
            default the package's shipped ones).
    """
    from tqdm.auto import tqdm

    from . import hub
    from .invert import project
    from .losses import PerceptualLoss
    from .method import reconstruct
    from .paper import Preset, get_preset
    from .pretrain import Pretrained, PretrainConfig, pretrain
    from .prior import starting_prior
    from .runtime import pick_device

    TABLE.check(methods)
    stop = n if stop is None else stop
    if not 0 <= first < stop <= n:
        raise ValueError(f"test faces {first}…{stop - 1} are not a range within the {n} test "
                         f"faces; use 0 <= --first < --stop <= --n")
    device = world.device(None if device is None else str(device))
    the_preset = get_preset(preset, quick=quick)
    size = the_preset.image_size
    renderer = Renderer(size)
    out = Path(out) if out is not None else None
    meta = {"command": command or "g2s_lite.benchmark.run", "device": str(device),
            "n_images": n, "seed": seed, "preset": the_preset.name, "version": __version__,
            "quick": quick, "torch": torch.__version__, "wall_seconds": 0.0,
            "world_size": world.size}
    images: dict[str, dict] = {}
    depths: dict[str, dict[str, Tensor]] = {}
    if resume and out is not None:
        if world.main and out.exists():
            images, depths, meta = results.resume(out, meta)
        if world.size > 1:
            images, depths, meta = world.broadcast((images, depths, meta))
        # what the processes of a stopped torchrun run had done and not yet joined
        for share in world.gather([results.resume(p, meta)[:2] for p in results.parts(out)]):
            for more, more_depths in share:
                images = results.join(images, depths, more, more_depths)
    faces = SynFaces(size).sample(n, seed=seed)
    started = time.perf_counter()
    wall0 = meta["wall_seconds"]

    def save(joined_up: bool = True) -> dict:
        """Write ``out`` (``joined_up``: all the shares are in) or this process's part file."""
        nonlocal images, depths
        images = dict(sorted(images.items(), key=lambda kv: int(kv[0])))
        depths = dict(sorted(depths.items(), key=lambda kv: int(kv[0])))
        meta["wall_seconds"] = wall0 + time.perf_counter() - started
        # every row the file holds, not only this run's: a --resume with other --methods adds
        # rows to a results file
        result = {"rows": results.rows(images, TABLE), "meta": meta, "images": images}
        if joined_up and world.main:
            results.write(result, depths, out, markdown_out, TABLE)
        elif not joined_up and out is not None:
            results.write(result, depths, results.part_path(out, world.rank))
        return result

    gan_methods = [m for m in methods if m.startswith("g2s")]
    G = D = None
    if gan_methods:
        G, D = hub.load("synface64", device=device)
        G.mean_latent()
    supervised = None
    if "supervised" in methods and any("supervised" not in images.get(str(i), {})
                                       for i in range(first, stop)):
        steps = (supervised_steps if supervised_steps is not None
                 else quick_length(SUPERVISED_STEPS) if quick else SUPERVISED_STEPS)
        t0 = time.perf_counter()
        if world.size == 1:
            supervised = train_supervised(steps, size, progress=progress, device=device)
        else:  # one process trains, the others take its net
            supervised = world.broadcast(
                train_supervised(steps, size, progress=progress, device=device)
                if world.main else None).to(device)
        meta["supervised_training_seconds"] = time.perf_counter() - t0
        meta["supervised_steps"] = steps
    perceptual = PerceptualLoss(perceptual, downloads=downloads) if gan_methods else None
    unsup3d = {}
    for m in methods:
        if m in UNSUP3D_METHODS:
            path = Path(unsup3d_dir or WEIGHTS_DIR) / UNSUP3D_METHODS[m]
            unsup3d[m] = Unsup3d.load(path, device)
            meta.setdefault("unsup3d", {})[m] = {"file": str(path), "sha256": hub.sha256(path),
                                                 **{k: v for k, v in unsup3d[m].meta.items()
                                                    if k in ("command", "train_seconds",
                                                             "device", "config")}}
    start = None
    if any(_pretrained(m) and m not in images.get(str(i), {})
           for m in methods for i in range(first, stop)):
        if pretrained is not None:
            start = Pretrained.load(pretrained, G, device)
            made = {"file": str(pretrained), "sha256": hub.sha256(pretrained), **start.meta}
            before = meta.get("pretrained", {}).get("sha256", made["sha256"])
            if before != made["sha256"]:
                raise ValueError(f"{out} was run with other pretrained nets (sha256 {before}) "
                                 f"than {pretrained}; resume with the same --pretrained file")
            meta["pretrained"] = made
        elif world.size == 1:
            start = pretrain(G, D, the_preset.base_name, perceptual=perceptual,
                             config=PretrainConfig().quick() if quick else PretrainConfig(),
                             progress=progress)
            meta["pretrained"] = {"file": None, **start.meta}
        else:  # one process pretrains, the others take its nets
            start = world.broadcast(
                pretrain(G, D, the_preset.base_name, perceptual=perceptual,
                         config=PretrainConfig().quick() if quick else PretrainConfig(),
                         progress=progress) if world.main else None).to(device)
            meta["pretrained"] = {"file": None, **start.meta}
    # the average true depth where each face covers the pixel (uncovered pixels hold the
    # renderer's invalid depth, which is no depth at all)
    covered = (faces["depth"] <= renderer.valid_max_depth).float()
    mean_depth = ((faces["depth"] * covered).sum(0) / covered.sum(0).clamp(min=1)
                  ).where(covered.sum(0) > 0, torch.ones(size, size))
    null = torch.ones(size, size)
    ellipsoid = starting_prior(the_preset)  # the method's own start
    # each GAN2Shape variant's schedule, the depth its D starts at (None: the preset's own
    # prior) and the pretrained nets it starts from (None: fresh nets), decided once for the run
    setups: dict[str, tuple[Preset, Tensor | None, Pretrained | None]] = {}
    for m in gan_methods:
        variant = PRETRAINED_ABLATIONS.get(m, m)  # the fresh-net method it repeats
        config = replace(the_preset, flip=(False,)) if variant == "g2s_nosym" else the_preset
        prior = None
        if variant in PRIOR_ABLATIONS:
            kind, extra = PRIOR_ABLATIONS[variant]
            prior = starting_prior(the_preset, kind, **extra(size))
        setups[m] = (config, prior, start if _pretrained(m) else None)

    todo_faces = [i for i in range(first, stop)
                  if any(m not in images.get(str(i), {}) for m in methods)]
    mine = world.share(todo_faces)
    for i in tqdm(mine, desc="benchmark", disable=not progress or not world.main):
        record = images.setdefault(str(i), {})
        todo = [m for m in methods if m not in record]
        w = None
        for m in todo:
            t0 = time.perf_counter()
            valid = view = None
            if m == "null_depth":
                depth = null
            elif m == "mean_gt_depth":
                depth = mean_depth
            elif m == "ellipsoid_prior":
                depth = ellipsoid
            elif m == "supervised":
                with torch.no_grad():
                    depth = supervised(faces["image"][i:i + 1].to(device)).cpu()
            elif m in UNSUP3D_METHODS:  # the canonical depth warped by the predicted view
                seen = unsup3d[m].predict(faces["image"][i:i + 1].to(device))
                depth, valid = seen["depth"].cpu(), seen["valid"].cpu()
            else:
                image = faces["image"][i:i + 1].to(device)
                if w is None:
                    tp = time.perf_counter()
                    w, _ = project(image, G, D, the_preset.project, progress=False)
                    record["project_seconds"] = time.perf_counter() - tp
                config, prior, nets_from = setups[m]
                if nets_from is None:  # fresh nets, D at the prior
                    start_with = dict(prior=prior)
                else:  # D fresh at the prior, A, V, L and E pretrained
                    start_with = dict(nets=nets_from.starting_nets(config, i, prior),
                                      encoder=nets_from.encoder)
                rec = reconstruct(image, G, D, w=w, preset=config, progress=False, seed=i,
                                  perceptual=perceptual, **start_with)
                depth, valid = rec.depth.cpu(), rec.valid.cpu()
                view = rec.view[0].tolist()  # to hold against the true view
            side_, mad_ = _errors(depth, faces, i, renderer, valid)
            if not (math.isfinite(side_) and math.isfinite(mad_)):
                raise RuntimeError(f"method {m} gave a non-finite error on test image {i}")
            record[m] = {"side": side_, "mad": mad_, "seconds": time.perf_counter() - t0}
            if view is not None:
                record[m]["view"] = view
            if m not in CONSTANT_MAPS:
                kept = depth.reshape(size, size) - 1
                if valid is not None:
                    kept = kept.where(valid.reshape(size, size) > 0, torch.nan)
                depths.setdefault(str(i), {})[m] = kept.to(torch.float16)
            save(joined_up=world.size == 1)
    # join the shares: every process gets them all, rank 0 writes the file
    for more, more_depths in world.gather(({str(i): images[str(i)] for i in mine},
                                           {str(i): depths.get(str(i), {}) for i in mine})):
        images = results.join(images, depths, more, more_depths)
    result = save()
    world.barrier()  # the joined file is written before any part file goes
    if out is not None:
        for part in results.parts(out):
            results.remove(part)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m g2s_lite.benchmark",
        description="Evaluate GAN2Shape and baselines on held-out SynFaces (Chapter 7).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
                        "g2s_pretrained_* ablations")
    parser.add_argument("--preset", default="synface64", help="GAN2Shape preset")
    parser.add_argument("--supervised-steps", type=int, default=None,
                        help="training steps of the supervised bound (default 3000, quick 30)")
    parser.add_argument("--device", default=None, help="torch device (default cuda if any)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--first", type=int, default=0,
                        help="evaluate test faces from this index on (to share a run)")
    parser.add_argument("--stop", type=int, default=None,
                        help="evaluate test faces before this index (default --n)")
    parser.add_argument("--pretrained", type=Path, default=None, metavar="FILE.pt",
                        help="nets for g2s_pretrained (default: pretrain them at the start; "
                        "make a file with python -m g2s_lite.pretrain)")
    parser.add_argument("--quick", action="store_true",
                        help=f"cut every schedule for a quick look (also when {QUICK_ENV}=1)")
    parser.add_argument("--perceptual", default="auto", choices=("auto", "lpips", "ssim"),
                        help="the method's perceptual loss (auto: LPIPS where its weights are "
                        "available, else SSIM)")
    parser.add_argument("--unsup3d-dir", type=Path, default=None, metavar="DIR",
                        help="folder with unsup3d_sym.pt and unsup3d_nosym.pt (default: the "
                        "shipped weights; make them with python -m g2s_lite.unsup3d)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python -m g2s_lite.benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
    with joined(args.device) as world:  # meta.world_size says how many ran the command
        try:
            result = run(args.n, args.seed, args.out, args.methods, args.preset, args.resume,
                         args.supervised_steps, not args.no_progress, args.device, command,
                         args.markdown, args.first, args.stop, args.pretrained,
                         quick=args.quick or quick_mode(), perceptual=args.perceptual,
                         world=world, unsup3d_dir=args.unsup3d_dir,
                         downloads=downloads_allowed())
        except ValueError as error:  # faces out of range, a file that cannot be resumed
            parser.error(str(error))
    if world.main:
        print(results.markdown(result, TABLE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
