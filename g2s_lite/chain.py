"""Where the 3D comes from — the chain from the GAN to the relief, link by link (Chapter 7).

A reconstruction turns a GAN's knowledge of how faces look from other sides into a depth
map through a chain of links, and it is only as strong as its weakest one:

(a) **the GAN's spread**: G must draw faces turned as far as the data are (yaw and pitch of
    its samples against SynFaces');
(b) **its reach**: the same face truly turned must stay turned when projected into G (the
    slope of the projection's yaw on the true yaw, 1 for a perfect reach);
(c) **step 2**: each projected sample should turn as its pseudo sample was asked to — the
    slope of the pseudo samples' yaw on the asked yaw (what the current shape can show),
    of the projected samples' (what the encoder E gets out of G), and of samples whose
    latents are optimised one by one instead of encoded (what G itself could give: the
    encoder's limit told from the GAN's);
(d) **step 3**: V must read the projected samples' turn (the slope of V's yaw on the asked
    yaw);
(e) **the relief**: amplitude and correlation of the log depth against the truth
    (:func:`~g2s_lite.metrics.relief`), SIDE and MAD, at the prior and after each stage;
(f) **step 3 on the truth**, the GAN left out (``--truth``): from the same start, step 1 and
    then step 3 fed the face *truly* turned and relit in place of the projected samples —
    what a perfect GAN and encoder would give step 3, so the relief it reaches is step 3's
    own ceiling at the preset's schedule.

A yaw is read by the package's pose regressor
(:func:`~g2s_lite.pose_regressor.train_regressor`, trained on SynFaces apart from every
face measured here), so the same ruler reads every image; V reads in its own units.
``python -m g2s_lite.chain --out results/chain_synface64.json`` measures the chain on the
tuning faces (never the test faces: what the chain shows is used to change the method).
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from . import __version__, results
from .gan import Discriminator, Generator, frozen
from .invert import FramedGAN, add_offset, framed, project, step2_loss
from .metrics import depth_errors, relief
from .nets import save_file
from .paper import Preset, get_preset, quick_length
from .gan_quality import sample_images, variety
from .hub import BOOK_GAN
from .pose_regressor import (REGRESSOR_STEPS, PoseLightRegressor, RegressorOutputs,
                             regressor_outputs, synface_images, train_regressor)
from .prior import starting_prior
from .pseudo import pseudo_poses
from .render import Renderer
from .runtime import SOLO, World, add_run_options, command_text, joined, run_options
from .synth import SynFaces, render_turned

#: Seed of the tuning faces: what the method is tuned and diagnosed on (never the test
#: faces, :data:`~g2s_lite.benchmark.BENCHMARK_SEED`).
TUNING_SEED = 555
#: Yaws (°) the same face is truly turned by for link (b), about its own pose.
REACH_TURNS = (-30.0, -15.0, 0.0, 15.0, 30.0)
#: GAN samples and SynFaces whose spread of pose link (a) compares.
SPREAD_SAMPLES = 1000
#: Steps of the per-sample latent optimisation of link (c), and its Adam rate.
LATENT_STEPS, LATENT_LR = 200, 0.01
#: Samples of each face whose images a run keeps (pseudo, projected, optimised), for figures.
KEPT_SAMPLES = 8


# ----------------------------------------------------------------------------- a slope
def slope(x: Tensor, y: Tensor) -> dict[str, float]:
    """Least-squares line of ``y`` on ``x`` (``n`` each): its ``slope`` (1: y follows x
    fully, 0: not at all) and the ``correlation`` of the two.

    >>> x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    >>> {k: round(v, 3) for k, v in slope(x, 0.5 * x + 3).items()}
    {'slope': 0.5, 'correlation': 1.0}
    """
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    sxx, syy = (x * x).sum(), (y * y).sum()
    if sxx <= 0:
        raise ValueError("slope: x does not vary; ask for more than one yaw")
    return {"slope": float((x * y).sum() / sxx),
            "correlation": float((x * y).sum() / (sxx * syy).sqrt().clamp(min=1e-30))}


def yaw_of(regressor: PoseLightRegressor, images: Tensor) -> Tensor:
    """The regressor's yaw (°) of ``images`` ``n×3×S×S``: ``n``."""
    return regressor_outputs(regressor, images.detach().float().cpu()).predictions[:, 0]


# ----------------------------------------------------------------------------- (a) spread
@torch.no_grad()
def gan_spread(G: Generator, regressor: PoseLightRegressor, n: int = SPREAD_SAMPLES,
               seed: int = TUNING_SEED) -> dict[str, float]:
    """Link (a): the standard deviation of yaw and pitch (°) that the regressor reads on
    ``n`` GAN samples (z ~ N(0, I), no truncation; :func:`~g2s_lite.gan_quality.sample_images`)
    and on ``n`` SynFaces of ``seed`` (:func:`~g2s_lite.gan_quality.variety` of each), and the
    SynFaces' true spread: ``gan_yaw``, ``gan_pitch``, ``data_yaw``, ``data_pitch``,
    ``true_yaw``, ``true_pitch``."""
    images, true = synface_images(n, seed, G.size)
    spreads = {"gan": variety(regressor_outputs(regressor, sample_images(G, n, seed).cpu())),
               "data": variety(regressor_outputs(regressor, images)),
               "true": variety(RegressorOutputs(true, true))}
    return {f"{who}_{angle}": spread[angle]["std"] for who, spread in spreads.items()
            for angle in ("yaw", "pitch")}


# ----------------------------------------------------------------------------- (b) reach
def reach(faces: dict[str, Tensor], i: int, G: Generator | FramedGAN, D: Discriminator | None,
          regressor: PoseLightRegressor, preset: Preset, turns=REACH_TURNS,
          seed: int = 0) -> dict[str, float]:
    """Link (b): face ``i`` truly turned by each of ``turns`` (° of yaw about its own pose,
    its own light; :func:`~g2s_lite.synth.render_turned`) and projected into G with the
    preset's schedule: the slope of the projections' yaw on the turned faces' yaw (both
    read by the regressor), their correlation, and the mean absolute difference (°)."""
    views = torch.zeros(len(turns), 6)
    views[:, 1] = torch.deg2rad(torch.tensor(turns))
    turned, _ = render_turned(faces, views, faces["light"][i:i + 1].expand(len(turns), -1), i)
    device = framed(G).device
    _, projected = project(turned.to(device), G, D, preset.project, seed=seed, progress=False)
    truth, got = yaw_of(regressor, turned), yaw_of(regressor, projected)
    return {**slope(truth, got), "error": float((got - truth).abs().mean())}


# ----------------------------------------------------------------------------- (c) latents
def optimised_latents(G: Generator | FramedGAN, D: Discriminator | None, w: Tensor,
                      pseudo: Tensor, masks: Tensor, preset: Preset, stage: int = -1,
                      steps: int = LATENT_STEPS, lr: float = LATENT_LR) -> Tensor:
    """Link (c)'s other half: each pseudo sample's own latent offset Δwᵢ (``B×style_dim``),
    optimised with step 2's loss (:func:`~g2s_lite.invert.step2_loss`) from 0 by Adam,
    instead of encoded by E: what G can show of the asked turn, E aside. Returns the
    projected samples ``G(w + Δwᵢ)`` ``B×3×S×S``."""
    gan = framed(G)
    config = preset.for_stage(stage)[1]  # stage 0 has its own schedule, later stages share one
    offset = torch.zeros(len(pseudo), gan.G.style_dim, device=pseudo.device,
                         requires_grad=True)
    opt = torch.optim.Adam([offset], lr=lr)
    with frozen(gan.G, D):
        for _ in range(steps):
            image = gan.generate(add_offset(w, offset), pseudo.shape[-1])
            loss = step2_loss(image, pseudo, masks, offset, D, config)["loss"].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return gan.generate(add_offset(w, offset), pseudo.shape[-1])


# ----------------------------------------------------------------------------- one face
def face_chain(faces: dict[str, Tensor], i: int, G: Generator, D: Discriminator | None,
               preset: Preset, regressor: PoseLightRegressor, start: dict,
               latent_steps: int = LATENT_STEPS, kept: dict | None = None) -> dict:
    """Links (b) to (e) on face ``i`` of ``faces``: its full reconstruction (seeded with
    ``i``, started from ``start``: ``reconstruct``'s ``nets``/``encoder``/``prior``) and
    what each link passed on. Returns a dict of plain numbers (a results entry); ``kept``,
    when given, receives the pictures behind them: the depth maps ``depth`` (``"truth"``,
    ``"prior"``, ``"stage1"`` …, ``S×S`` in the image's view, NaN where not defined) and the
    last stage's first :data:`KEPT_SAMPLES` samples (``pseudo``, ``projected``,
    ``optimised`` as ``uint8`` ``n×3×S×S``, and the ``asked`` yaws in degrees)."""
    from .method import reconstruct

    renderer = Renderer(preset.image_size)
    gan = FramedGAN(G, preset.gan_crop)
    image = faces["image"][i:i + 1]
    gt, gt_mask = faces["depth"][i:i + 1], faces["mask"][i:i + 1]
    t0 = time.perf_counter()
    rec = reconstruct(image, G, D, preset=preset, seed=i, progress=False, **start)
    seconds = time.perf_counter() - t0
    shape = lambda depth, valid: relief_entry(faces, i, depth, valid, renderer)  # noqa: E731
    prior = start.get("prior")
    prior = starting_prior(preset) if prior is None else prior
    kept = {} if kept is None else kept
    kept["depth"] = {"truth": _map(gt[0], gt_mask[0, 0]), "prior": _map(prior, None)}
    out = {"seconds": seconds, "timings": dict(rec.timings),
           "reach": reach(faces, i, gan, D, regressor, preset, seed=i),
           "relief": {"prior": shape(prior[None].to(gt), None)}}
    for s, stage in enumerate(rec.stages):
        kept_samples = stage.step2
        asked = torch.rad2deg(kept_samples.views[:, 1]).cpu()
        with torch.no_grad():
            v_read = torch.rad2deg(rec.nets.view(kept_samples.projected)[:, 1]).cpu()
        link = {"pseudo": slope(asked, yaw_of(regressor, kept_samples.pseudo)),
                "projected": slope(asked, yaw_of(regressor, kept_samples.projected)),
                "view_net": slope(asked, v_read)}
        if s == len(rec.stages) - 1 and latent_steps > 0:
            own = optimised_latents(gan, D, rec.w, kept_samples.pseudo, kept_samples.masks,
                                    preset, s, latent_steps)
            link["optimised"] = slope(asked, yaw_of(regressor, own))
            kept.update(asked=asked[:KEPT_SAMPLES], optimised=_pixels(own),
                        pseudo=_pixels(kept_samples.pseudo),
                        projected=_pixels(kept_samples.projected))
        out[f"stage{s + 1}"] = link
        out["relief"][f"stage{s + 1}"] = shape(stage.factors.depth, stage.factors.valid)
        kept["depth"][f"stage{s + 1}"] = _map(stage.factors.depth[0], stage.factors.valid[0, 0])
    return out


def relief_entry(faces: dict[str, Tensor], i: int, depth: Tensor, valid: Tensor | None,
                 renderer: Renderer) -> dict[str, float]:
    """Link (e) for a depth map ``1×S×S`` (valid where ``valid``, ``1×1×S×S``; None: all)
    against face ``i``'s truth: SIDE ×100 and MAD as the benchmark scores them, and
    :func:`~g2s_lite.metrics.relief`'s amplitude, correlation and depth along the truth."""
    gt, gt_mask = faces["depth"][i:i + 1], faces["mask"][i:i + 1]
    errors = depth_errors(depth, gt, gt_mask, renderer, pred_valid=valid)
    parts = relief(depth, gt, errors["mask"])
    return {"side": 100 * float(errors["side"]), "mad": float(errors["mad"]),
            **{k: float(parts[k]) for k in ("amplitude", "correlation", "along")}}


# ----------------------------------------------------------------------------- (f) the truth
def truth_chain(faces: dict[str, Tensor], i: int, preset: Preset, nets,
                device: torch.device | str = "cpu") -> dict:
    """Link (f) on face ``i``, the GAN left out: ``nets`` (the start a reconstruction of the
    face would take; trained in place) go through step 1 and step 3 of the preset's first
    stage, step 3 fed the face truly turned and relit (:func:`~g2s_lite.synth.render_turned`)
    instead of projected samples — as many as step 2 collects, their views and lights drawn
    as step 2 draws its pseudo samples', seeded with ``i``. Returns the relief
    (:func:`relief_entry`) of the start (D and V as they begin, in the image's view) and
    after step 3, and the seconds it took."""
    from .losses import PerceptualLoss
    from .method import factors
    from .refine import step1, step3

    c1, c2, c3 = preset.for_stage(0)
    renderer, perceptual = Renderer(preset.image_size), PerceptualLoss()
    image = faces["image"][i:i + 1].to(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        start = factors(nets, image, renderer)
    s1 = step1(image, start.depth_canon, c1, perceptual, renderer, progress=False,
               albedo_net=nets.albedo, light_net=nets.light, view=start.view)
    views, lights = pseudo_poses(c2.collect * c2.batch, s1.light, c2.views, c2.lights,
                                 torch.Generator().manual_seed(i))
    truth, masks = render_turned(faces, views, lights, index=i, renderer=renderer)
    step3(image, truth.to(device), masks.to(device), nets, c3, perceptual, renderer, i,
          progress=False)
    end = factors(nets, image, renderer)
    shape = lambda f: relief_entry(faces, i, f.depth.cpu(), f.valid.cpu(), renderer)  # noqa: E731
    return {"seconds": time.perf_counter() - t0,
            "relief": {"start": shape(start), "truth": shape(end)}}


def _map(depth: Tensor, where: Tensor | None) -> Tensor:
    """A depth map as a run keeps it: ``S×S`` float16 on the CPU, NaN outside ``where``."""
    depth = depth.detach().float().cpu()
    if where is not None:
        depth = depth.where(where.cpu() > 0.5, torch.nan)
    return depth.to(torch.float16)


def _pixels(images: Tensor) -> Tensor:
    """The first :data:`KEPT_SAMPLES` images in [−1, 1] as ``uint8`` (what a figure needs)."""
    x = (images[:KEPT_SAMPLES].detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8)


# ----------------------------------------------------------------------------- summary
def _mean_se(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else float("nan")
    return {"mean": mean, "se": math.sqrt(var / n) if n > 1 else float("nan"), "n": n}


def _leaves(entry: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in entry.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and key != "timings":
            out[prefix + key] = float(value)
    return out


def summarise(per_face: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Mean and standard error over the faces of every number a face's entry holds
    (``"stage1.projected.slope"``, ``"relief.prior.side"``, …)."""
    leaves = [_leaves({k: v for k, v in e.items() if k != "timings"}) for e in per_face.values()]
    keys = [k for k in leaves[0] if all(k in f for f in leaves)] if leaves else []
    return {k: _mean_se([f[k] for f in leaves]) for k in keys}


#: The markdown's rows: (link, what, key in the summary).
_LINKS = (
    ("(b) reach", "projection's yaw on the truly turned face's (slope)", "reach.slope"),
    ("(b) reach", "its mean error (°)", "reach.error"),
    ("(c) step 2", "pseudo samples' yaw on the asked yaw (slope)", "{s}.pseudo.slope"),
    ("(c) step 2", "projected samples' (E) yaw on the asked yaw (slope)", "{s}.projected.slope"),
    ("(c) step 2", "optimised latents' yaw on the asked yaw (slope)", "{s}.optimised.slope"),
    ("(d) step 3", "V's yaw of the projected samples on the asked yaw (slope)",
     "{s}.view_net.slope"),
)


def markdown(result: dict) -> str:
    """The chain as a markdown table (link by link, mean ± standard error over the faces)."""
    s, meta = result["summary"], result["meta"]
    stages = sorted({k.split(".")[0] for k in s if k.startswith("stage")})
    rate = f", V's rate {meta['view_lr']:g} in step 3" if meta.get("view_lr") else ""
    left_out = ", the GAN left out: step 3 on the face truly turned" if meta.get("truth") else ""
    lines = [f"# The chain on {meta['n_faces']} tuning faces ({meta['preset']}"
             f"{results.gan_label(meta)}, "
             f"{meta['protocol']} start{rate}{left_out})", "",
             f"Written by `{meta['command']}`.", "", "| link | measure | value |", "|---|---|---|"]
    spread = result.get("spread")
    if spread:
        lines.append(f"| (a) spread | yaw std (°): GAN / SynFaces read / SynFaces true | "
                     f"{spread['gan_yaw']:.1f} / {spread['data_yaw']:.1f} / "
                     f"{spread['true_yaw']:.1f} |")
        lines.append(f"| (a) spread | pitch std (°): GAN / SynFaces read / SynFaces true | "
                     f"{spread['gan_pitch']:.1f} / {spread['data_pitch']:.1f} / "
                     f"{spread['true_pitch']:.1f} |")

    def cell(key: str) -> str:
        v = s.get(key)
        return "—" if v is None else f"{v['mean']:.2f} ± {v['se']:.2f}"

    for link, what, key in _LINKS:
        for stage in (stages if "{s}" in key else [None]):
            name = key.format(s=stage) if stage else key
            if name in s:
                label = f"{what}, stage {stage[5:]}" if stage and len(stages) > 1 else what
                lines.append(f"| {link} | {label} | {cell(name)} |")
    phases = {"prior": "(e) relief | prior", "start": "(f) truth | the start",
              **{st: f"(e) relief | after stage {st[5:]}" for st in stages},
              "truth": "(f) truth | after step 3 on the face truly turned"}
    for phase, label in phases.items():
        if f"relief.{phase}.side" in s:
            lines.append(f"| {label}: SIDE ×100 / MAD (°) / amplitude / correlation | "
                         + " / ".join(cell(f"relief.{phase}.{m}")
                                      for m in ("side", "mad", "amplitude", "correlation"))
                         + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- a run
def run(n: int, out: str | Path | None = None, first: int = 0, seed: int = TUNING_SEED,
        preset: str | Preset = "synface64", stages: int | None = None, quick: bool = False,
        pretrained: str | Path | None = None, latent_steps: int | None = None,
        regressor: PoseLightRegressor | None = None, spread: int = SPREAD_SAMPLES,
        view_lr: float | None = None, truth: bool = False, resume: bool = False,
        command: str = "g2s_lite.chain.run", world: World = SOLO,
        progress: bool = True, gan: str = BOOK_GAN) -> dict:
    """The chain on tuning faces ``first … first+n−1`` of ``seed``, written to ``out`` (JSON,
    and its ``.md`` beside) after every face; ``resume`` skips the faces ``out`` holds.

    Args:
        preset: the preset (a name or a :class:`~g2s_lite.paper.Preset`); ``stages``
            overrides its number of stages (e.g. the paper's four for fresh nets),
            ``view_lr`` step 3's learning rate of V (link (d)); ``quick`` cuts every
            schedule (a check that the code runs).
        pretrained: a :meth:`~g2s_lite.pretrain.Pretrained.save` file to start every face
            from (the paper's protocol for synthetic faces); None: fresh nets.
        latent_steps: default :data:`LATENT_STEPS` (cut in quick mode).
        regressor: the pose regressor that reads every yaw (default: trained here, its
            schedule cut in quick mode).
        spread: GAN samples and SynFaces for link (a) (0: skip it).
        truth: measure link (f) alone, the GAN left out (:func:`truth_chain`): no
            reconstruction, regressor or spread.
        world: the processes sharing the run (torchrun): each takes every size-th face.
        gan: the GAN, a hub name or a ``{"g_ema", "d"}`` file of the same layout
            (recorded in the file's meta unless it is :data:`~g2s_lite.hub.BOOK_GAN`).
    """
    from tqdm.auto import tqdm

    from . import hub
    from .method import fresh_nets
    from .pretrain import Pretrained

    the_preset = preset if isinstance(preset, Preset) else get_preset(preset, quick=quick)
    if the_preset.image_size != 64 or the_preset.category != "synface":
        raise ValueError(f"the chain is measured on SynFaces with the synface64 GAN: preset "
                         f"{preset!r} is not a 64-px synthetic-face preset; use synface64")
    if stages is not None:
        the_preset = the_preset.with_stages(stages)
    if view_lr is not None:
        the_preset = replace(the_preset, step3=tuple(replace(c, view_lr=view_lr)
                                                     for c in the_preset.step3))
    if latent_steps is None:
        latent_steps = quick_length(LATENT_STEPS) if quick else LATENT_STEPS
    G, D = hub.load(gan)
    G.mean_latent()
    start: dict = {}
    if pretrained is not None:
        made = Pretrained.load(pretrained, G)
    meta = {"command": command, "preset": the_preset.name, "stages": the_preset.stages,
            "protocol": "fresh" if pretrained is None else f"pretrained ({Path(pretrained).name})",
            "seed": seed, "first": first, "n_faces": n, "quick": quick,
            "latent_steps": latent_steps, "view_lr": view_lr, "truth": truth,
            "version": __version__, "torch": torch.__version__, **results.gan_record(gan)}
    done: dict[str, dict] = {}
    pictures: dict[str, dict] = {}  # what each face's figures need (the .pt beside out)
    if resume and out is not None:
        for path in [Path(out), *results.parts(out)]:
            faces_done, pictures_done = _resumed(path, meta)
            done.update(faces_done)
            pictures.update(pictures_done)
    if regressor is None and not truth:
        steps = quick_length(REGRESSOR_STEPS) if quick else REGRESSOR_STEPS
        regressor = world.broadcast(train_regressor(steps, progress=progress)
                                    if world.main else None)
    faces = SynFaces(the_preset.image_size).sample(first + n, seed=seed)
    mine = world.share([i for i in range(first, first + n) if str(i) not in done])
    for i in tqdm(mine, desc="the chain, face by face", disable=not progress):
        if pretrained is not None:
            start = {"nets": made.starting_nets(the_preset, i), "encoder": made.encoder}
        pictures[str(i)] = {}
        if truth:  # the nets a reconstruction of face i would start from
            nets = (copy.deepcopy(start["nets"]).to(G.device) if start
                    else fresh_nets(the_preset, i, G.device))
            done[str(i)] = truth_chain(faces, i, the_preset, nets, G.device)
        else:
            done[str(i)] = face_chain(faces, i, G, D, the_preset, regressor, start,
                                      latent_steps, pictures[str(i)])
        if out is not None:  # after every face: a stopped run resumes from here
            _write(out if world.size == 1 else results.part_path(out, world.rank), meta, done,
                   pictures)
    for share, more in world.gather((done, pictures)) if world.size > 1 else []:
        done.update(share)
        pictures.update(more)
    result = {"meta": meta, "faces": dict(sorted(done.items(), key=lambda kv: int(kv[0])))}
    # the GAN's spread is the same for every face: the main process measures it, once
    result["spread"] = world.broadcast(gan_spread(G, regressor, spread, seed)
                                       if spread and not truth and world.main else None)
    result["summary"] = summarise(result["faces"])
    if out is not None:
        world.barrier()  # every share is in ``done`` before the part files go
        if world.main:
            _write(out, meta, result["faces"], pictures, result)
            for part in results.parts(out):
                for kind in (".md", ".pt"):
                    part.with_suffix(kind).unlink(missing_ok=True)
                part.unlink()
    return result


#: What must agree for a run to resume another's faces: key → its value in files written
#: before the key was recorded.
_SAME_RUN = {"preset": None, "stages": None, "protocol": None, "seed": None, "quick": None,
             "latent_steps": None, "view_lr": None, "truth": False, "gan": None}


def _resumed(path: Path, meta: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """The faces a chain file (or a part file) holds and their pictures, if it is the same
    run as ``meta``."""
    if not path.exists():
        return {}, {}
    old = json.loads(path.read_text())
    if any(old["meta"].get(k, before) != meta.get(k, before) for k, before in _SAME_RUN.items()):
        raise ValueError(f"{path} holds another run ({old['meta']['command']}); give a new "
                         "--out or leave out --resume")
    side = path.with_suffix(".pt")
    return old["faces"], torch.load(side, weights_only=True) if side.exists() else {}


def _write(out: str | Path, meta: dict, faces: dict, pictures: dict,
           result: dict | None = None) -> None:
    """``result`` (or what ``faces`` hold so far) as JSON at ``out``, its table beside
    (``.md``) and the faces' ``pictures`` (``.pt``, loadable with ``weights_only``)."""
    result = result or {"meta": meta, "faces": faces, "spread": None,
                        "summary": summarise(faces)}
    results.write_json(result, out, digits=4)
    Path(out).with_suffix(".md").write_text(markdown(result))
    side = Path(out).with_suffix(".pt")
    save_file(dict(sorted(pictures.items(), key=lambda kv: int(kv[0]))), side)


def main(argv: list[str] | None = None) -> int:
    prog = "python -m g2s_lite.chain"
    parser = results.command_parser(
        prog, "Where the 3D comes from: the chain from the GAN to the relief, measured link "
        "by link on tuning faces (Chapter 7).")
    parser.add_argument("--faces", type=int, default=10, help="number of tuning faces")
    parser.add_argument("--first", type=int, default=0, help="first tuning face")
    parser.add_argument("--seed", type=int, default=TUNING_SEED, help="seed of the tuning faces")
    parser.add_argument("--preset", default="synface64", help="GAN2Shape preset")
    parser.add_argument("--gan", default=BOOK_GAN, metavar="NAME|FILE",
                        help=f"the GAN: a hub name or a {{'g_ema', 'd'}} file of the same "
                        f"layout (default {BOOK_GAN})")
    parser.add_argument("--stages", type=int, default=None,
                        help="stages per face (default: the preset's)")
    parser.add_argument("--view-lr", type=float, default=None,
                        help="step 3's learning rate of V (default: the preset's)")
    parser.add_argument("--pretrained", type=Path, default=None, metavar="FILE.pt",
                        help="start every face from these pretrained nets (default: fresh)")
    parser.add_argument("--latent-steps", type=int, default=None,
                        help=f"steps of the per-sample latent optimisation (default "
                        f"{LATENT_STEPS})")
    parser.add_argument("--spread", type=int, default=SPREAD_SAMPLES,
                        help="GAN samples and SynFaces for the spread of pose (0: skip)")
    parser.add_argument("--truth", action="store_true",
                        help="measure link (f) alone, the GAN left out: step 1, then step 3 "
                        "on the face truly turned and relit instead of projected samples")
    parser.add_argument("--out", type=Path, required=True, help="results JSON (.md beside)")
    parser.add_argument("--resume", action="store_true", help="continue a run in --out")
    add_run_options(parser)
    args = parser.parse_args(argv)
    quick = run_options(args)
    if args.pretrained is not None and not args.pretrained.exists():
        parser.error(f"no pretrained file {args.pretrained}: make one with python -m "
                     "g2s_lite.pretrain, or leave out --pretrained for fresh nets")
    with joined(args.device) as world:
        try:
            result = run(args.faces, args.out, args.first, args.seed, args.preset, args.stages,
                         quick, args.pretrained, args.latent_steps, spread=args.spread,
                         view_lr=args.view_lr, truth=args.truth,
                         resume=args.resume, command=command_text(prog, argv), world=world,
                         progress=not args.no_progress, gan=args.gan)
        except ValueError as error:
            parser.error(str(error))
    if world.main:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
