"""3D-aware editing — Chapter 8: turn and relight what was reconstructed.

A :class:`~g2s_lite.method.Reconstruction` is a 3D face: a canonical depth and albedo, the
view ``v`` that shows them as the image and the light ``l`` that shades them. Editing is
rendering them again with another view or another light. This module does it two ways, as
the paper does (its Figures 1 and 7), and measures both against the truth, which the paper
could not do:

1. **the edits** — :func:`edit_view` turns the reconstruction's view by a yaw and a pitch
   as the picture sees them, :func:`edit_light` moves its light's *direction* and keeps its
   own strengths (below);
2. **the mesh route** — Φ of the recovered canonical depth and albedo under the edited view
   and light: exact to the recovered shape, with holes where the turned surface leaves the
   picture and the albedo's blur;
3. **the GAN route** — render the edit as in route 1, then hand it to the latent-offset
   encoder E of the last step 2 *relative to the input*, as step 2 does
   (:func:`~g2s_lite.invert.invert_pseudo`), and draw ``G(w + Δw)``: a natural image
   without holes, which may drift from the face;
4. **grids and sweeps** — :func:`rotate` and :func:`relight` for one edit,
   :func:`render_edits` for many at once, :func:`pitch_yaw_grid`, :func:`relight_strip`
   and :func:`yaw_frames` (the animations);
5. **measured against the truth** — on held-out SynFaces the world renders the *true*
   face under the edited view and light (:meth:`~g2s_lite.synth.SynFaces.render`);
   :func:`measure` compares both routes and three baselines with it, on the SynFace
   benchmark's test faces reconstructed once and kept (:func:`reconstruct_test_faces`)::

       python -m g2s_lite.edit keep --n 20 --keep runs/edit_keep --threads 1
       python -m g2s_lite.edit measure --n 20 --keep runs/edit_keep \
           --out results/edit_synface64.json --markdown results/edit_synface64.md

**Why relighting keeps the reconstruction's strengths.** The image is
``(albedo + 1)/2 · (a + b·max(0, ⟨n, −l⟩))``: scale the albedo's brightness ``(albedo + 1)/2``
by k and both strengths by 1/k and nothing changes. A reconstruction's ``(a, b)`` are therefore known only up to the
albedo's scale, and an absolute light "a = 0.45, b = 0.3" means one thing to the world and
another to the reconstruction. What does carry over is the light's *direction* and the
ratio b/a the image shows; so a relight keeps the reconstruction's own ``(a, b)`` and moves
only ``(dx, dy)``.

**Which frame an edit lives in.** Φ shades the *canonical* surface, so a light's
direction is written in the canonical frame and turns with the face; and a view's angles
turn about the canonical frame's axes. The world's canonical frame is the frontal face; a
reconstruction's is whatever frame D and V settled on, which may be turned (V then reads the
face as less turned, or rolled, and D holds the rest of the turn). So edits are given in the
*image's* frame, the one both share: a turn about the camera's axes (:func:`edit_view`), a
light "from the left of the picture" turned into the canonical frame with the
reconstruction's own view (:func:`canonical_light`). This is ``frame="image"``, the
default; ``frame="view"`` / ``"canonical"`` write the edit in the reconstruction's own frame.

Images are ``B×3×S×S`` in [−1, 1]; views ``B×6`` (radians); lights ``B×4`` (ambient,
diffuse, dx, dy) as in :mod:`~g2s_lite.render`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .nets import NET_NAMES
from .paper import ROTATION_RANGE_DEG
from .render import Renderer, light_direction, rotation_matrix

#: Routes an edit can take (module docstring).
ROUTES = ("mesh", "gan")
#: Frames a relighting direction can be given in (module docstring).
FRAMES = ("image", "canonical")
#: The largest yaw or pitch an edit may add, in degrees: V's own range (a depth map shows
#: one side of the face, and beyond this the turned surface is mostly what D never saw).
MAX_EDIT_DEG = ROTATION_RANGE_DEG


# ----------------------------------------------------------------------------- 1. the edits
def _check_rec(rec) -> None:
    for name in ("depth_canon", "albedo", "view", "light"):
        if not isinstance(getattr(rec, name, None), Tensor):
            raise TypeError(f"expected a Reconstruction (from method.reconstruct) with "
                            f"tensor {name}; got {type(rec).__name__}")


def view_angles(rotation: Tensor) -> Tensor:
    """The (pitch, yaw, roll) in radians of rotations ``B×3×3`` written R = Rz·Ry·Rx (the
    inverse of :func:`~g2s_lite.render.rotation_matrix` for |yaw| < 90°): ``B×3``.

    >>> angles = torch.tensor([[0.2, -0.7, 0.1]])
    >>> torch.allclose(view_angles(rotation_matrix(angles)), angles, atol=1e-6)
    True
    """
    pitch = torch.atan2(rotation[:, 2, 1], rotation[:, 2, 2])
    yaw = torch.asin((-rotation[:, 2, 0]).clamp(-1.0, 1.0))
    roll = torch.atan2(rotation[:, 1, 0], rotation[:, 0, 0])
    return torch.stack([pitch, yaw, roll], 1)


def edit_view(view: Tensor, yaw: float | Tensor = 0.0, pitch: float | Tensor = 0.0,
              frame: str = "image") -> Tensor:
    """``view`` ``1×6`` turned by ``yaw`` and ``pitch`` degrees: ``B×6`` for ``B`` angles
    (scalars or ``B`` tensors).

    ``frame="image"`` (the default) turns the face as the picture sees it: about the
    camera's vertical axis (yaw) and horizontal axis (pitch), through the point views turn
    about, whatever frame the view's own angles are written in (R' = Q·R, with
    Q = Ry(yaw)·Rx(pitch)). ``frame="view"`` adds the angles to the view's own yaw
    (``view[:, 1]``) and pitch (``view[:, 0]``): about the axes of the *canonical* frame,
    which a reconstruction may have turned (module docstring). Without pitch and roll the
    two agree.

    >>> v = edit_view(torch.zeros(1, 6), yaw=torch.tensor([0.0, 45.0]), pitch=-15.0)
    >>> v.shape, round(math.degrees(v[1, 1].item()), 4), round(math.degrees(v[1, 0].item()), 4)
    (torch.Size([2, 6]), 45.0, -15.0)
    >>> rolled = torch.tensor([[0.0, 0.3, 0.2, 0.0, 0.0, 0.0]])
    >>> bool((edit_view(rolled, 30.0) - edit_view(rolled, 30.0, frame="view")).abs().max() > 0.01)
    True
    """
    if frame not in FRAMES and frame != "view":
        raise ValueError(f"frame must be 'image' or 'view', got {frame!r}")
    yaw = torch.as_tensor(yaw, dtype=view.dtype).reshape(-1).to(view.device)
    pitch = torch.as_tensor(pitch, dtype=view.dtype).reshape(-1).to(view.device)
    n = max(len(yaw), len(pitch))
    for name, angle in (("yaw", yaw), ("pitch", pitch)):
        if len(angle) not in (1, n):
            raise ValueError(f"give as many yaws as pitches (or one of either), got "
                             f"{len(yaw)} and {len(pitch)}")
        if angle.abs().max() > MAX_EDIT_DEG:
            raise ValueError(f"{name} {angle.abs().max().item():.0f}° is beyond the ±"
                             f"{MAX_EDIT_DEG:.0f}° an edit supports (the depth map shows one "
                             f"side of the face); turn by at most {MAX_EDIT_DEG:.0f}°")
    out = view.reshape(1, 6).repeat(n, 1)
    if frame == "view":
        out[:, 1] += torch.deg2rad(yaw).expand(n)
        out[:, 0] += torch.deg2rad(pitch).expand(n)
        return out
    turn = rotation_matrix(torch.stack([torch.deg2rad(pitch).expand(n),
                                        torch.deg2rad(yaw).expand(n), torch.zeros_like(out[:, 0])],
                                       1))
    out[:, :3] = view_angles(turn @ rotation_matrix(out[:, :3]))
    # the whole turned scene turns about the centre, its translation too
    out[:, 3:] = (turn @ out[:, 3:, None])[..., 0]
    return out


def canonical_light(light: Tensor, view: Tensor) -> Tensor:
    """A light whose direction is given in the image's frame, ``B×4``, with the direction
    turned into the canonical frame of ``view`` (``1×6`` or ``B×6``): Φ then lights the
    surface from that side *of the picture*.

    Φ shades canonical normals n with l; the image shows R·n, so the same shading in the
    image needs the canonical direction Rᵀ·l.

    >>> l = torch.tensor([[0.5, 0.5, 0.3, -0.2]])
    >>> torch.allclose(canonical_light(l, torch.zeros(1, 6)), l)
    True
    """
    direction = light_direction(light)  # B×3, travelling into the scene
    rot = rotation_matrix(view[:, :3]).expand(len(direction), 3, 3)
    canon = (rot.transpose(1, 2) @ direction[..., None])[..., 0]
    if (canon[:, 2] <= 1e-3).any():
        raise ValueError("the light comes from behind the turned face; give a direction "
                         "nearer the camera's (smaller dx, dy)")
    return torch.cat([light[:, :2], canon[:, :2] / canon[:, 2:]], 1)


def _to_image_frame(light: Tensor, view: Tensor) -> Tensor:
    """The (dx, dy) of a canonical ``light`` ``B×4`` seen in the image's frame: ``B×2``."""
    d = (rotation_matrix(view[:, :3]) @ light_direction(light)[..., None])[..., 0]
    return d[:, :2] / d[:, 2:]


def image_light(rec) -> Tensor:
    """The reconstruction's own light ``1×4`` with its direction in the image's frame (the
    inverse of :func:`canonical_light`): relighting with it changes nothing."""
    return torch.cat([rec.light[:, :2], _to_image_frame(rec.light, rec.view)], 1)


def edit_light(rec, light: Tensor, frame: str = "image", keep_strengths: bool = True) -> Tensor:
    """The lights ``B×4`` a relighting renders with: ``light``'s direction (in ``frame``,
    see the module docstring) with the reconstruction's own ambient and diffuse strengths
    (``keep_strengths``; the strengths of ``light`` are then ignored).

    >>> class R: light, view = torch.tensor([[0.4, 0.6, 0.0, 0.0]]), torch.zeros(1, 6)
    >>> edit_light(R, torch.tensor([[1.0, 1.0, 0.5, 0.1]])).tolist()
    [[0.4000000059604645, 0.6000000238418579, 0.5, 0.10000000149011612]]
    """
    if not isinstance(light, Tensor) or light.dim() != 2 or light.shape[1] != 4:
        shape = tuple(light.shape) if isinstance(light, Tensor) else type(light).__name__
        raise ValueError(f"light must be a B×4 tensor (ambient, diffuse, dx, dy), got "
                         f"{shape}; e.g. torch.tensor([[0.5, 0.5, -0.7, 0.3]])")
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    light = light.to(rec.light)
    if keep_strengths:
        light = torch.cat([rec.light[:, :2].expand(len(light), 2), light[:, 2:]], 1)
    return canonical_light(light, rec.view) if frame == "image" else light


# ----------------------------------------------------------------------------- 2-3. the routes
def _renderer(rec) -> Renderer:
    return Renderer(rec.depth_canon.shape[-1])


def mesh_route(rec, views: Tensor, lights: Tensor, background: float = 1.0
               ) -> tuple[Tensor, Tensor]:
    """Φ of the canonical depth and albedo under ``views`` ``B×6`` and ``lights`` ``B×4``
    (either may be one): (images ``B×3×S×S``, valid ``B×1×S×S`` where the surface covers)."""
    with torch.no_grad():
        return _renderer(rec).render(rec.depth_canon, rec.albedo, lights, views,
                                     background=background)


def gan_route(rec, rendered: Tensor, G) -> Tensor:
    """The GAN's version of rendered edits ``B×3×S×S``: E encodes them relative to the
    input's GAN image G(w) and the GAN draws G(w + Δw), ``B×3×S×S``."""
    from .invert import generate, invert_pseudo

    if G is None:
        raise ValueError('route="gan" needs the generator: pass G=... (the GAN the image was '
                         'reconstructed with)')
    if getattr(rec, "encoder", None) is None:
        raise ValueError('route="gan" needs the latent-offset encoder of the last step 2, and '
                         'this reconstruction kept none; reconstruct with method.reconstruct')
    size = rendered.shape[-1]
    with torch.no_grad():
        gan_crop = getattr(rec, "gan_crop", 1.0)
        gan_image = generate(G, rec.w, size, gan_crop)
        out, _ = invert_pseudo(rec.encoder, G, rec.w, rendered.to(G.device), gan_image, gan_crop)
    return out


# ----------------------------------------------------------------------------- 4. grids
def render_edits(rec, views: Tensor, lights: Tensor, route: str = "mesh", G=None
                 ) -> tuple[Tensor, Tensor]:
    """Many edits at once: (images ``B×3×S×S`` in [−1, 1], valid ``B×1×S×S``; all ones on
    the GAN route, which leaves no holes) of ``views`` ``B×6`` and canonical ``lights``
    ``B×4`` (batches of one broadcast)."""
    _check_rec(rec)
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    if route == "gan" and (G is None or getattr(rec, "encoder", None) is None):
        gan_route(rec, rec.image, G)  # raises the error that says what is missing
    images, valid = mesh_route(rec, views, lights)
    if route == "gan":
        images, valid = gan_route(rec, images, G), torch.ones_like(valid)
    return images, valid


def rotate(rec, yaw: float = 0.0, pitch: float = 0.0, route: str = "mesh", G=None,
           frame: str = "image") -> Tensor:
    """The reconstruction turned by ``yaw`` and ``pitch`` degrees (as the picture sees it,
    or added to its own view's angles: ``frame``, see :func:`edit_view`), its light
    unchanged: ``1×3×S×S`` (``B×3×S×S`` for ``B`` angles)."""
    _check_rec(rec)
    return render_edits(rec, edit_view(rec.view, yaw, pitch, frame), rec.light, route, G)[0]


def relight(rec, light: Tensor, route: str = "mesh", G=None, frame: str = "image") -> Tensor:
    """The reconstruction in its own view under ``light`` ``B×4``: its direction (in
    ``frame``) with the reconstruction's own strengths, ``B×3×S×S``."""
    _check_rec(rec)
    return render_edits(rec, rec.view, edit_light(rec, light, frame), route, G)[0]


def pitch_yaw_grid(rec, yaws=(-40, -20, 0, 20, 40), pitches=(-15, 0, 15), route="mesh",
                   G=None) -> Tensor:
    """The reconstruction turned by every (pitch, yaw): ``P×Y×3×S×S``."""
    yy, pp = torch.meshgrid(torch.tensor(yaws, dtype=torch.float32),
                            torch.tensor(pitches, dtype=torch.float32), indexing="xy")
    images = rotate(rec, yy.reshape(-1), pp.reshape(-1), route, G)
    return images.reshape(len(pitches), len(yaws), *images.shape[1:])


def light_circle(n: int = 8, radius: float = 0.7) -> Tensor:
    """``n`` light directions on a circle about the camera's axis, ``n×4`` (strengths 0.5;
    :func:`edit_light` replaces them), starting with light from the left of the picture
    (dx > 0: it travels to the right), then from above (dy > 0: it travels down).

    >>> print(light_circle(4)[:, 2:].numpy().round(2) + 0.0)
    [[ 0.7  0. ]
     [ 0.   0.7]
     [-0.7  0. ]
     [ 0.  -0.7]]
    """
    angle = torch.arange(n) * (2 * math.pi / n)
    return torch.stack([torch.full((n,), 0.5), torch.full((n,), 0.5),
                        radius * angle.cos(), radius * angle.sin()], 1)


def relight_strip(rec, n: int = 8, radius: float = 0.7, route: str = "mesh", G=None) -> Tensor:
    """The reconstruction lit from ``n`` directions around the picture: ``n×3×S×S``."""
    return relight(rec, light_circle(n, radius), route, G)


def yaw_frames(rec, n: int = 15, max_yaw: float = 45.0, route: str = "mesh", G=None) -> Tensor:
    """The reconstruction turning from −max_yaw to +max_yaw degrees, ``n×3×S×S``."""
    return rotate(rec, torch.linspace(-max_yaw, max_yaw, n), 0.0, route, G)


# ----------------------------------------------------------------------------- 5. the truth
# The expensive part, reconstructing the test faces, is done once and kept; the comparison
# reads the kept faces and can be run again as often as the edits change.
#: The factors a kept reconstruction holds (with ``w`` and the nets' and encoder's weights).
KEPT_FACTORS = ("image", "depth", "valid", "normal", "depth_canon", "albedo", "shading",
                "view", "light", "reconstruction", "w")


def keep(rec, path: str | Path, **meta) -> Path:
    """Write what an edit needs of a :class:`~g2s_lite.method.Reconstruction` (its factors,
    ``w``, the four nets' and the encoder's weights) to ``path``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"factors": {k: getattr(rec, k).detach().cpu() for k in KEPT_FACTORS},
             "nets": {k: getattr(rec.nets, k).state_dict()
                      for k in NET_NAMES},
             "encoder": rec.encoder.state_dict(), "timings": rec.timings, "meta": meta}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_kept(path: str | Path, G, preset="synface64"):
    """A :class:`~g2s_lite.method.Reconstruction` back from :func:`keep`'s file (no stages)."""
    from .invert import make_encoder
    from .method import Reconstruction
    from .nets import Nets
    from .paper import get_preset
    from .prior import starting_prior

    preset = get_preset(preset)
    state = torch.load(path, map_location=G.device, weights_only=False)
    nets = Nets.create(preset.image_size, preset.nf, 0, G.device, prior=starting_prior(preset))
    for k, sd in state["nets"].items():
        getattr(nets, k).load_state_dict(sd)
    encoder = make_encoder(G, preset.step2[-1], preset.image_size, G.device)
    encoder.load_state_dict(state["encoder"])
    f = {k: v.to(G.device) for k, v in state["factors"].items()}
    return Reconstruction(**f, nets=nets, encoder=encoder, stages=[],
                          timings=state["timings"])


def reconstruct_test_faces(n: int, keep_dir: str | Path, preset: str = "synface64",
                           first: int = 0, quick: bool = False, progress: bool = False,
                           log=print, downloads: bool = False) -> None:
    """Reconstruct test faces ``first … n−1`` of the SynFace benchmark exactly as its
    ``g2s_sym`` row does (same w, seed and perceptual loss: ``downloads`` as there), keeping
    each in ``keep_dir/face_NNN.pt``; faces already kept are skipped (resumable)."""
    from . import hub
    from .benchmark import BENCHMARK_SEED
    from .invert import project
    from .losses import PerceptualLoss
    from .method import reconstruct
    from .paper import get_preset
    from .synth import SynFaces

    the_preset = get_preset(preset, quick=quick)
    G, D = hub.load("synface64", device="cpu")
    G.mean_latent()
    faces = SynFaces(the_preset.image_size).sample(n, seed=BENCHMARK_SEED)
    perceptual = PerceptualLoss("auto", downloads=downloads)
    for i in range(first, n):
        path = Path(keep_dir) / f"face_{i:03d}.pt"
        if path.exists():
            continue
        t0 = time.perf_counter()
        image = faces["image"][i:i + 1]
        w, _ = project(image, G, D, the_preset.project, progress=False)
        rec = reconstruct(image, G, D, w=w, preset=the_preset, progress=progress, seed=i,
                          perceptual=perceptual)
        keep(rec, path, index=i, seed=BENCHMARK_SEED, preset=the_preset.name)
        log(f"face {i}: kept in {path} after {time.perf_counter() - t0:.0f} s "
            f"(view {[round(v, 3) for v in rec.view[0].tolist()[:3]]}, "
            f"true {[round(v, 3) for v in faces['view'][i].tolist()[:3]]})")


# Every edit of every kept face, against the world's own face under the same edit.
#: The yaws and pitches (degrees) and the new light directions (dx, dy in the image's frame)
#: the measurement edits every test face with.
EDIT_YAWS = (-45, -30, -15, 15, 30, 45)
EDIT_PITCHES = (-15, 15)
EDIT_LIGHTS = ((-0.7, 0.3), (0.7, 0.3), (0.0, 0.7), (-0.4, -0.25), (0.8, -0.2))
#: What is compared with the truth: the two routes, the mesh route with the edits written in
#: the reconstruction's own frame, and the baselines (docstring of :func:`measure`).
METHODS = ("input", "reconstruction", "mesh", "mesh_own_frame", "gan", "prior", "latent")
#: The face parameters that say who a face is (not where it sits or what is behind it).
IDENTITY = ("half_width", "half_height", "head_relief", "eye_x", "eye_y", "eye_socket",
            "brow_ridge", "nose_tip_y", "nose_width", "nose_height", "cheek", "mouth_y",
            "lips", "chin", "hairline", "skin", "hair")
#: SynFaces seed of the identity reader's training faces (no test face, no GAN face).
IDENTITY_SEED = 7070
#: Views the identity reader learns under: wider than the world's, to reach edited views.
IDENTITY_VIEWS_DEG = (25.0, 80.0)  # pitch, yaw
#: Training of the identity reader and of the pose/light reader of the latent baseline
#: (steps, and distinct training faces; quick mode: steps ÷ 10 and :data:`QUICK_POOL` faces).
READER_STEPS, READER_POOL, QUICK_POOL = 2000, 3072, 256
#: GAN samples the latent directions are fitted on.
DIRECTION_SAMPLES = 4000


def identity_vector(p) -> Tensor:
    """A face's :data:`IDENTITY` parameters as one vector (colours take three entries)."""
    values = []
    for name in IDENTITY:
        v = getattr(p, name)
        values += list(v) if isinstance(v, tuple) else [float(v)]
    return torch.tensor(values, dtype=torch.float32)


def _identity_names() -> list[str]:
    """The names of :func:`identity_vector`'s entries."""
    return [f"{name}_{c}" if name in ("skin", "hair") else name
            for name in IDENTITY for c in (("r", "g", "b") if name in ("skin", "hair") else ("",))]


def _identity_faces(n: int, seed: int, size: int) -> tuple[Tensor, Tensor]:
    """``n`` SynFaces under wide random views and the world's lights, masked to the head
    (grey elsewhere), with their identity vectors."""
    from .paper import SYNFACE_LIGHTS, ViewRanges
    from .pseudo import sample_lights, sample_views
    from .synth import SYNFACE_BASE_LIGHT, SynFaces, face_params

    world = SynFaces(size)
    gen = torch.Generator().manual_seed(seed)
    images, ids = [], []
    for start in range(0, n, 128):
        params = [face_params(seed, i) for i in range(start, min(n, start + 128))]
        views = sample_views(len(params), ViewRanges(*IDENTITY_VIEWS_DEG, 5.0, 0.006, 0.006),
                             gen)
        lights = sample_lights(len(params), SYNFACE_BASE_LIGHT, SYNFACE_LIGHTS, gen)
        depth, albedo, mask = world.canonical(params)
        out = world.render(depth, albedo, lights, views, mask)
        images.append(out["image"] * out["mask"])
        ids += [identity_vector(p) for p in params]
    return torch.cat(images), torch.stack(ids)


def train_identity_reader(steps: int = READER_STEPS, pool: int = READER_POOL, size: int = 64,
                          seed: int = IDENTITY_SEED, batch: int = 32):
    """A :class:`~g2s_lite.pose_regressor.PoseLightRegressor`-shaped CNN that reads a face's
    :data:`IDENTITY` parameters from its head alone (``image·mask``), trained on faces
    under wide views and random lights so that what it reads does not move with them."""
    from .pose_regressor import PoseLightRegressor
    from .runtime import seeded

    images, ids = _identity_faces(pool, seed, size)
    with seeded(seed):
        reader = PoseLightRegressor(outputs=ids.shape[1])
    reader.target_mean.copy_(ids.mean(0))
    reader.target_std.copy_(ids.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(reader.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    reader.train()
    for _ in range(steps):
        idx = torch.randint(0, pool, (batch,), generator=gen)
        target = (ids[idx] - reader.target_mean) / reader.target_std
        loss = F.mse_loss(reader.standardised(images[idx]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return reader.eval()


#: A parameter counts towards the identity distance when the reader explains at least this
#: share of its variance on held-out faces (R²): the colours and the head's proportions
#: are read well at 64 pixels, the millimetre-scale relief of nose, lips and brows is not.
READABLE_R2 = 0.2


def identity_readable(reader, n: int = 384, seed: int = IDENTITY_SEED + 1,
                      size: int = 64) -> Tensor:
    """The reader's R² for each identity entry on ``n`` held-out faces (other seed): ``D``."""
    images, ids = _identity_faces(n, seed, size)
    with torch.no_grad():
        read = reader(images)
    return 1 - (read - ids).pow(2).mean(0) / ids.var(0).clamp(min=1e-12)


def identity_distance(reader, images: Tensor, mask: Tensor, truth: Tensor,
                      readable: Tensor | None = None) -> Tensor:
    """RMS distance, in the training faces' standard deviations, between the identity the
    reader sees in ``images·mask`` (``B×3×S×S``, ``B×1×S×S``) and ``truth`` (``D`` or
    ``B×D`` identity vectors), over the ``readable`` entries (``D`` booleans; all by
    default): ``B``."""
    with torch.no_grad():
        read = reader.standardised(images * mask)
    target = (truth - reader.target_mean) / reader.target_std
    gap = (read - target).pow(2)
    if readable is not None:
        gap = gap[..., readable]
    return gap.mean(-1).sqrt()


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


def _masked_ssim(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    from kornia.metrics import ssim

    m = ssim((a + 1) / 2, (b + 1) / 2, 11).mean(1, keepdim=True)
    return (m * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1)


def _masked_l1(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    m = (a - b).abs().mean(1, keepdim=True)
    return (m * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1)


def edits_of_face(rec, faces: dict, i: int, G, reader, directions: LatentDirections,
                  prior: Tensor, truth_ids: Tensor, readable: Tensor | None = None
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """Every edit of :data:`EDIT_YAWS`, :data:`EDIT_PITCHES` and :data:`EDIT_LIGHTS` on test
    face ``i`` by every method of :data:`METHODS`, compared with the true face under the same
    edit: ``{edit: {method: {"l1", "ssim", "identity", "uncovered"[, "l1_common"]}}}``."""
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
    t_views = torch.cat([edit_view(true_view, yaws, pitches),
                         true_view.expand(len(new_dirs), 6)])
    t_lights = torch.cat([true_light.expand(n_turn, 4),
                          canonical_light(torch.cat([true_light[:, :2].expand(len(new_dirs), 2),
                                                     new_dirs], 1), true_view)])
    n = len(t_views)
    rep = lambda k: faces[k][one].expand(n, *faces[k].shape[1:])  # noqa: E731
    truth = world.render(rep("depth_canon"), rep("albedo"), t_lights, t_views,
                         rep("mask_canon"))
    mask = truth["mask"]

    # the routes: the reconstruction's own view and light, edited the same way
    r_views = torch.cat([edit_view(rec.view, yaws, pitches), rec.view.expand(len(new_dirs), 6)])
    r_lights = torch.cat([rec.light.expand(n_turn, 4), edit_light(rec, new_lights, "image")])
    own_views = torch.cat([edit_view(rec.view, yaws, pitches, "view"),
                           rec.view.expand(len(new_dirs), 6)])
    own_lights = torch.cat([rec.light.expand(n_turn, 4),
                            edit_light(rec, new_lights, "canonical")])
    mesh, mesh_valid = mesh_route(rec, r_views, r_lights)
    mesh_own, own_valid = mesh_route(rec, own_views, own_lights)
    gan = gan_route(rec, mesh, G)
    renderer = _renderer(rec)
    with torch.no_grad():
        prior_img, prior_valid = renderer.render(prior.reshape(1, size, size), rec.albedo,
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
        for k, name in enumerate(names):
            row = {"l1": l1[k].item(), "ssim": ss[k].item(), "identity": ident[k].item(),
                   "uncovered": uncovered[k].item()}
            if l1c is not None:
                row["l1_common"] = l1c[k].item()
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
    r = _renderer(rec)
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
    image_dir = lambda light, view: light_direction(  # noqa: E731
        torch.cat([light[:, :2], _to_image_frame(light, view)], 1))
    cos = (image_dir(rec.light, rec.view) * image_dir(true_light, true_view)).sum().item()
    return {"pitch_error": math.degrees((rec.view[0, 0] - true_view[0, 0]).item()),
            "yaw_error": math.degrees((rec.view[0, 1] - true_view[0, 1]).item()),
            "light_angle": math.degrees(math.acos(max(-1.0, min(1.0, cos)))),
            "ratio_b_a": (rec.light[0, 1] / rec.light[0, 0]).item(),
            "true_ratio_b_a": (true_light[0, 1] / true_light[0, 0]).item(),
            "baked_shading": corr}


def summarise(images: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Means over faces: ``{edit group: {method: {metric: mean}}}``, the groups being every
    edit, ``yaw±30`` and ``yaw±45`` (both signs), ``pitch±15`` and ``lights`` (all five)."""
    groups: dict[str, list[str]] = {}
    for record in images.values():
        for name in record["edits"]:
            groups.setdefault(name, [name])
    groups["yaw±15"] = ["yaw-15", "yaw+15"]
    groups["yaw±30"] = ["yaw-30", "yaw+30"]
    groups["yaw±45"] = ["yaw-45", "yaw+45"]
    groups["pitch±15"] = ["pitch-15", "pitch+15"]
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
             f"preset {meta['preset']})", "",
             "Errors on the true edited face's mask (images in [−1, 1]); identity: RMS "
             "distance, in standard deviations, between the face parameters an identity "
             "reader sees and the true ones (its own error on the true edited face: "
             "`truth`), over the parameters it reads on held-out faces (R² ≥ "
             f"{READABLE_R2}: " + ", ".join(
                 f"{k} {meta['identity_r2'][k]:.2f}" for k in meta.get("identity_readable", []))
             + "). LPIPS: " + meta.get("lpips", "not measured") + ".", ""]
    for metric, title in (("l1", "L1 (lower is better)"), ("ssim", "SSIM (higher is better)"),
                          ("identity", "identity distance (lower is better)")):
        methods = [m for m in (*METHODS, "truth") if any(
            metric in s.get(g, {}).get(m, {}) for g in TABLE_GROUPS)]
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
              f"reconstructed by `python -m g2s_lite.edit keep` in "
              f"{meta.get('reconstruct_seconds', 0.0) / 60:.0f} min of the method's time."]
    return "\n".join(lines) + "\n"


def _rounded(x):
    """``x`` with every float rounded to 5 decimals (the file stays readable and small)."""
    if isinstance(x, float):
        return round(x, 5)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v) for v in x]
    return x


def _write(result: dict, out: Path, markdown_out: Path | None) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(_rounded(result), indent=1))
    tmp.replace(out)
    if markdown_out is not None:
        markdown_out.write_text(markdown(result))


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
            log=print) -> dict:
    """Compare every edit of the kept test faces (:func:`reconstruct_test_faces`) with the
    truth and write the results file (JSON, and markdown beside it when asked).

    The methods (:data:`METHODS`): ``input`` (the unedited image), ``reconstruction`` (the
    unedited reconstruction), ``mesh`` and ``gan`` (the two routes), ``mesh_own_frame``
    (the mesh route with the edits written in the reconstruction's own frame: angles added
    to V's, the new direction taken as canonical), ``prior`` (the ellipsoid prior rendered with the reconstruction's albedo, view
    and light, edited the same way) and ``latent`` (InterFaceGAN-style directions in W,
    :class:`LatentDirections`, fitted on GAN samples read by Chapter 3's pose-and-light
    regressor). Faces not kept (yet) are left out; ``n`` records how many were asked for.
    """
    from . import __version__, hub
    from .benchmark import BENCHMARK_SEED
    from .paper import get_preset
    from .prior import starting_prior
    from .synth import SynFaces, face_params

    t0 = time.perf_counter()
    the_preset = get_preset(preset, quick=quick)
    size = the_preset.image_size
    G, _ = hub.load("synface64", device="cpu")
    G.mean_latent()
    reader, directions, r2 = _readers(G, Path(keep_dir), size, quick)
    readable = r2 >= READABLE_R2
    if not readable.any():  # a reader that reads nothing (quick mode): use every entry
        readable = torch.ones_like(readable)
    log(f"readers and directions ready after {time.perf_counter() - t0:.0f} s")
    faces = SynFaces(size).sample(n, seed=BENCHMARK_SEED)
    prior = starting_prior(the_preset)
    images = {}
    reconstruct_seconds = 0.0
    for i in range(n):
        path = Path(keep_dir) / f"face_{i:03d}.pt"
        if not path.exists():
            continue
        rec = load_kept(path, G, the_preset)
        reconstruct_seconds += rec.timings.get("total", 0.0)
        truth_ids = identity_vector(face_params(BENCHMARK_SEED, i))
        images[str(i)] = {
            "view": rec.view[0].tolist(), "true_view": faces["view"][i].tolist(),
            "light": rec.light[0].tolist(), "true_light": faces["light"][i].tolist(),
            "diagnosis": diagnose(rec, faces, i),
            "edits": edits_of_face(rec, faces, i, G, reader, directions, prior, truth_ids,
                                   readable)}
        log(f"face {i} measured")
    meta = {"command": command or "g2s_lite.edit.measure", "seed": BENCHMARK_SEED,
            "n_images": n, "n_measured": len(images), "preset": the_preset.name,
            "quick": quick, "version": __version__, "torch": torch.__version__,
            "lpips": "not measured (its VGG weights are not on this machine)",
            "edits": {"yaws": EDIT_YAWS, "pitches": EDIT_PITCHES, "lights": EDIT_LIGHTS},
            "identity_r2": dict(zip(_identity_names(), r2.tolist())),
            "identity_readable": [n for n, ok in zip(_identity_names(), readable) if ok],
            "wall_seconds": time.perf_counter() - t0,
            "reconstruct_seconds": reconstruct_seconds}
    result = {"summary": summarise(images), "meta": meta, "images": images}
    if out is not None:
        _write(result, Path(out), None if markdown_out is None else Path(markdown_out))
    return result


def main(argv: list[str] | None = None) -> int:
    from .runtime import downloads_allowed

    parser = argparse.ArgumentParser(
        prog="python -m g2s_lite.edit",
        description="Chapter 8's measurement: reconstruct the SynFace benchmark's test faces "
                    "once and keep them (keep), then compare every edit with the true edited "
                    "face (measure).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    k = sub.add_parser("keep", help="reconstruct test faces and keep them (resumable)")
    m = sub.add_parser("measure", help="compare the kept faces' edits with the truth")
    for p in (k, m):
        p.add_argument("--n", type=int, default=20, help="test faces 0 … n−1")
        p.add_argument("--keep", type=Path, required=True,
                       help="folder of the kept reconstructions (face_NNN.pt)")
        p.add_argument("--preset", default="synface64", help="GAN2Shape preset")
        p.add_argument("--quick", action="store_true", help="quick schedules (a preview)")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    k.add_argument("--first", type=int, default=0, help="start at this test face")
    m.add_argument("--out", type=Path, required=True, help="results JSON")
    m.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    say = lambda s: print(s, flush=True)  # noqa: E731
    if args.what == "keep":
        reconstruct_test_faces(args.n, args.keep, args.preset, args.first, args.quick, log=say,
                               downloads=downloads_allowed())
    else:
        command = "python -m g2s_lite.edit " + " ".join(sys.argv[1:] if argv is None else argv)
        result = measure(args.keep, args.out, args.n, args.markdown, args.preset, args.quick,
                         command, log=say)
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
