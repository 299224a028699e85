"""3D-aware editing measured against the truth — Chapter 8's table.

The paper could only show its edits; our world renders the *true* face under the edited view
and light (:meth:`~g2s_lite.synth.SynFaces.render`), so every edit of :mod:`~g2s_lite.edit`
is compared with it here:

1. **the kept faces** — the SynFace benchmark's test faces, reconstructed once as its
   ``g2s_sym`` row does and kept (:func:`reconstruct_test_faces`; resumable);
2. **who the face is** — an identity reader trained on other SynFaces under wide views and
   lights (:mod:`~g2s_lite.identity`);
3. **a latent baseline** — InterFaceGAN-style directions in W (:class:`LatentDirections`);
4. **every edit of one face** against the truth (:func:`edits_of_face`), and why it may miss
   (:func:`diagnose`);
5. **the table** — means over faces (:func:`summarise`, :func:`markdown`), written by
   :func:`measure` (LPIPS too where its weights can be loaded: :func:`lpips_net`)::

       python -m g2s_lite.edit_measure keep --n 20 --keep runs/edit_keep --threads 1
       python -m g2s_lite.edit_measure measure --n 20 --keep runs/edit_keep \\
           --out results/edit_synface64.json --markdown results/edit_synface64.md
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .edit import canonical_light, edit_light, edit_view, gan_route, mesh_route
from .render import Renderer, light_direction, rotation_matrix
from .identity import (READABLE_R2, READER_POOL, READER_STEPS, identity_distance,
                       identity_names, identity_readable, identity_vector,
                       train_identity_reader)
from .runtime import SOLO, World, joined

#: The yaws and pitches (degrees) and the new light directions (dx, dy in the image's frame)
#: the measurement edits every test face with.
EDIT_YAWS = (-45, -30, -15, 15, 30, 45)
EDIT_PITCHES = (-15, 15)
EDIT_LIGHTS = ((-0.7, 0.3), (0.7, 0.3), (0.0, 0.7), (-0.4, -0.25), (0.8, -0.2))
#: What is compared with the truth: the two routes, the mesh route with the edits about the
#: reconstruction's own axes (``axes="own"``), and the baselines (:func:`measure`).
METHODS = ("input", "reconstruction", "mesh", "mesh_own_frame", "gan", "prior", "latent")
#: Training of the pose/light reader of the latent baseline (with the identity reader's
#: steps and pool, :mod:`~g2s_lite.identity`; quick mode: steps ÷ 10, :data:`QUICK_POOL` faces).
QUICK_POOL = 256
#: GAN samples the latent directions are fitted on.
DIRECTION_SAMPLES = 4000


# ----------------------------------------------------------------------------- 1. the kept faces
# The expensive part, reconstructing the test faces, is done once and kept; the comparison
# reads the kept faces and can be run again as often as the edits change.
def kept_path(keep_dir: str | Path, i: int) -> Path:
    """Where test face ``i`` is kept (a :func:`~g2s_lite.export.save_factors` file)."""
    return Path(keep_dir) / f"face_{i:03d}.pt"


def _test_faces(preset: str, quick: bool, n: int):
    """The preset, the bundled GAN (G, D) and the benchmark's first ``n`` test faces."""
    from . import hub
    from .benchmark import BENCHMARK_SEED
    from .paper import get_preset
    from .synth import SynFaces

    the_preset = get_preset(preset, quick=quick)
    G, D = hub.load(hub.BOOK_GAN, device="cpu")
    G.mean_latent()
    return the_preset, G, D, SynFaces(the_preset.image_size).sample(n, seed=BENCHMARK_SEED)


def reconstruct_test_faces(n: int, keep_dir: str | Path, preset: str = "synface64",
                           first: int = 0, quick: bool = False, progress: bool = False,
                           log=print, downloads: bool = False, pretrained=None,
                           world: World = SOLO) -> None:
    """Reconstruct test faces ``first … n−1`` of the SynFace benchmark exactly as its
    ``g2s_sym`` row does (same w, seed and perceptual loss: ``downloads`` as there) — or, from
    a ``pretrained`` file (:meth:`~g2s_lite.pretrain.Pretrained.save`), as its ``g2s_joint``
    row does — keeping each in :func:`kept_path` with the ``protocol`` in its meta; faces
    already kept are skipped (resumable), and under torchrun each process takes its share."""
    from .benchmark import BENCHMARK_SEED
    from .export import save_factors
    from .invert import FramedGAN, project
    from .losses import PerceptualLoss
    from .method import reconstruct
    from .pretrain import Pretrained

    protocol = "fresh" if pretrained is None else f"pretrained ({Path(pretrained).name})"
    folder_protocol(keep_dir, protocol)  # before minutes of work, not after
    the_preset, G, D, faces = _test_faces(preset, quick, n)
    perceptual = PerceptualLoss("auto", downloads=downloads)
    made = None if pretrained is None else Pretrained.load(pretrained, G)
    for i in world.share([i for i in range(first, n) if not kept_path(keep_dir, i).exists()]):
        t0 = time.perf_counter()
        image = faces["image"][i:i + 1]
        w, _ = project(image, FramedGAN(G, the_preset.gan_crop), D, the_preset.project,
                       progress=False)
        start = {} if made is None else {"nets": made.starting_nets(the_preset, i),
                                         "encoder": made.encoder}
        rec = reconstruct(image, G, D, w=w, preset=the_preset, progress=progress, seed=i,
                          perceptual=perceptual, **start)
        save_factors(rec, kept_path(keep_dir, i), index=i, seed=BENCHMARK_SEED,
                     preset=the_preset.name, protocol=protocol)
        log(f"face {i}: kept in {kept_path(keep_dir, i)} after {time.perf_counter() - t0:.0f}"
            f" s (view {[round(v, 3) for v in rec.view[0].tolist()[:3]]}, "
            f"true {[round(v, 3) for v in faces['view'][i].tolist()[:3]]})")


def kept_protocol(path: str | Path) -> str:
    """How the face kept in ``path`` was reconstructed: ``"fresh"`` or ``"pretrained
    (FILE)"`` (faces kept before the protocol was recorded: fresh)."""
    meta = torch.load(path, map_location="cpu", weights_only=True).get("meta", {})
    return meta.get("protocol", "fresh")


def folder_protocol(keep_dir: str | Path, adding: str | None = None) -> str:
    """The one protocol of the faces kept in ``keep_dir`` (and of faces ``adding`` to it);
    a folder of several is refused, since its table would mix them."""
    found = {} if adding is None else {adding: "the faces to keep"}
    for path in sorted(Path(keep_dir).glob("face_*.pt")):
        found.setdefault(kept_protocol(path), path.name)
    if len(found) > 1:
        raise ValueError(f"the faces in {keep_dir} would be reconstructed in different ways ("
                         + ", ".join(f"{p}: {where}" for p, where in found.items())
                         + "): keep each protocol in its own --keep folder")
    return next(iter(found), "fresh")


# ----------------------------------------------------------------------------- 3. latent edits
@dataclass
class LatentDirections:
    """InterFaceGAN-style edits in W: a linear model ``t ≈ A·(w − w̄) + c`` of the pose and
    light a reader sees in G(w) (``t`` = yaw °, pitch °, dx, dy), and the smallest step in W
    that changes one target and holds the others: ``Δw = A⁺·Δt``."""

    A: Tensor  # 4×style_dim
    c: Tensor  # 4
    w_mean: Tensor  # style_dim
    reader: object

    @classmethod
    def fit(cls, G, reader, n: int = DIRECTION_SAMPLES, seed: int = 0, ridge: float = 1e-3):
        with torch.no_grad():
            z = torch.randn(n, G.style_dim, generator=torch.Generator().manual_seed(seed))
            w = G.mapping(z.to(G.device))
            t = torch.cat([reader(G.synthesis(c, noise_mode="const").clamp(-1, 1))
                           for c in w.split(200)])
        w_mean = w.mean(0)
        X = torch.cat([w - w_mean, torch.ones(n, 1)], 1)
        coef = torch.linalg.solve(X.T @ X + ridge * n * torch.eye(X.shape[1]), X.T @ t)
        return cls(coef[:-1].T.contiguous(), coef[-1], w_mean, reader)

    def read(self, image: Tensor) -> Tensor:
        with torch.no_grad():
            return self.reader(image)

    def edit(self, w: Tensor, change: Tensor) -> Tensor:
        """``w`` (``1×style_dim``) moved by the smallest step that changes the targets by
        ``change`` (``B×4``) in the linear model: ``B×style_dim``."""
        return w + change @ torch.linalg.pinv(self.A).T


# ----------------------------------------------------------------------------- 4. one face
def _on_mask(m: Tensor, mask: Tensor) -> Tensor:
    """The mean of a map ``B×1×S×S`` over each image's ``mask``: ``B``."""
    return (m * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1)


def _masked_ssim(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    from kornia.metrics import ssim

    return _on_mask(ssim((a + 1) / 2, (b + 1) / 2, 11).mean(1, keepdim=True), mask)


def _masked_l1(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    return _on_mask((a - b).abs().mean(1, keepdim=True), mask)


def edits_of_face(rec, faces: dict, i: int, G, reader, directions: LatentDirections,
                  prior: Tensor, truth_ids: Tensor, readable: Tensor | None = None,
                  lpips=None) -> dict[str, dict[str, dict[str, float]]]:
    """Every edit of :data:`EDIT_YAWS`, :data:`EDIT_PITCHES` and :data:`EDIT_LIGHTS` on test
    face ``i`` by every method of :data:`METHODS`, compared with the true face under the same
    edit: ``{edit: {method: {"l1", "ssim", "identity", "uncovered"[, "l1_common"][,
    "lpips"]}}}`` (LPIPS given its net, :func:`lpips_net`)."""
    from .invert import generate
    from .synth import SynFaces

    size = rec.image.shape[-1]
    world = SynFaces(size)
    one = slice(i, i + 1)
    true_view, true_light = faces["view"][one], faces["light"][one]
    names = ([f"yaw{y:+d}" for y in EDIT_YAWS] + [f"pitch{p:+d}" for p in EDIT_PITCHES]
             + [f"light{k + 1}" for k in range(len(EDIT_LIGHTS))])
    n_turn = len(EDIT_YAWS) + len(EDIT_PITCHES)
    yaws = torch.tensor([*EDIT_YAWS, 0, 0], dtype=torch.float32)
    pitches = torch.tensor([0] * len(EDIT_YAWS) + list(EDIT_PITCHES), dtype=torch.float32)
    new_dirs = torch.tensor(EDIT_LIGHTS, dtype=torch.float32)
    new_lights = torch.cat([torch.full((len(new_dirs), 2), 0.5), new_dirs], 1)

    # the truth: the world's own face under each edit, each side with its own strengths
    t_views = torch.cat([edit_view(true_view, yaws, pitches), true_view.expand(len(new_dirs), 6)])
    t_lights = torch.cat([true_light.expand(n_turn, 4),
                          canonical_light(torch.cat([true_light[:, :2].expand(len(new_dirs), 2),
                                                     new_dirs], 1), true_view)])
    n = len(t_views)
    rep = lambda k: faces[k][one].expand(n, *faces[k].shape[1:])  # noqa: E731
    truth = world.render(rep("depth_canon"), rep("albedo"), t_lights, t_views, rep("mask_canon"))
    mask = truth["mask"]

    # the routes: the reconstruction's own view and light, edited the same way
    r_views = torch.cat([edit_view(rec.view, yaws, pitches), rec.view.expand(len(new_dirs), 6)])
    r_lights = torch.cat([rec.light.expand(n_turn, 4), edit_light(rec, new_lights, "image")])
    own_views = torch.cat([edit_view(rec.view, yaws, pitches, "own"),
                           rec.view.expand(len(new_dirs), 6)])
    own_lights = torch.cat([rec.light.expand(n_turn, 4), edit_light(rec, new_lights, "own")])
    mesh, mesh_valid = mesh_route(rec, r_views, r_lights)
    mesh_own, own_valid = mesh_route(rec, own_views, own_lights)
    gan = gan_route(rec, mesh, G)
    with torch.no_grad():
        prior_img, prior_valid = Renderer(size).render(prior.reshape(1, size, size), rec.albedo,
                                                 r_lights, r_views)
    # the latent baseline: the change each edit asks of the reader's targets
    seen = directions.read(generate(G, rec.w, size))[0]  # yaw °, pitch °, dx, dy
    change = torch.zeros(n, 4)
    change[:n_turn, 0], change[:n_turn, 1] = yaws, pitches
    seen_view = torch.tensor([[math.radians(seen[1]), math.radians(seen[0]), 0, 0, 0, 0]])
    wanted = canonical_light(new_lights, seen_view)[:, 2:]
    change[n_turn:, 2:] = wanted - seen[2:]
    w = rec.w if rec.w.dim() == 2 else rec.w[:, 0]
    latent = generate(G, directions.edit(w, change), size)

    images = {"input": rec.image.expand(n, -1, -1, -1),
              "reconstruction": rec.reconstruction.expand(n, -1, -1, -1),
              "mesh": mesh, "mesh_own_frame": mesh_own, "gan": gan,
              "prior": prior_img, "latent": latent}
    valid = {"mesh": mesh_valid, "mesh_own_frame": own_valid, "prior": prior_valid}
    common = mask * mesh_valid * prior_valid
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
    for method, img in images.items():
        l1 = _masked_l1(img, truth["image"], mask)
        ss = _masked_ssim(img, truth["image"], mask)
        cover = valid.get(method, torch.ones_like(mask))
        # holes count against L1 and SSIM; the identity is read from what is shown
        ident = identity_distance(reader, img, mask * cover, truth_ids, readable)
        uncovered = 1 - (cover * mask).flatten(1).sum(1) / mask.flatten(1).sum(1)
        l1c = _masked_l1(img, truth["image"], common) if method in ("mesh", "prior") else None
        # LPIPS of the masked images, as the paper's loss compares them
        perceptual = (None if lpips is None else
                      _on_mask(lpips(img * mask, truth["image"] * mask, normalize=False), mask))
        for k, name in enumerate(names):
            row = {"l1": l1[k].item(), "ssim": ss[k].item(), "identity": ident[k].item(),
                   "uncovered": uncovered[k].item()}
            if l1c is not None:
                row["l1_common"] = l1c[k].item()
            if perceptual is not None:
                row["lpips"] = perceptual[k].item()
            out[name][method] = row
    # the reader's own error: the identity it reads in the true face under each edit
    floor = identity_distance(reader, truth["image"], mask, truth_ids, readable)
    for k, name in enumerate(names):
        out[name]["truth"] = {"identity": floor[k].item()}
    return out


def diagnose(rec, faces: dict, i: int) -> dict[str, float]:
    """Why an edit may miss, for test face ``i``: how far V's pitch and yaw are from the
    truth (degrees); the angle between the recovered and the true light direction, both in
    the image's frame (degrees); the diffuse-to-ambient ratios b/a (the part of the light
    the image does fix); and ``baked_shading``, the correlation, over the face as seen,
    between the true shading and the ratio of recovered to true albedo (0: the albedo holds
    no shading; 1: the recovered albedo varies exactly as the shading)."""
    r = Renderer(rec.depth_canon.shape[-1])
    one = slice(i, i + 1)
    true_view, true_light = faces["view"][one], faces["light"][one]
    seen = lambda img, d, v: r.warp_image(img, d, v, background=0.0)[0]  # noqa: E731
    with torch.no_grad():
        albedo = (seen(rec.albedo, rec.depth_canon, rec.view) + 1) / 2
        true_albedo = (seen(faces["albedo"][one], faces["depth_canon"][one], true_view) + 1) / 2
        shading = seen(faces["shading"][one], faces["depth_canon"][one], true_view)
    mask = (faces["mask"][one] * rec.valid).bool()[0, 0]
    ratio = (albedo.mean(1).clamp(min=1e-3) / true_albedo.mean(1).clamp(min=1e-3))[0][mask]
    shade = shading[0, 0][mask].clamp(min=1e-3)
    corr = torch.corrcoef(torch.stack([ratio.log(), shade.log()]))[0, 1].item()
    # the image shows the canonical direction l as R·l
    image_dir = lambda light, view: (  # noqa: E731
        rotation_matrix(view[:, :3]) @ light_direction(light)[..., None])[..., 0]
    cos = (image_dir(rec.light, rec.view) * image_dir(true_light, true_view)).sum().item()
    return {"pitch_error": math.degrees((rec.view[0, 0] - true_view[0, 0]).item()),
            "yaw_error": math.degrees((rec.view[0, 1] - true_view[0, 1]).item()),
            "light_angle": math.degrees(math.acos(max(-1.0, min(1.0, cos)))),
            "ratio_b_a": (rec.light[0, 1] / rec.light[0, 0]).item(),
            "true_ratio_b_a": (true_light[0, 1] / true_light[0, 0]).item(),
            "baked_shading": corr}


# ----------------------------------------------------------------------------- 5. the table
def summarise(images: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Means over faces: ``{edit group: {method: {metric: mean}}}``, the groups being every
    edit, ``yaw±15``, ``yaw±30``, ``yaw±45`` and ``pitch±15`` (both signs) and ``lights``
    (all five)."""
    groups: dict[str, list[str]] = {}
    for record in images.values():
        for name in record["edits"]:
            groups.setdefault(name, [name])
    groups.update({f"{e}±{d}": [f"{e}-{d}", f"{e}+{d}"]
                   for e, d in (("yaw", 15), ("yaw", 30), ("yaw", 45), ("pitch", 15))})
    groups["lights"] = [f"light{k + 1}" for k in range(len(EDIT_LIGHTS))]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group, names in groups.items():
        values: dict[str, dict[str, list[float]]] = {}
        for record in images.values():
            for name in names:
                for method, row in record["edits"].get(name, {}).items():
                    for metric, v in row.items():
                        values.setdefault(method, {}).setdefault(metric, []).append(v)
        out[group] = {m: {k: sum(v) / len(v) for k, v in d.items()} for m, d in values.items()}
        if values:
            out[group]["n"] = len(next(iter(next(iter(values.values())).values()))) // len(names)
    return out


#: The groups and methods the markdown tables show.
TABLE_GROUPS = ("yaw±15", "yaw±30", "yaw±45", "pitch±15", "lights")


def markdown(result: dict) -> str:
    """The measured tables of a results file."""
    s, meta = result["summary"], result["meta"]
    n = len(result["images"])
    lines = [f"# 3D-aware editing against the true face ({n} test faces, seed {meta['seed']}, "
             f"preset {meta['preset']}; reconstructions from {meta.get('protocol', 'fresh')} "
             "nets)", "",
             "Errors on the true edited face's mask (images in [−1, 1]); identity: RMS "
             "distance, in standard deviations, between the face parameters an identity "
             "reader sees and the true ones (its own error on the true edited face: "
             "`truth`), over the parameters it reads on held-out faces (R² ≥ "
             f"{READABLE_R2}: " + ", ".join(
                 f"{k} {meta['identity_r2'][k]:.2f}" for k in meta.get("identity_readable", []))
             + "). LPIPS: " + meta.get("lpips", "not measured") + ".", ""]
    for metric, title in (("l1", "L1 (lower is better)"), ("ssim", "SSIM (higher is better)"),
                          ("lpips", "LPIPS (lower is better)"),
                          ("identity", "identity distance (lower is better)")):
        methods = [m for m in (*METHODS, "truth") if any(
            metric in s.get(g, {}).get(m, {}) for g in TABLE_GROUPS)]
        if not methods:  # LPIPS where it was not measured
            continue
        lines += [f"## {title}", "", "| edit | " + " | ".join(methods) + " |",
                  "|---|" + "---|" * len(methods)]
        for g in TABLE_GROUPS:
            if g in s:
                cells = [f"{s[g][m][metric]:.3f}" if metric in s[g].get(m, {}) else "–"
                         for m in methods]
                lines.append(f"| {g} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Mesh route against the ellipsoid prior (same albedo, view and light)", "",
              "| edit | mesh L1 (common) | prior L1 (common) | mesh uncovered | prior uncovered |",
              "|---|---|---|---|---|"]
    for g in TABLE_GROUPS:
        if g in s and "mesh" in s[g]:
            m, p = s[g]["mesh"], s[g]["prior"]
            lines.append(f"| {g} | {m['l1_common']:.3f} | {p['l1_common']:.3f} | "
                         f"{m['uncovered']:.1%} | {p['uncovered']:.1%} |")
    lines += ["", f"Made with `{meta['command']}` in {meta['wall_seconds']:.0f} s, from faces "
              f"reconstructed by `python -m g2s_lite.edit_measure keep` in "
              f"{meta.get('reconstruct_seconds', 0.0) / 60:.0f} min of the method's time."]
    return "\n".join(lines) + "\n"


def lpips_net(downloads: bool = False):
    """The LPIPS net this run can load and what the results file says of it: ``(net,
    "measured with …")`` or ``(None, "not measured: <why>")``, the why being
    :func:`~g2s_lite.losses.perceptual_choice`'s when it says no, the loader's error when
    loading fails anyway."""
    from . import losses

    kind, why = losses.perceptual_choice("auto", downloads)
    if kind != "lpips":
        return None, f"not measured: {why}"
    try:
        net = losses.PerceptualLoss("lpips").lpips
    except Exception as err:  # noqa: BLE001 - whatever the loader raised is the reason
        return None, f"not measured: loading LPIPS failed ({type(err).__name__}: {err})"
    return net, ("measured with LPIPS-VGG (the lpips package's linear heads on torchvision's "
                 "VGG-16), on the masked images")


def _readers(G, keep_dir: Path, size: int, quick: bool):
    """The identity reader and the latent directions, trained once and kept in
    ``keep_dir`` beside the reconstructions (a second measurement reuses them)."""
    from .pose_regressor import REGRESSOR_STEPS, PoseLightRegressor, train_regressor
    from .paper import quick_length

    path = keep_dir / ("readers_quick.pt" if quick else "readers.pt")
    if path.exists():
        state = torch.load(path, weights_only=True)
        reader = PoseLightRegressor(outputs=len(state["identity"]["target_mean"]))
        reader.load_state_dict(state["identity"])
        pose = PoseLightRegressor()
        pose.load_state_dict(state["pose"])
        if "r2" not in state:  # kept before the reader's held-out check was added
            state["r2"] = identity_readable(reader.eval(), 64 if quick else 384, size=size)
            torch.save(state, path)
        return (reader.eval(), LatentDirections(*state["directions"], reader=pose.eval()),
                state["r2"])
    pool = QUICK_POOL if quick else READER_POOL
    reader = train_identity_reader(quick_length(READER_STEPS) if quick else READER_STEPS,
                                   pool, size)
    pose = train_regressor(quick_length(REGRESSOR_STEPS) if quick else REGRESSOR_STEPS,
                           pool=pool, size=size, progress=False)
    directions = LatentDirections.fit(G, pose, QUICK_POOL if quick else DIRECTION_SAMPLES)
    r2 = identity_readable(reader, 64 if quick else 384, size=size)
    keep_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"identity": reader.state_dict(), "pose": pose.state_dict(), "r2": r2,
                "directions": (directions.A, directions.c, directions.w_mean)}, path)
    return reader, directions, r2


def measure(keep_dir: str | Path, out: str | Path, n: int = 20, markdown_out=None,
            preset: str = "synface64", quick: bool = False, command: str | None = None,
            log=print, downloads: bool = False) -> dict:
    """Compare every edit of the kept test faces (:func:`reconstruct_test_faces`) with the
    truth and write the results file (JSON, and markdown beside it when asked).

    The methods (:data:`METHODS`): the unedited ``input`` and ``reconstruction``, the routes
    ``mesh`` and ``gan``, ``mesh_own_frame`` (the edits about the reconstruction's own axes),
    the ellipsoid ``prior`` with the reconstruction's albedo, view and light, and ``latent``
    (:class:`LatentDirections`). Faces not kept (yet) are left out."""
    from . import __version__, results
    from .benchmark import BENCHMARK_SEED
    from .export import load_reconstruction
    from .prior import starting_prior
    from .synth import face_params

    t0 = time.perf_counter()
    protocol = folder_protocol(keep_dir)  # before the readers are trained
    kept = [i for i in range(n) if kept_path(keep_dir, i).exists()]
    the_preset, G, _, faces = _test_faces(preset, quick, n)
    size = the_preset.image_size
    reader, directions, r2 = _readers(G, Path(keep_dir), size, quick)
    readable = r2 >= READABLE_R2
    if not readable.any():  # a reader that reads nothing (quick mode): use every entry
        readable = torch.ones_like(readable)
    lpips, lpips_said = lpips_net(downloads)
    log(f"readers and directions ready after {time.perf_counter() - t0:.0f} s; "
        f"LPIPS {lpips_said}")
    prior = starting_prior(the_preset)
    images = {}
    reconstruct_seconds = 0.0
    for i in kept:
        path = kept_path(keep_dir, i)
        rec = load_reconstruction(path, G, the_preset)
        reconstruct_seconds += rec.timings.get("total", 0.0)
        truth_ids = identity_vector(face_params(BENCHMARK_SEED, i))
        images[str(i)] = {
            "view": rec.view[0].tolist(), "true_view": faces["view"][i].tolist(),
            "light": rec.light[0].tolist(), "true_light": faces["light"][i].tolist(),
            "diagnosis": diagnose(rec, faces, i),
            "edits": edits_of_face(rec, faces, i, G, reader, directions, prior, truth_ids,
                                   readable, lpips)}
        log(f"face {i} measured")
    meta = {"command": command or "g2s_lite.edit_measure.measure", "seed": BENCHMARK_SEED,
            "n_images": n, "n_measured": len(images), "preset": the_preset.name, "quick": quick,
            "protocol": protocol,
            "version": __version__, "torch": torch.__version__, "lpips": lpips_said,
            "edits": {"yaws": EDIT_YAWS, "pitches": EDIT_PITCHES, "lights": EDIT_LIGHTS},
            "identity_r2": dict(zip(identity_names(), r2.tolist())),
            "identity_readable": [n for n, ok in zip(identity_names(), readable) if ok],
            "wall_seconds": time.perf_counter() - t0,
            "reconstruct_seconds": reconstruct_seconds}
    result = {"summary": summarise(images), "meta": meta, "images": images}
    if out is not None:
        results.write_json(result, out, digits=5)  # readable and small
    if markdown_out is not None:
        Path(markdown_out).write_text(markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    from . import results
    from .runtime import downloads_allowed

    parser = results.command_parser(
        "python -m g2s_lite.edit_measure",
        "Chapter 8's measurement: reconstruct the SynFace benchmark's test faces once and keep "
        "them (keep), then compare every edit with the true edited face (measure).")
    sub = parser.add_subparsers(dest="what", required=True, parser_class=type(parser))
    k = sub.add_parser("keep", help="reconstruct test faces and keep them (resumable)")
    m = sub.add_parser("measure", help="compare the kept faces' edits with the truth")
    for p in (k, m):
        p.add_argument("--faces", "--n", dest="n", type=int, default=20,
                       help="test faces 0 … n−1 (--faces under torchrun, whose own options "
                       "start with --n)")
        p.add_argument("--keep", type=Path, required=True,
                       help="folder of the kept reconstructions (face_NNN.pt)")
        p.add_argument("--preset", default="synface64", help="GAN2Shape preset")
        p.add_argument("--quick", action="store_true", help="quick schedules (a preview)")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    k.add_argument("--first", type=int, default=0, help="start at this test face")
    k.add_argument("--pretrained", type=Path, default=None, metavar="FILE.pt",
                   help="start every face from these pretrained nets (the paper's protocol, "
                   "as the benchmark's g2s_joint row; default: fresh nets)")
    m.add_argument("--out", type=Path, required=True, help="results JSON")
    m.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    say = lambda s: print(s, flush=True)  # noqa: E731
    if args.what == "keep":
        if args.pretrained is not None and not args.pretrained.exists():
            parser.error(f"no pretrained file {args.pretrained}: make one with python -m "
                         "g2s_lite.pretrain, or leave out --pretrained for fresh nets")
        try:
            with joined() as world:
                reconstruct_test_faces(args.n, args.keep, args.preset, args.first, args.quick,
                                       log=say, downloads=downloads_allowed(),
                                       pretrained=args.pretrained, world=world)
        except ValueError as error:
            parser.error(str(error))
        return 0
    command = "python -m g2s_lite.edit_measure " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        result = measure(args.keep, args.out, args.n, args.markdown, args.preset, args.quick,
                         command, log=say, downloads=downloads_allowed())
    except ValueError as error:
        parser.error(str(error))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
