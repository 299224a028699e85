"""SynFaces: a procedural world of 3D faces with complete ground truth — Chapters 1 and 7.

The paper measures its shapes on synthetic faces rendered from the Basel Face Model. This
book builds its own stand-in that anyone can regenerate: each face is a smooth depth map
(a head on a background wall) with a nose, brow ridge, eye sockets, cheeks, lips and chin,
painted with an albedo (skin, hair, brows, eyes, lips, background), lit and turned with the
same renderer Φ the method uses. Because the images come from Φ, every factor of the
method — depth, albedo, view, light — has an exact ground truth.

Faces are drawn from a random stream keyed by ``(seed, index)``: face ``i`` of a seed is the
same however many faces are asked for, and different seeds give different faces.

Geometry is laid out in normalised image coordinates x, y ∈ [−1, 1] (x right, y down), so the
same face renders at 64 and 128 pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .paper import SYNFACE_LIGHTS, LightRanges, ViewRanges
from .pseudo import sample_lights, sample_views
from .render import Renderer

#: Poses of the world: yaw within ±35°, pitch ±15°, a little roll and translation.
SYNFACE_VIEWS = ViewRanges(pitch=15.0, yaw=35.0, roll=5.0, tx=0.006, ty=0.006, tz=0.0)
#: The (ambient, diffuse) strengths the random light recipe perturbs.
SYNFACE_BASE_LIGHT = (0.45, 0.3)

# Palettes in linear RGB [0, 1].
_SKIN_LIGHT = np.array([0.94, 0.79, 0.69])
_SKIN_DARK = np.array([0.34, 0.22, 0.15])
_HAIR = np.array([[0.07, 0.06, 0.05], [0.20, 0.13, 0.08], [0.38, 0.25, 0.13],
                  [0.74, 0.60, 0.36], [0.52, 0.22, 0.10], [0.62, 0.61, 0.60]])
_IRIS = np.array([[0.25, 0.15, 0.08], [0.12, 0.08, 0.05], [0.25, 0.42, 0.62],
                  [0.28, 0.45, 0.30], [0.45, 0.36, 0.22]])


@dataclass(frozen=True)
class FaceParams:
    """Shape and colour of one face (normalised image units; depths in world units)."""

    # head and neck
    cx: float
    cy: float
    half_width: float
    half_height: float
    head_relief: float
    head_profile: float
    neck_width: float
    neck_relief: float
    background_depth: float
    # features, in head-local coordinates X = (x − cx)/half_width, Y = (y − cy)/half_height
    eye_x: float
    eye_y: float
    eye_socket: float
    brow_ridge: float
    nose_tip_y: float
    nose_width: float
    nose_height: float
    cheek: float
    mouth_y: float
    lips: float
    chin: float
    # colours
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lip_colour: tuple[float, float, float]
    background: tuple[float, float, float]
    background_gradient: float
    hairline: float
    hair_sides: float
    bald: bool


def _face_generator(seed: int, index: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] % (2**63 - 1)))


def face_params(seed: int, index: int) -> FaceParams:
    """Face ``index`` of ``seed``'s shape and colours: who the face is, whatever its view
    and light (what :meth:`SynFaces.sample` draws first for it)."""
    return sample_face_params(_face_generator(seed, index))


def sample_face_params(generator: torch.Generator) -> FaceParams:
    """Draw one face's shape and colours."""
    def u(lo: float, hi: float) -> float:
        return float(torch.rand((), generator=generator)) * (hi - lo) + lo

    def pick(palette: np.ndarray) -> np.ndarray:
        return palette[int(torch.randint(len(palette), (), generator=generator))]

    # Tight crops like the paper's synthetic faces: the head fills most of the frame.
    half_width = u(0.68, 0.80)
    half_height = half_width * u(1.22, 1.40)
    head_relief = u(0.11, 0.13)
    eye_y = u(-0.14, -0.02)
    nose_tip_y = u(0.24, 0.36)
    tone = u(0.0, 1.0)
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK
    skin = np.clip(skin * np.array([u(0.96, 1.04), u(0.96, 1.04), u(0.95, 1.05)]), 0, 1)
    lip = np.clip(0.55 * skin + 0.45 * np.array([0.62, 0.22, 0.25]) * u(0.7, 1.1), 0, 1)
    bg_hue = np.array([u(0.15, 0.85), u(0.15, 0.85), u(0.15, 0.85)])
    bg = 0.5 * bg_hue + 0.5 * bg_hue.mean()  # muted colours
    return FaceParams(
        cx=u(-0.03, 0.03), cy=u(-0.02, 0.08), half_width=half_width, half_height=half_height,
        head_relief=head_relief, head_profile=u(0.6, 0.8), neck_width=half_width * u(0.45, 0.6),
        neck_relief=head_relief * u(0.4, 0.5), background_depth=u(1.075, 1.09),
        eye_x=u(0.33, 0.42), eye_y=eye_y, eye_socket=u(0.008, 0.016),
        brow_ridge=u(0.003, 0.010), nose_tip_y=nose_tip_y, nose_width=u(0.07, 0.11),
        nose_height=u(0.014, 0.030), cheek=u(0.004, 0.012),
        mouth_y=nose_tip_y + u(0.15, 0.21), lips=u(0.003, 0.007), chin=u(0.004, 0.012),
        skin=tuple(skin), hair=tuple(pick(_HAIR) * u(0.85, 1.15)), iris=tuple(pick(_IRIS)),
        lip_colour=tuple(lip), background=tuple(bg), background_gradient=u(-0.25, 0.25),
        hairline=u(-0.68, -0.40), hair_sides=u(0.0, 1.0), bald=u(0.0, 1.0) < 0.1,
    )


# ----------------------------------------------------------------------------- geometry
def _gauss(x: Tensor, y: Tensor, mx: float, my: float, sx: float, sy: float) -> Tensor:
    return torch.exp(-0.5 * (((x - mx) / sx) ** 2 + ((y - my) / sy) ** 2))


def _smoothstep(edge0: float, edge1: float, x: Tensor) -> Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def gaussian_blur(img: Tensor, sigma_px: float) -> Tensor:
    """Gaussian blur of ``B×C×H×W`` with replicated borders (kernel radius ⌈3σ⌉)."""
    from kornia.filters import gaussian_blur2d

    size = 2 * max(1, math.ceil(3 * sigma_px)) + 1
    return gaussian_blur2d(img, (size, size), (sigma_px, sigma_px), border_type="replicate")


def face_geometry(p: FaceParams, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Relief (how far the surface stands out of the background wall) and the head mask.

    Args:
        p: the face.
        x, y: ``H×W`` normalised image coordinates.

    Returns:
        (relief ``H×W`` ≥ 0 in world depth units, foreground ``H×W`` in {0, 1}).
    """
    X, Y = (x - p.cx) / p.half_width, (y - p.cy) / p.half_height
    r2 = X**2 + Y**2
    # (1 − r²)^p: p = 1/2 would be a hemisphere with vertical sides; faces recede sooner.
    head = p.head_relief * (1 - r2).clamp(min=0) ** p.head_profile
    # The neck: a half-cylinder under the head, down to the bottom of the image.
    xn = (x - p.cx) / p.neck_width
    neck = p.neck_relief * torch.sqrt((1 - xn**2).clamp(min=0)) * (Y > 0.3).to(x.dtype)
    base = torch.maximum(head, neck)
    # Features fade out towards the rim of the face.
    face = _smoothstep(0.95, 0.55, torch.sqrt(r2))
    ex, ey = p.eye_x, p.eye_y
    brow_y = ey - 0.16
    nose_top = ey + 0.02
    ramp = ((Y - nose_top) / (p.nose_tip_y - nose_top)).clamp(0, 1) ** 1.3
    after_tip = torch.exp(-0.5 * ((Y - p.nose_tip_y).clamp(min=0) / 0.045) ** 2)
    nose = p.nose_height * ramp * after_tip * torch.exp(-0.5 * (X / p.nose_width) ** 2)
    nostrils = 0.35 * p.nose_height * (_gauss(X, Y, 0.12, p.nose_tip_y, 0.06, 0.04)
                                       + _gauss(X, Y, -0.12, p.nose_tip_y, 0.06, 0.04))
    features = (
        nose + nostrils
        - p.eye_socket * (_gauss(X, Y, ex, ey, 0.16, 0.09) + _gauss(X, Y, -ex, ey, 0.16, 0.09))
        + p.brow_ridge * torch.exp(-0.5 * ((Y - brow_y) / 0.06) ** 2) * _smoothstep(0.75, 0.45, X.abs())
        + p.cheek * (_gauss(X, Y, 0.45, 0.25, 0.18, 0.16) + _gauss(X, Y, -0.45, 0.25, 0.18, 0.16))
        + p.lips * (_gauss(X, Y, 0.0, p.mouth_y - 0.03, 0.17, 0.03)
                    + _gauss(X, Y, 0.0, p.mouth_y + 0.035, 0.15, 0.035))
        - 0.5 * p.lips * _gauss(X, Y, 0.0, p.mouth_y, 0.15, 0.012)
        + p.chin * _gauss(X, Y, 0.0, p.mouth_y + 0.24, 0.2, 0.1)
    )
    relief = base + face * features * (head > 0).to(x.dtype)
    foreground = (head > 0).to(x.dtype)
    return relief.clamp(min=0), foreground


def face_albedo(p: FaceParams, x: Tensor, y: Tensor, foreground: Tensor) -> Tensor:
    """Albedo ``3×H×W`` in linear [0, 1]: background, skin, hair, brows, eyes, lips."""
    X, Y = (x - p.cx) / p.half_width, (y - p.cy) / p.half_height
    rgb = lambda c: torch.tensor(c, dtype=x.dtype).view(3, 1, 1)  # noqa: E731
    bg = rgb(p.background) * (1 + p.background_gradient * y)
    skin = rgb(p.skin) * (1 - 0.06 * (Y > 0.9).to(x.dtype))  # the neck sits in shadow a little
    # blush on the cheeks
    blush = 0.08 * (_gauss(X, Y, 0.45, 0.3, 0.15, 0.12) + _gauss(X, Y, -0.45, 0.3, 0.15, 0.12))
    skin = skin * (1 + blush * torch.tensor([0.6, -0.3, -0.3]).view(3, 1, 1))
    alb = bg * (1 - foreground) + skin * foreground
    r = torch.sqrt(X**2 + Y**2)

    def paint(colour: Tensor, weight: Tensor) -> None:
        nonlocal alb
        alb = alb * (1 - weight) + colour * weight

    ex, ey = p.eye_x, p.eye_y
    for side in (-1.0, 1.0):
        # brows: an arc above each eye
        bx = X - side * ex
        brow_curve = ey - 0.17 + 0.9 * bx**2
        brow = torch.exp(-0.5 * ((Y - brow_curve) / 0.028) ** 2) * _smoothstep(0.22, 0.14, bx.abs())
        paint(0.35 * rgb(p.skin) + 0.65 * rgb(p.hair) * 0.6, 0.9 * brow)
        # eyes: sclera, iris, pupil
        sclera = _smoothstep(1.0, 0.8, torch.sqrt((bx / 0.13) ** 2 + ((Y - ey) / 0.05) ** 2))
        paint(rgb((0.88, 0.87, 0.84)), sclera)
        iris_r = torch.sqrt((bx * p.half_width) ** 2 + ((Y - ey) * p.half_height) ** 2)
        paint(rgb(p.iris), sclera * _smoothstep(0.042, 0.03, iris_r))
        paint(rgb((0.03, 0.03, 0.03)), sclera * _smoothstep(0.018, 0.01, iris_r))
    lips = _smoothstep(1.0, 0.75, torch.sqrt((X / 0.2) ** 2 + ((Y - p.mouth_y) / 0.065) ** 2))
    paint(rgb(p.lip_colour), lips)
    paint(rgb(p.lip_colour) * 0.5, lips * torch.exp(-0.5 * ((Y - p.mouth_y) / 0.012) ** 2))
    if not p.bald:
        # hair: above a hairline that curves down at the temples, optionally over the sides
        line = p.hairline + 0.55 * X**2
        top = _smoothstep(line + 0.04, line - 0.04, Y)
        sides = p.hair_sides * _smoothstep(0.8, 0.9, X.abs()) * _smoothstep(0.25, 0.05, Y)
        inside = _smoothstep(1.0, 0.96, r) * (Y < 0.2).to(x.dtype)  # on the head, not the wall
        paint(rgb(p.hair), torch.maximum(top, sides) * inside)
    return alb.clamp(0, 1)


def _wall_albedo(albedo: Tensor, mask: Tensor) -> Tensor:
    """The background wall alone, ``B×3×H×W``: the wall's colour varies only from row to
    row, so each row is the mean of its wall pixels (away from the head's blurred edge)."""
    wall = 1.0 - F.max_pool2d(mask, 5, stride=1, padding=2)
    row = (albedo * wall).sum(3, keepdim=True) / wall.sum(3, keepdim=True).clamp(min=1.0)
    return row.expand_as(albedo)


# ----------------------------------------------------------------------------- the world
class SynFaces:
    """The procedural face world.

    Args:
        image_size: 64 or 128 (any size ≥ 16 works; features are resolved from 64 up).
        views, lights: the ranges poses and lights are drawn from.

    >>> batch = SynFaces(64).sample(2, seed=0)
    >>> batch["image"].shape, batch["depth"].shape, batch["mask"].shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2, 64, 64]), torch.Size([2, 1, 64, 64]))
    """

    def __init__(self, image_size: int = 64, views: ViewRanges = SYNFACE_VIEWS,
                 lights: LightRanges = SYNFACE_LIGHTS,
                 base_light: tuple[float, float] = SYNFACE_BASE_LIGHT) -> None:
        if not isinstance(image_size, int) or image_size < 16:
            raise ValueError(f"image_size must be an int ≥ 16, got {image_size!r}")
        self.image_size = image_size
        self.renderer = Renderer(image_size)
        self.views, self.lights, self.base_light = views, lights, base_light

    def coordinates(self) -> tuple[Tensor, Tensor]:
        """Normalised coordinates (x ``H×W``, y ``H×W``) in [−1, 1]."""
        u, v = self.renderer.pixel_grid()
        s = self.image_size - 1
        return 2 * u / s - 1, 2 * v / s - 1

    def canonical(self, params: list[FaceParams]) -> tuple[Tensor, Tensor, Tensor]:
        """Canonical (frontal) depth ``n×H×W``, albedo ``n×3×H×W`` in [−1, 1] and head mask
        ``n×1×H×W`` of the given faces."""
        x, y = self.coordinates()
        r = self.renderer
        depths, albedos, masks = [], [], []
        for p in params:
            relief, fg = face_geometry(p, x, y)
            depths.append(p.background_depth - relief)
            albedos.append(face_albedo(p, x, y, fg))
            masks.append(fg)
        # A slight blur rounds off the rim where the head meets the wall.
        sigma = 0.5 * self.image_size / 64
        depth = gaussian_blur(torch.stack(depths)[:, None], sigma)[:, 0]
        depth = depth.clamp(r.min_depth + 0.005, r.max_depth - 0.005)
        albedo = gaussian_blur(torch.stack(albedos), 0.35 * self.image_size / 64) * 2 - 1
        return depth, albedo, torch.stack(masks)[:, None]

    def sample(self, n: int, seed: int = 0, start: int = 0,
               device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Faces ``start .. start+n−1`` of ``seed`` with their ground truth.

        Returns:
            dict with ``image`` ``n×3×H×W`` in [−1, 1]; ``depth`` (ground truth in the image's
            view, ``invalid_depth`` where nothing is seen), ``normal`` ``n×H×W×3`` (of that
            depth), ``mask`` ``n×1×H×W`` (the head as seen — the face region, like the BFM mesh the paper evaluates on); the canonical factors
            ``depth_canon``, ``albedo``, ``shading`` ``n×1×H×W``, ``canon_image``,
            ``mask_canon``; ``background`` (the lit wall shown where the turned surface
            leaves the picture uncovered); and ``view`` ``n×6``, ``light`` ``n×4``.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        params, views, lights = [], [], []
        for i in range(start, start + n):
            g = _face_generator(seed, i)
            params.append(sample_face_params(g))
            views.append(sample_views(1, self.views, generator=g))
            lights.append(sample_lights(1, self.base_light, self.lights, generator=g))
        depth_canon, albedo, mask_canon = self.canonical(params)
        return self.render(depth_canon, albedo, torch.cat(lights), torch.cat(views),
                           mask_canon, device=device)

    def render(self, depth_canon: Tensor, albedo: Tensor, light: Tensor, view: Tensor,
               mask_canon: Tensor, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Render canonical faces under lights and views (the argument order of
        :meth:`Renderer.render <g2s_lite.render.Renderer.render>`), with the head mask:
        the ground-truth dict of :meth:`sample`. Useful to see the *same* face under a view
        and light of one's choice."""
        r = self.renderer
        depth_canon, albedo, mask_canon, view, light = (
            t.to(device) for t in (depth_canon, albedo, mask_canon, view, light))
        normal_canon = r.normals(depth_canon)
        shading = r.shading(normal_canon, light)
        canon_image = r.shade(albedo, normal_canon, light)
        depth = r.warp_depth(depth_canon, view)
        # Where the wall turns away from the image border, show more of the same wall.
        background = r.shade(_wall_albedo(albedo, mask_canon),
                             r.normals(torch.ones_like(depth_canon)), light)
        image, valid = r.warp_image(canon_image, depth_canon, view, background=background,
                                    warped_depth=depth)
        seen, _ = r.warp_image(mask_canon, depth_canon, view, background=0.0, warped_depth=depth)
        mask = (seen > 0.5).to(image.dtype) * valid
        return {"image": image, "depth": depth, "normal": r.normals(depth), "mask": mask,
                "valid": valid, "depth_canon": depth_canon, "albedo": albedo,
                "shading": shading, "canon_image": canon_image, "mask_canon": mask_canon,
                "background": background,
                "view": view, "light": light}


def render_turned(faces: dict[str, Tensor], views: Tensor, lights: Tensor, index: int = 0,
                  renderer: Renderer | None = None) -> tuple[Tensor, Tensor]:
    """What a perfect pseudo sample would show: face ``index`` of a :meth:`SynFaces.sample`
    turned by ``views`` about the image's own frame (as pseudo samples turn it, Chapter 4)
    and lit by ``lights`` — the ground truth that projected samples can be measured against.

    The true surface as seen (``faces["depth"]``) becomes the canonical depth and the true
    albedo as seen the canonical albedo; the pseudo-sample renderer does the rest.

    Args:
        faces: a SynFaces sample.
        views: ``n×6`` views about the image's frame; lights: ``n×4``.
        renderer: default ``Renderer(S)``.

    Returns:
        (images ``n×3×S×S``, masks ``n×1×S×S``) as :func:`~g2s_lite.pseudo.render_pseudo`.
    """
    from .pseudo import render_pseudo

    i = slice(index, index + 1)
    renderer = renderer or Renderer(faces["image"].shape[-1])
    ambient_only = faces["light"].new_tensor([[1.0, 0.0, 0.0, 0.0]])
    albedo_seen, _ = renderer.render(faces["depth_canon"][i], faces["albedo"][i], ambient_only,
                                     faces["view"][i], background=faces["albedo"][i])
    return render_pseudo(renderer, faces["depth"][i], albedo_seen, views, lights)
