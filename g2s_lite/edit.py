"""3D-aware editing — Chapter 8: turn and relight what was reconstructed.

A :class:`~g2s_lite.method.Reconstruction` is a 3D face: a canonical depth and albedo, the
view ``v`` that shows them as the image and the light ``l`` that shades them. Editing is
rendering them again with another view or another light. This module does it two ways, as
the paper does (its Figures 1 and 7), and measures both against the truth, which the paper
could not do:

1. **the edits** — :func:`edit_view` adds yaw and pitch to the reconstruction's own view,
   :func:`edit_light` moves its light's *direction* and keeps its own strengths (below);
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
   :func:`measure` compares both routes and three baselines with it
   (``python -m g2s_lite.edit measure``).

**Why relighting keeps the reconstruction's strengths.** The image is
``(albedo + 1)/2 · (a + b·max(0, ⟨n, −l⟩))``: scale the albedo by k and both strengths by
1/k and nothing changes. A reconstruction's ``(a, b)`` are therefore known only up to the
albedo's scale, and an absolute light "a = 0.45, b = 0.3" means one thing to the world and
another to the reconstruction. What does carry over is the light's *direction* and the
ratio b/a the image shows; so a relight keeps the reconstruction's own ``(a, b)`` and moves
only ``(dx, dy)``.

**Which frame a light lives in.** Φ shades the *canonical* surface, so a light's
direction is written in the canonical frame and turns with the face. The world's canonical
frame is the frontal face; a reconstruction's is whatever frame D and V settled on, which
may be turned (V then reads the face as less turned than it is, and D holds the rest of the
turn). To light a reconstruction "from the left of the picture" the direction is therefore
given in the *image's* frame and turned into the canonical one with the reconstruction's own
view (:func:`canonical_light`); this is ``frame="image"``, the default.

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


def edit_view(view: Tensor, yaw: float | Tensor = 0.0, pitch: float | Tensor = 0.0) -> Tensor:
    """``view`` ``1×6`` with ``yaw`` and ``pitch`` degrees added to its yaw (``view[:, 1]``)
    and pitch (``view[:, 0]``): ``B×6`` for ``B`` angles (scalars or ``B`` tensors).

    >>> v = edit_view(torch.zeros(1, 6), yaw=torch.tensor([0.0, 90.0]))
    >>> v.shape, round(v[1, 1].item(), 4)
    (torch.Size([2, 6]), 1.5708)
    """
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
    out[:, 1] += torch.deg2rad(yaw).expand(n)
    out[:, 0] += torch.deg2rad(pitch).expand(n)
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


def image_light(rec) -> Tensor:
    """The reconstruction's own light ``1×4`` with its direction in the image's frame (the
    inverse of :func:`canonical_light`): relighting with it changes nothing."""
    direction = light_direction(rec.light)
    d = (rotation_matrix(rec.view[:, :3]) @ direction[..., None])[..., 0]
    return torch.cat([rec.light[:, :2], d[:, :2] / d[:, 2:]], 1)


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
        gan_image = generate(G, rec.w, size)
        out, _ = invert_pseudo(rec.encoder, G, rec.w, rendered.to(G.device), gan_image)
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


def rotate(rec, yaw: float = 0.0, pitch: float = 0.0, route: str = "mesh", G=None) -> Tensor:
    """The reconstruction seen with ``yaw`` and ``pitch`` degrees added to its own view,
    its light unchanged: ``1×3×S×S`` (``B×3×S×S`` for ``B`` angles)."""
    _check_rec(rec)
    return render_edits(rec, edit_view(rec.view, yaw, pitch), rec.light, route, G)[0]


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
    :func:`edit_light` replaces them), starting from the right of the picture.

    >>> light_circle(4)[:, 2:].round(decimals=2).tolist()
    [[0.7, 0.0], [0.0, 0.7], [-0.7, -0.0], [-0.0, -0.7]]
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


# ----------------------------------------------------------------------------- kept reconstructions
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
                      for k in ("depth", "albedo", "view", "light")},
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
                           log=print) -> None:
    """Reconstruct test faces ``first … n−1`` of the SynFace benchmark exactly as its
    ``g2s_sym`` row does (same w, seed and perceptual loss), keeping each in
    ``keep_dir/face_NNN.pt``; faces already kept are skipped (resumable)."""
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
    perceptual = PerceptualLoss("auto")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m g2s_lite.edit")
    sub = parser.add_subparsers(dest="what", required=True)
    k = sub.add_parser("keep", help="reconstruct benchmark test faces and keep them")
    k.add_argument("--n", type=int, default=20)
    k.add_argument("--first", type=int, default=0)
    k.add_argument("--keep", type=Path, required=True)
    k.add_argument("--preset", default="synface64")
    k.add_argument("--quick", action="store_true")
    k.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reconstruct_test_faces(args.n, args.keep, args.preset, args.first, args.quick,
                           log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
