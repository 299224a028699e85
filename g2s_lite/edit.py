"""3D-aware editing — Chapter 8: turn and relight what was reconstructed.

A :class:`~g2s_lite.method.Reconstruction` is a 3D face: a canonical depth and albedo, the
view ``v`` that shows them as the image and the light ``l`` that shades them. Editing is
rendering them again with another view or another light. This module does it two ways, as
the paper does (its Figures 1 and 7):

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
   and :func:`yaw_frames` (the animations).

How well each route does against the true edited face is measured apart, in
:mod:`~g2s_lite.edit_measure`. A reconstruction written to disk
(:func:`~g2s_lite.export.save_factors`, the command line's ``factors.pt``) comes back with
:func:`~g2s_lite.export.load_reconstruction` and edits the same way.

**Why relighting keeps the reconstruction's strengths.** The image is
``(albedo + 1)/2 · (a + b·max(0, ⟨n, −l⟩))``: scale the albedo's brightness ``(albedo + 1)/2``
by k and both strengths by 1/k and nothing changes. A reconstruction's ``(a, b)`` are therefore known only up to the
albedo's scale, and an absolute light "a = 0.45, b = 0.3" means one thing to the world and
another to the reconstruction. What does carry over is the light's *direction* and the
ratio b/a the image shows; so a relight keeps the reconstruction's own ``(a, b)`` and moves
only ``(dx, dy)``.

**Which axes an edit is written about.** Φ shades the *canonical* surface, so a light's
direction is written in the canonical frame and turns with the face; and a view's angles
turn about the canonical frame's axes. The world's canonical frame is the frontal face; a
reconstruction's is whatever frame D and V settled on, which may be turned (V then reads the
face as less turned, or rolled, and D holds the rest of the turn). So edits are given about
the *image's* axes, the ones both share: a turn about the camera's axes (:func:`edit_view`),
a light "from the left of the picture" turned into the canonical frame with the
reconstruction's own view (:func:`canonical_light`). This is ``axes="image"``, the default;
``axes="own"`` writes the edit about the reconstruction's own canonical axes (the angles
added to its view's, the light's direction taken as canonical). :data:`AXES` lists both and
:func:`check_axes` refuses anything else.

Images are ``B×3×S×S`` in [−1, 1]; views ``B×6`` (radians); lights ``B×4`` (ambient,
diffuse, dx, dy) as in :mod:`~g2s_lite.render`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .paper import ROTATION_RANGE_DEG
from .render import Renderer, light_direction, rotation_matrix

#: Routes an edit can take (module docstring).
ROUTES = ("mesh", "gan")
#: The axes an edit can be written about (module docstring): the camera's, as the picture
#: sees them, or the reconstruction's own canonical axes.
AXES = ("image", "own")
#: The largest yaw or pitch an edit may add, in degrees: V's own range (a depth map shows
#: one side of the face, and beyond this the turned surface is mostly what D never saw).
MAX_EDIT_DEG = ROTATION_RANGE_DEG


# ----------------------------------------------------------------------------- 1. the edits
def check_axes(axes: str) -> str:
    """``axes`` if it is one of :data:`AXES`; otherwise a ValueError that names them.

    >>> check_axes("own")
    'own'
    >>> check_axes("canonical")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: axes must be 'image' (...) or 'own' (...), got 'canonical'
    """
    if axes not in AXES:
        raise ValueError(f"axes must be 'image' (about the camera's axes, as the picture sees "
                         f"them) or 'own' (about the reconstruction's own canonical axes), "
                         f"got {axes!r}")
    return axes


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
              axes: str = "image") -> Tensor:
    """``view`` ``1×6`` turned by ``yaw`` and ``pitch`` degrees: ``B×6`` for ``B`` angles
    (scalars or ``B`` tensors).

    ``axes="image"`` (the default) turns the face as the picture sees it: about the
    camera's vertical axis (yaw) and horizontal axis (pitch), through the point views turn
    about, whatever frame the view's own angles are written in (R' = Q·R, with
    Q = Ry(yaw)·Rx(pitch)). ``axes="own"`` adds the angles to the view's own yaw
    (``view[:, 1]``) and pitch (``view[:, 0]``): about the axes of the *canonical* frame,
    which a reconstruction may have turned (module docstring). Without pitch and roll the
    two agree.

    >>> v = edit_view(torch.zeros(1, 6), yaw=torch.tensor([0.0, 45.0]), pitch=-15.0)
    >>> v.shape, round(math.degrees(v[1, 1].item()), 4), round(math.degrees(v[1, 0].item()), 4)
    (torch.Size([2, 6]), 45.0, -15.0)
    >>> rolled = torch.tensor([[0.0, 0.3, 0.2, 0.0, 0.0, 0.0]])
    >>> bool((edit_view(rolled, 30.0) - edit_view(rolled, 30.0, axes="own")).abs().max() > 0.01)
    True
    """
    check_axes(axes)
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
    if axes == "own":
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


def image_light(rec) -> Tensor:
    """The reconstruction's own light ``1×4`` with its direction in the image's frame (the
    inverse of :func:`canonical_light`): relighting with it changes nothing."""
    # the image shows the canonical direction l as R·l
    d = (rotation_matrix(rec.view[:, :3]) @ light_direction(rec.light)[..., None])[..., 0]
    return torch.cat([rec.light[:, :2], d[:, :2] / d[:, 2:]], 1)


def edit_light(rec, light: Tensor, axes: str = "image", keep_strengths: bool = True) -> Tensor:
    """The lights ``B×4`` a relighting renders with: ``light``'s direction (about ``axes``:
    the image's, or the reconstruction's own canonical ones, see the module docstring) with
    the reconstruction's own ambient and diffuse strengths (``keep_strengths``; the
    strengths of ``light`` are then ignored).

    >>> class R: light, view = torch.tensor([[0.4, 0.6, 0.0, 0.0]]), torch.zeros(1, 6)
    >>> edit_light(R, torch.tensor([[1.0, 1.0, 0.5, 0.1]])).tolist()
    [[0.4000000059604645, 0.6000000238418579, 0.5, 0.10000000149011612]]
    """
    check_axes(axes)
    if not isinstance(light, Tensor) or light.dim() != 2 or light.shape[1] != 4:
        shape = tuple(light.shape) if isinstance(light, Tensor) else type(light).__name__
        raise ValueError(f"light must be a B×4 tensor (ambient, diffuse, dx, dy), got "
                         f"{shape}; e.g. torch.tensor([[0.5, 0.5, -0.7, 0.3]])")
    light = light.to(rec.light)
    if keep_strengths:
        light = torch.cat([rec.light[:, :2].expand(len(light), 2), light[:, 2:]], 1)
    return canonical_light(light, rec.view) if axes == "image" else light


# ----------------------------------------------------------------------------- 2-3. the routes
def mesh_route(rec, views: Tensor, lights: Tensor, background: float = 1.0
               ) -> tuple[Tensor, Tensor]:
    """Φ of the canonical depth and albedo under ``views`` ``B×6`` and ``lights`` ``B×4``
    (either may be one): (images ``B×3×S×S``, valid ``B×1×S×S`` where the surface covers)."""
    with torch.no_grad():
        return Renderer(rec.depth_canon.shape[-1]).render(rec.depth_canon, rec.albedo, lights,
                                                          views, background=background)


def gan_route(rec, rendered: Tensor, G) -> Tensor:
    """The GAN's version of rendered edits ``B×3×S×S``: E encodes them relative to the
    input's GAN image G(w) and the GAN draws G(w + Δw), ``B×3×S×S``."""
    from .invert import FramedGAN, invert_pseudo

    if G is None:
        raise ValueError('route="gan" needs the generator: pass G=... (the GAN the image was '
                         'reconstructed with)')
    if getattr(rec, "encoder", None) is None:
        raise ValueError('route="gan" needs the latent-offset encoder of the last step 2, and '
                         'this reconstruction has none: reconstruct with method.reconstruct, '
                         'or read one back with export.load_reconstruction(path, G)')
    size = rendered.shape[-1]
    with torch.no_grad():
        gan = FramedGAN(G, getattr(rec, "gan_crop", 1.0))  # the crop the image was cut at
        out, _ = invert_pseudo(rec.encoder, gan, rec.w, rendered.to(G.device),
                               gan.generate(rec.w, size))
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
           axes: str = "image") -> Tensor:
    """The reconstruction turned by ``yaw`` and ``pitch`` degrees about ``axes`` (as the
    picture sees it, or added to its own view's angles: see :func:`edit_view`), its light
    unchanged: ``1×3×S×S`` (``B×3×S×S`` for ``B`` angles)."""
    _check_rec(rec)
    return render_edits(rec, edit_view(rec.view, yaw, pitch, axes), rec.light, route, G)[0]


def relight(rec, light: Tensor, route: str = "mesh", G=None, axes: str = "image") -> Tensor:
    """The reconstruction in its own view under ``light`` ``B×4``: its direction (about
    ``axes``, see :func:`edit_light`) with the reconstruction's own strengths,
    ``B×3×S×S``."""
    _check_rec(rec)
    return render_edits(rec, rec.view, edit_light(rec, light, axes), route, G)[0]


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
