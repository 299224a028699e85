"""The SynFace benchmark — Chapter 7: the paper's Tables 1 and 2, measured on our world.

Held-out SynFaces (seed :data:`BENCHMARK_SEED`, used for nothing else) are reconstructed by
every method and compared with their ground truth in the image's own view (DESIGN §6):

* trivial baselines: ``null_depth`` (a constant), ``mean_gt_depth`` (the average true depth
  of the test set, in the image view), ``ellipsoid_prior`` (the starting shape alone);
* ``supervised``: the same depth network trained directly on SynFaces ground truth (other
  faces, other seeds) — the upper bound;
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
Results are written after every image, so ``--resume`` continues an interrupted run. Beside
the JSON, ``<out>.depths.pt`` keeps the depth maps the learned methods predicted, so that a
chapter can show the best and worst reconstructions without re-running them, and each
GAN2Shape entry keeps the ``view`` its V found (pitch, yaw, roll in radians, translation) to
hold against the true one.

    python -m g2s_lite.benchmark --n 50 --out results/synface64.json --markdown results/synface64.md
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from . import __version__
from .metrics import depth_errors
from .nets import DepthNet, adam
from .render import Renderer
from .synth import SynFaces

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
#: What ``meta`` records of the supervised bound's training: it belongs with the row, so
#: :func:`drop` removes it with the last ``supervised`` entry and :func:`merge` brings it in.
SUPERVISED_META = ("supervised_training_seconds", "supervised_steps")
#: What a run evaluates unless told otherwise (the pretrained ablations cost as much again:
#: ask for them with ``--methods``).
DEFAULT_METHODS = ("null_depth", "mean_gt_depth", "ellipsoid_prior", "supervised", "g2s_sym",
                   "g2s_nosym", *PRIOR_ABLATIONS, "g2s_pretrained")
METHODS = (*DEFAULT_METHODS, *PRETRAINED_ABLATIONS)

#: The paper's numbers on BFM faces (SIDE ×10⁻², MAD °), DESIGN §6 — for comparison by ratio.
PAPER = {
    "supervised": (0.419, 10.83), "null_depth": (2.723, 43.22),
    "mean_gt_depth": (1.978, 22.99), "g2s_sym": (0.756, 14.81), "g2s_nosym": (1.023, 17.09),
    "g2s_prior_asymmetric": (0.769, 14.95), "g2s_prior_shift6": (0.767, 14.93),
    "g2s_prior_shift4": (0.775, 15.07), "g2s_prior_weak": (0.764, 14.97),
    "g2s_prior_flat": (1.021, 20.46),
}


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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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
    return method == "g2s_pretrained" or method in PRETRAINED_ABLATIONS


def _check_methods(methods) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")


def _rows(images: dict[str, dict], methods: list[str] | None = None) -> list[dict]:
    """One row per method (default: every method some image holds, in :data:`METHODS`
    order), averaged over the images that hold it."""
    if methods is None:
        methods = [m for m in METHODS if any(m in r for r in images.values())]
    rows = []
    for m in methods:
        done = [r[m] for r in images.values() if m in r]
        if not done:
            continue
        n = len(done)
        rows.append({"method": m, "side": sum(d["side"] for d in done) / n,
                     "mad": sum(d["mad"] for d in done) / n, "n": n,
                     "seconds": sum(d["seconds"] for d in done) / n})
    return rows


def _write(result: dict, depths: dict, out: Path | None, markdown_out: str | Path | None
           ) -> None:
    """Write a results file, its depth sidecar and its markdown table; the JSON and the
    sidecar are replaced whole (written aside, then renamed), so an interrupted write never
    leaves half a file for ``--resume`` to read."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(out)
        tmp = out.with_suffix(".depths.tmp")
        torch.save(depths, tmp)
        tmp.replace(depths_path(out))
    if markdown_out is not None:
        Path(markdown_out).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_out).write_text(markdown(result))


def _read(out: Path) -> tuple[dict, dict]:
    """A results file and its depth sidecar (empty when there is none), as :func:`_write`
    left them."""
    depths = (torch.load(depths_path(out), weights_only=True) if depths_path(out).exists()
              else {})
    return json.loads(out.read_text()), depths


def depths_path(out: str | Path) -> Path:
    """Where :func:`run` keeps the predicted depth maps of a results file ``out``.

    ``torch.load`` gives ``{image index: {method: S×S}}`` for the methods that are not
    constant maps, holding depth − 1 in float16 (exact to 1e-4 over the depth range; a
    quarter of the size of float32 depth) and NaN where the reconstruction does not cover
    the pixel. ``1 + stored.float()`` is the depth again.
    """
    out = Path(out)
    return out.with_name(out.stem + ".depths.pt")


def run(n: int, seed: int = BENCHMARK_SEED, out: str | Path | None = None,
        methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, preset: str = "synface64",
        resume: bool = False, supervised_steps: int | None = None, progress: bool = True,
        device: torch.device | str | None = None, command: str | None = None,
        markdown_out: str | Path | None = None, first: int = 0, stop: int | None = None,
        pretrained: str | Path | None = None) -> dict:
    """Evaluate ``methods`` on ``n`` test faces; write (and return) the results JSON.

    Args:
        n, seed: the test faces ``SynFaces(64).sample(n, seed)``.
        out: JSON file, rewritten after every image (None: keep in memory).
        methods: keys of :data:`METHODS`.
        preset: the GAN2Shape schedule (scaled in quick mode, :func:`~g2s_lite.refine.get_preset`).
        resume: keep the images already in ``out`` (same seed and preset).
        supervised_steps: training steps of the supervised bound (default 3000; quick: 30).
        progress: progress bars.
        device: default CUDA when available.
        command: recorded in ``meta``.
        markdown_out: also rewrite this markdown table (:func:`markdown`) after every image.
        first, stop: evaluate only test faces ``first … stop−1`` of the ``n`` (default all),
            so that two machines or cores can share a run; :func:`merge` joins the files.
            The faces and ``mean_gt_depth`` stay those of the whole ``n``.
        pretrained: the nets ``g2s_pretrained`` and its ablations start from (a file written
            by :meth:`~g2s_lite.pretrain.Pretrained.save`); None pretrains them once here with
            the default :class:`~g2s_lite.pretrain.PretrainConfig` (quick mode: its
            :meth:`~g2s_lite.pretrain.PretrainConfig.quick` cut).
    """
    from tqdm.auto import tqdm

    from . import hub
    from .invert import project
    from .losses import PerceptualLoss
    from .pretrain import Pretrained, pretrain
    from .refine import Preset, get_preset, reconstruct
    from .runtime import pick_device, quick_mode

    _check_methods(methods)
    stop = n if stop is None else stop
    if not 0 <= first < stop <= n:
        raise ValueError(f"test faces {first}…{stop - 1} are not a range within the {n} test "
                         f"faces; use 0 <= --first < --stop <= --n")
    device = pick_device(None if device is None else str(device))
    the_preset = get_preset(preset)
    size = the_preset.image_size
    renderer = Renderer(size)
    out = Path(out) if out is not None else None
    meta = {"command": command or "g2s_lite.benchmark.run", "device": str(device),
            "n_images": n, "seed": seed, "preset": the_preset.name, "version": __version__,
            "quick": quick_mode(), "torch": torch.__version__, "wall_seconds": 0.0}
    images: dict[str, dict] = {}
    depths: dict[str, dict[str, Tensor]] = {}
    if resume and out is not None and out.exists():
        old, depths = _read(out)
        if old["meta"].get("seed") != seed or old["meta"].get("preset") != the_preset.name:
            raise ValueError(f"{out} holds a run with seed {old['meta'].get('seed')} and preset "
                             f"{old['meta'].get('preset')!r}; resume needs the same (or drop "
                             "--resume to start again)")
        images, meta["wall_seconds"] = old["images"], old["meta"]["wall_seconds"]
        # every command that wrote into the file stays on record
        meta["earlier_commands"] = (old["meta"].get("earlier_commands", [])
                                    + [old["meta"]["command"]])
        for key in ("merged_from", "merged_wall_seconds", "pretrained", "dropped", "notes",
                    *SUPERVISED_META):
            if key in old["meta"]:
                meta[key] = old["meta"][key]
    faces = SynFaces(size).sample(n, seed=seed)
    started = time.perf_counter()
    wall0 = meta["wall_seconds"]

    def save() -> dict:
        meta["wall_seconds"] = wall0 + time.perf_counter() - started
        result = {"rows": _rows(images, list(methods)), "meta": meta, "images": images}
        _write(result, depths, out, markdown_out)
        return result

    gan_methods = [m for m in methods if m.startswith("g2s")]
    G = D = None
    if gan_methods:
        G, D = hub.load("synface64", device=device)
        G.mean_latent()
    supervised = None
    if "supervised" in methods and any("supervised" not in images.get(str(i), {})
                                       for i in range(first, stop)):
        steps = supervised_steps if supervised_steps is not None else (30 if quick_mode() else 3000)
        t0 = time.perf_counter()
        supervised = train_supervised(steps, size, progress=progress, device=device)
        meta["supervised_training_seconds"] = time.perf_counter() - t0
        meta["supervised_steps"] = steps
    perceptual = PerceptualLoss("auto") if gan_methods else None
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
        else:
            start = pretrain(G, D, the_preset.base_name, perceptual=perceptual,
                             progress=progress)
            meta["pretrained"] = {"file": None, **start.meta}
    # the average true depth where each face covers the pixel (uncovered pixels hold the
    # renderer's invalid depth, which is no depth at all)
    covered = (faces["depth"] <= renderer.valid_max_depth).float()
    mean_depth = ((faces["depth"] * covered).sum(0) / covered.sum(0).clamp(min=1)
                  ).where(covered.sum(0) > 0, torch.ones(size, size))
    null = torch.ones(size, size)
    ellipsoid = the_preset.starting_prior()  # the method's own start
    # each GAN2Shape variant's schedule, the depth its D starts at (None: the preset's own
    # prior) and the pretrained nets it starts from (None: fresh nets), decided once for the run
    setups: dict[str, tuple[Preset, Tensor | None, Pretrained | None]] = {}
    for m in gan_methods:
        variant = PRETRAINED_ABLATIONS.get(m, m)  # the fresh-net method it repeats
        config = replace(the_preset, flip=(False,)) if variant == "g2s_nosym" else the_preset
        prior = None
        if variant in PRIOR_ABLATIONS:
            kind, extra = PRIOR_ABLATIONS[variant]
            prior = the_preset.starting_prior(kind, **extra(size))
        elif _pretrained(m) and start is not None:
            prior = start.depth_start(the_preset)
        setups[m] = (config, prior, start if _pretrained(m) else None)

    for i in tqdm(range(first, stop), desc="benchmark", disable=not progress):
        record = images.setdefault(str(i), {})
        todo = [m for m in methods if m not in record]
        if not todo:
            continue
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
            else:
                image = faces["image"][i:i + 1].to(device)
                if w is None:
                    tp = time.perf_counter()
                    w, _ = project(image, G, D, steps=the_preset.project_steps, progress=False)
                    record["project_seconds"] = time.perf_counter() - tp
                config, prior, nets_from = setups[m]
                rec = reconstruct(image, G, D, w=w, preset=config, progress=False, seed=i,
                                  perceptual=perceptual, prior=prior, start=nets_from).to("cpu")
                depth, valid = rec.depth, rec.valid
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
        save()
    return save()


def merge(out: str | Path, other: str | Path, markdown_out: str | Path | None = None) -> dict:
    """Join the results file ``other`` into ``out`` (and their depth maps): faces and methods
    that ``out`` lacks are added, entries it already has are kept. Both must be runs over the
    same test faces (seed, ``--n``) and preset — e.g. two shares made with ``--first/--stop``,
    or other methods run alongside. ``other``'s commands (the first and any ``--resume``) are
    recorded in ``meta.merged_from`` once each, and its wall time in
    ``meta.merged_wall_seconds``, so that merging a share again after resuming it adds only
    the faces and the time that are new."""
    out, other = Path(out), Path(other)
    (a, da), (b, db) = _read(out), _read(other)
    for key in ("seed", "preset", "n_images", "quick"):
        if a["meta"].get(key) != b["meta"].get(key):
            raise ValueError(f"cannot merge {other} into {out}: their {key} differ "
                             f"({b['meta'].get(key)!r} vs {a['meta'].get(key)!r}); only runs "
                             "over the same test faces and preset can be joined")
    nets = [r["meta"].get("pretrained", {}).get("sha256") for r in (a, b)]
    if None not in nets and nets[0] != nets[1]:
        raise ValueError(f"cannot merge {other} into {out}: g2s_pretrained started from "
                         f"different pretrained nets (sha256 {nets[1]} vs {nets[0]})")
    if "pretrained" in b["meta"]:
        a["meta"].setdefault("pretrained", b["meta"]["pretrained"])
    for key in SUPERVISED_META:
        if key in b["meta"]:
            a["meta"].setdefault(key, b["meta"][key])
    for i, record in b["images"].items():
        mine = a["images"].setdefault(i, {})
        for m, v in record.items():
            if m not in mine:
                mine[m] = v
                if m in db.get(i, {}):
                    da.setdefault(i, {})[m] = db[i][m]
    a["images"] = dict(sorted(a["images"].items(), key=lambda kv: int(kv[0])))
    a["rows"] = _rows(a["images"])
    # a resumed share was written by several commands (--resume makes each one differ)
    share = b["meta"].get("earlier_commands", []) + [b["meta"]["command"]]
    merged = a["meta"].setdefault("merged_from", [])
    merged += [c for c in b["meta"].get("merged_from", []) + share if c not in merged]
    # a share merged again after --resume carries its earlier wall time too: count only the
    # rest, keyed by the share's first command (older files keyed it by whichever came last)
    counted = a["meta"].setdefault("merged_wall_seconds", {})
    before = max(counted.pop(c, 0) for c in share)
    a["meta"]["wall_seconds"] += b["meta"]["wall_seconds"] - before
    counted[share[0]] = b["meta"]["wall_seconds"]
    _write(a, da, out, markdown_out)
    return a


def drop(out: str | Path, methods: list[str], reason: str,
         markdown_out: str | Path | None = None) -> dict:
    """Remove ``methods``' results (and depth maps) from ``out``, so that ``--resume`` or
    ``--merge`` fills them again — after a change to the code that made them. ``reason`` is
    kept in ``meta.dropped``; the pretrained nets' record goes with the last row made from
    them, and the supervised bound's training record with the last supervised entry."""
    _check_methods(methods)
    out = Path(out)
    result, depths = _read(out)
    for i, record in result["images"].items():
        for m in methods:
            record.pop(m, None)
            depths.get(i, {}).pop(m, None)
    if not any(_pretrained(m) for r in result["images"].values() for m in r):
        result["meta"].pop("pretrained", None)  # no row left that was made from those nets
    if not any("supervised" in r for r in result["images"].values()):
        for key in SUPERVISED_META:  # nor one made by that training
            result["meta"].pop(key, None)
    result["meta"].setdefault("dropped", []).append({"methods": list(methods), "reason": reason})
    result["rows"] = _rows(result["images"])
    _write(result, depths, out, markdown_out)
    return result


def add_note(out: str | Path, text: str, markdown_out: str | Path | None = None,
             replace: bool = False, number: int | None = None) -> dict:
    """Append ``text`` to ``meta.notes`` of ``out`` (shown under the markdown table): what a
    reader must know about how some rows were made. With ``replace`` it becomes the only
    note (when re-run rows have made the earlier notes wrong); with ``number`` it takes the
    place of that note alone (1 is the first), the others kept as they are."""
    if replace and number is not None:
        raise ValueError("give replace or number, not both: one replaces every note, the "
                         "other one of them")
    out = Path(out)
    result, depths = _read(out)
    notes = result["meta"].setdefault("notes", [])
    if number is not None:
        if not 1 <= number <= len(notes):
            raise ValueError(f"{out} has {len(notes)} note(s), so there is no note {number} "
                             f"to replace: number them from 1 (or append a new one)")
        notes[number - 1] = text
    else:
        if replace:
            notes.clear()
        notes.append(text)
    _write(result, depths, out, markdown_out)
    return result


def markdown(result: dict) -> str:
    """The results as a markdown table, with ratios to ``null_depth`` beside the paper's."""
    rows = {r["method"]: r for r in result["rows"]}
    null = rows.get("null_depth")
    meta = result["meta"]
    done = len(result["images"]) if "images" in result else meta["n_images"]
    faces = (f"{meta['n_images']} test faces" if done >= meta["n_images"] else
             f"{done} of {meta['n_images']} test faces done; `--resume` continues")
    lines = [f"# SynFace benchmark ({faces}, seed {meta['seed']}, preset {meta['preset']})", "",
             f"Command: `{meta['command']}`  ",
             *[f"Earlier command: `{c}`  " for c in meta.get("earlier_commands", [])],
             *[f"Merged with (same test faces and preset, run alongside): `{c}`  "
               for c in meta.get("merged_from", [])],
             f"Device: {meta['device']}; wall time {meta['wall_seconds'] / 60:.1f} min; "
             f"g2s_lite {meta['version']}, torch {meta.get('torch', '?')}.", "",
             "SIDE is ×10⁻², MAD in degrees; ratios are to `null_depth` (the paper's in "
             "brackets, from its BFM Tables 1 and 2).", "",
             "| method | SIDE | MAD | SIDE ratio (paper) | MAD ratio (paper) | n | s/image |",
             "|---|---|---|---|---|---|---|"]
    p_null = PAPER["null_depth"]
    for m in METHODS:
        if m not in rows:
            continue
        r = rows[m]
        ratio = ("—", "—") if null is None else (f"{r['side'] / null['side']:.2f}",
                                                 f"{r['mad'] / null['mad']:.2f}")
        paper = PAPER.get(m)
        pr = ("", "") if paper is None else (f" ({paper[0] / p_null[0]:.2f})",
                                            f" ({paper[1] / p_null[1]:.2f})")
        lines.append(f"| {m} | {r['side']:.3f} | {r['mad']:.2f} | {ratio[0]}{pr[0]} | "
                     f"{ratio[1]}{pr[1]} | {r['n']} | {r['seconds']:.1f} |")
    if len({r["n"] for r in rows.values()}) > 1:
        lines += ["", "Rows with different n average over different faces: compare such rows "
                  "face by face (Chapter 7)."]
    lines += [f"\nDropped and re-run: {', '.join(d['methods'])} ({d['reason']})."
              for d in meta.get("dropped", [])]
    lines += [f"\nNote: {text}" for text in meta.get("notes", [])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m g2s_lite.benchmark",
        description="Evaluate GAN2Shape and baselines on held-out SynFaces (DESIGN §6).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--n", type=int, default=50, help="number of test faces")
    parser.add_argument("--seed", type=int, default=BENCHMARK_SEED, help="seed of the test faces")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
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
    parser.add_argument("--merge", type=Path, default=None, metavar="OTHER.json",
                        help="join the results OTHER.json into --out and stop (no evaluation)")
    parser.add_argument("--drop", nargs="+", default=None, choices=METHODS, metavar="METHOD",
                        help="remove these methods' results from --out (after a change to "
                        "the code that made them; needs --reason) and stop")
    parser.add_argument("--reason", default=None, help="why --drop removes them (kept in meta)")
    parser.add_argument("--note", default=None, metavar="TEXT",
                        help="append TEXT to the notes of --out (shown under the table) and stop")
    replacing = parser.add_mutually_exclusive_group()
    replacing.add_argument("--replace-notes", action="store_true",
                           help="with --note: TEXT replaces the notes --out has (they went "
                           "stale)")
    replacing.add_argument("--replace-note", type=int, default=None, metavar="K",
                           help="with --note: TEXT replaces note K alone (1 is the first)")
    args = parser.parse_args(argv)
    if (args.replace_notes or args.replace_note is not None) and args.note is None:
        parser.error("--replace-notes and --replace-note need --note (the text that "
                     "replaces them)")
    edits = [args.merge is not None, args.drop is not None, args.note is not None]
    if any(edits):
        if sum(edits) > 1:
            parser.error("give one of --merge, --drop, --note at a time")
        if args.drop is not None and not args.reason:
            parser.error("--drop needs --reason (it is kept in the results' meta)")
        if not args.out.exists():
            parser.error(f"{args.out} does not exist: --merge, --drop and --note edit a results file")
        try:
            result = (merge(args.out, args.merge, args.markdown) if args.merge is not None else
                      drop(args.out, args.drop, args.reason, args.markdown)
                      if args.drop is not None else
                      add_note(args.out, args.note, args.markdown, args.replace_notes,
                               args.replace_note))
        except ValueError as error:  # a note that is not there, a share that does not fit
            parser.error(str(error))
        print(markdown(result))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python -m g2s_lite.benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
    result = run(args.n, args.seed, args.out, args.methods, args.preset, args.resume,
                 args.supervised_steps, not args.no_progress, args.device, command,
                 args.markdown, args.first, args.stop, args.pretrained)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
