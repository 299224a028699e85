"""The photo-geometric renderer Φ(d, a, v, l) — Chapter 1.

Read top to bottom, this module builds Φ in the order the chapter does:

1. the camera: a pinhole with field of view ``fov`` looking along +z, x right, y down;
2. depth → 3D points: pixel (u, v) with depth z is the point z·K⁻¹(u, v, 1);
3. normals from the points by finite differences;
4. Lambertian shading with an ambient and a diffuse term;
5. the view transform: rotate about (0, 0, rot_center_depth), then translate;
6. warping: rasterize the triangle mesh of the depth grid with a z-buffer (pure PyTorch);
7. Φ itself: shade the canonical image, warp its depth to the view, and sample the shaded
   image at the inverse-warped grid.

Conventions (the book's appendix *Design and conventions*): images ``B×3×H×W`` in [-1, 1];
depth ``B×H×W``; normals ``B×H×W×3``; masks ``B×1×H×W``; view ``B×6`` = (rx, ry, rz, tx, ty,
tz) with R = Rz·Ry·Rx; light ``B×4`` = (ambient, diffuse, dx, dy).

Light convention (fixed here, used everywhere): ``l = normalize(dx, dy, 1)`` is the direction
in which the light *travels*, from the camera's side into the scene. Normals point *out of*
the surface, towards the camera (a wall facing the camera has normal (0, 0, −1)). The diffuse
term is ``max(0, ⟨n, −l⟩)``: −l points back towards the light. (The paper's code stores
normals pointing into the surface and writes ⟨n, l⟩; the images are identical.) So dx > 0
lights the surfaces that face −x, the left of the image.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .paper import FOV, MAX_DEPTH, MIN_DEPTH, ROT_CENTER_DEPTH


# Candidate windows of the rasterizer: a triangle whose bounding box spans at most s pixels
# in each direction is tested against an s×s block of pixel centres. Warped depth grids are
# mostly made of triangles about one pixel wide, stretched ones are rare, so a few small
# windows carry almost all the work and large ones stay cheap.
_WINDOWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
# Barycentric tolerance: pixel centres on a shared edge (every vertex sits exactly on a pixel
# centre at the identity view) must be claimed by at least one triangle despite round-off.
_INSIDE_TOL = 1e-5
_NO_KEY = torch.iinfo(torch.int64).max


# ----------------------------------------------------------------------------- rotations
def rotation_matrix(angles: Tensor) -> Tensor:
    """Rotation matrices R = Rz·Ry·Rx (right-handed, column vectors).

    Args:
        angles: ``B×3`` rotations (rx, ry, rz) in radians about the x, y and z axes
            (pitch, yaw, roll).

    Returns:
        ``B×3×3``.

    >>> R = rotation_matrix(torch.tensor([[0.0, math.pi / 2, 0.0]]))
    >>> torch.allclose(R[0] @ torch.tensor([0.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    True
    """
    rx, ry, rz = angles.unbind(-1)
    one, zero = torch.ones_like(rx), torch.zeros_like(rx)
    cx, sx, cy, sy, cz, sz = rx.cos(), rx.sin(), ry.cos(), ry.sin(), rz.cos(), rz.sin()
    r_x = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).view(-1, 3, 3)
    r_y = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(-1, 3, 3)
    r_z = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).view(-1, 3, 3)
    return r_z @ r_y @ r_x


def make_view(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0,
              tx: float = 0.0, ty: float = 0.0, tz: float = 0.0, batch: int = 1) -> Tensor:
    """A ``batch×6`` view tensor from angles in **degrees** and a translation.

    >>> math.isclose(make_view(yaw=90.0)[0, 1].item(), math.pi / 2, rel_tol=1e-6)
    True
    """
    rad = [math.radians(a) for a in (pitch, yaw, roll)]
    return torch.tensor([rad + [tx, ty, tz]], dtype=torch.float32).repeat(batch, 1)


def light_direction(light: Tensor) -> Tensor:
    """Unit direction of travel ``normalize(dx, dy, 1)`` of a ``B×4`` light → ``B×3``."""
    dxy = light[:, 2:4]
    return F.normalize(torch.cat([dxy, torch.ones_like(dxy[:, :1])], 1), dim=1)


# ----------------------------------------------------------------------------- the mesh
def grid_faces(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Triangles of the depth-grid mesh: two per pixel quad, ``F×3`` vertex indices.

    Vertex ``v·W + u`` is pixel (u, v); F = 2·(H−1)·(W−1).
    """
    idx = torch.arange(height * width, device=device).view(height, width)
    tl, tr = idx[:-1, :-1].reshape(-1), idx[:-1, 1:].reshape(-1)
    bl, br = idx[1:, :-1].reshape(-1), idx[1:, 1:].reshape(-1)
    return torch.cat([torch.stack([tl, bl, tr], 1), torch.stack([tr, bl, br], 1)], 0)


def _edge(ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Twice the signed area of triangle (a, b, p): positive if p is left of a→b."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _barycentric_depth(tri: Tensor, pu: Tensor, pv: Tensor) -> tuple[Tensor, Tensor]:
    """Barycentric coordinates of pixel centres and the perspective-correct depth there.

    Args:
        tri: ``...×3×3`` triangles, vertices (u, v, z).
        pu, pv: pixel centres broadcastable against ``tri[..., 0, 0]``.

    Returns:
        (bary ``...×3``, depth ``...``). The depth is where the pixel's ray meets the plane
        of the triangle: 1/z interpolates linearly in screen space.
    """
    (ua, va, za), (ub, vb, zb), (uc, vc, zc) = (t.unbind(-1) for t in tri.unbind(-2))
    area = _edge(ua, va, ub, vb, uc, vc)
    ba = _edge(ub, vb, uc, vc, pu, pv) / area
    bb = _edge(uc, vc, ua, va, pu, pv) / area
    bc = 1.0 - ba - bb
    depth = 1.0 / (ba / za + bb / zb + bc / zc)
    return torch.stack([ba, bb, bc], -1), depth


def grid_triangles(grid: Tensor) -> Tensor:
    """The triangles of a vertex grid, in the order of :func:`grid_faces`.

    Args:
        grid: ``B×H×W×C`` per-pixel vertex attributes (e.g. (u, v, z)).

    Returns:
        ``B×F×3×C`` with F = 2·(H−1)·(W−1).
    """
    b_size, c = grid.shape[0], grid.shape[-1]
    tl, tr = grid[:, :-1, :-1], grid[:, :-1, 1:]
    bl, br = grid[:, 1:, :-1], grid[:, 1:, 1:]
    first = torch.stack([tl, bl, tr], -2).reshape(b_size, -1, 3, c)
    second = torch.stack([tr, bl, br], -2).reshape(b_size, -1, 3, c)
    return torch.cat([first, second], 1)


@torch.no_grad()
def _zbuffer(tri: Tensor, height: int, width: int) -> Tensor:
    """Index of the nearest triangle covering each pixel centre (−1 where none does).

    Each triangle gets its barycentric coordinates and inverse depth as linear functions of
    the pixel position relative to its first vertex (1/z is linear in screen space); every
    pixel centre in its bounding box is then tested with a few multiply-adds.

    Args:
        tri: ``B×F×3×3`` triangles, vertices (u, v, z): pixel coordinates and camera depth.

    Returns:
        ``B·H·W`` int64 global triangle ids ``b·F + f``.
    """
    b_size, n_faces = tri.shape[:2]
    flat = tri.reshape(-1, 3, 3)
    (ua, va, za), (ub, vb, zb), (uc, vc, zc) = (flat[:, k].unbind(-1) for k in range(3))
    umin = torch.minimum(torch.minimum(ua, ub), uc)
    umax = torch.maximum(torch.maximum(ua, ub), uc)
    vmin = torch.minimum(torch.minimum(va, vb), vc)
    vmax = torch.maximum(torch.maximum(va, vb), vc)
    u0 = umin.ceil().clamp(0, width - 1)
    v0 = vmin.ceil().clamp(0, height - 1)
    span_u = umax.floor().clamp(-1, width - 1) - u0 + 1
    span_v = vmax.floor().clamp(-1, height - 1) - v0 + 1
    e1u, e1v, e2u, e2v = ub - ua, vb - va, uc - ua, vc - va
    area = e1u * e2v - e1v * e2u
    # NaN fails every comparison, so broken triangles drop out here too.
    keep = ((span_u > 0) & (span_v > 0) & (area.abs() > 1e-9) & (area.abs() < math.inf)
            & (torch.minimum(torch.minimum(za, zb), zc) > 0))
    span = torch.maximum(span_u, span_v).masked_fill(~keep, 0).long()

    # Plane coefficients for every triangle (elementwise, cheap), relative to vertex A:
    # with x = u − u_A, y = v − v_A, b_B = bx·x + by·y, b_C = cx·x + cy·y, 1/z = wa + wx·x + wy·y.
    inv = 1.0 / area
    wa = 1.0 / za
    bx, by, cx, cy = e2v * inv, -e2u * inv, -e1v * inv, e1u * inv
    dwb, dwc = 1.0 / zb - wa, 1.0 / zc - wa
    coef = torch.stack([u0 - ua, v0 - va, bx, by, cx, cy, wa, dwb * bx + dwc * cx,
                        dwb * by + dwc * cy, span_u, span_v])
    base = (torch.arange(span.shape[0], device=tri.device) // n_faces) * (height * width) \
        + v0.long() * width + u0.long()

    # Sort triangles by window size once; each window is then a contiguous slice.
    span, order = torch.sort(span)
    first = int(torch.searchsorted(span, torch.ones(1, dtype=span.dtype, device=span.device)))
    span, tid = span[first:], order[first:]
    # (index_select: several times faster than indexing with [tid]; coefficients in rows)
    ox, oy, bx, by, cx, cy, wa, wx, wy, su, sv = coef.index_select(1, tid)
    base = base.index_select(0, tid)

    keys, pixels = [], []
    # spans are clipped to the image, so the last window is the image itself
    windows = [s for s in _WINDOWS if s < max(height, width)] + [max(height, width)]
    bounds = torch.searchsorted(span, torch.tensor(windows, device=span.device), right=True)
    lo = 0
    for size, hi in zip(windows, bounds.tolist()):
        if hi > lo:
            sl = slice(lo, hi)
            offs = torch.arange(size, device=tri.device)
            du, dv = offs.repeat(size), offs.repeat_interleave(size)  # size²
            x = ox[sl, None] + du
            y = oy[sl, None] + dv
            b_b = bx[sl, None] * x + by[sl, None] * y
            b_c = cx[sl, None] * x + cy[sl, None] * y
            w = wa[sl, None] + wx[sl, None] * x + wy[sl, None] * y
            inside = ((b_b >= -_INSIDE_TOL) & (b_c >= -_INSIDE_TOL)
                      & (b_b + b_c <= 1.0 + _INSIDE_TOL) & (w > 0)
                      & (du < su[sl, None]) & (dv < sv[sl, None]))
            row, col = inside.nonzero(as_tuple=True)
            # Pack (depth, triangle id) into one int64: positive float32 bit patterns sort
            # like the floats, so one scatter-min finds the nearest surface and its triangle.
            zbits = (1.0 / w[row, col]).float().view(torch.int32).long()
            keys.append((zbits << 32) | tid[sl][row])
            pixels.append(base[sl][row] + dv[col] * width + du[col])
        lo = hi

    zbuf = torch.full((b_size * height * width,), _NO_KEY, dtype=torch.int64, device=tri.device)
    if keys:
        zbuf.scatter_reduce_(0, torch.cat(pixels), torch.cat(keys), reduce="amin")
    return torch.where(zbuf == _NO_KEY, torch.full_like(zbuf, -1), zbuf & 0xFFFFFFFF)


def rasterize_depth(verts: Tensor, faces: Tensor, height: int, width: int, fill: float,
                    triangles: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Z-buffer rasterization of a triangle mesh into a depth map, differentiable.

    The visibility search runs without gradients; the depth of each covered pixel is then
    recomputed from its winning triangle's vertices, so gradients reach the vertex
    positions (hence depth and view) through the visible triangles only.

    Args:
        verts: ``B×N×3`` vertices (u, v, z): pixel coordinates and camera depth.
        faces: ``F×3`` vertex indices, shared by the batch.
        height, width: output size.
        fill: depth written where no triangle covers the pixel centre.
        triangles: ``verts[:, faces]`` (``B×F×3×3``, no gradient needed) if it is cheaper
            to build another way, e.g. :func:`grid_triangles` for a depth grid.

    Returns:
        (depth ``B×H×W``, triangle id ``B×H×W`` — ``b·F + f``, −1 where uncovered).
    """
    b_size, n_faces = verts.shape[0], faces.shape[0]
    with torch.no_grad():
        tri = verts.detach()[:, faces] if triangles is None else triangles.detach()
        winner = _zbuffer(tri, height, width)
    covered = (winner >= 0).nonzero().squeeze(1)
    tid = winner[covered]
    # the winners' vertices, K×3×3 with gradients: rows b·N + vertex of the flattened verts
    rows = (tid // n_faces * verts.shape[1])[:, None] + faces[tid % n_faces]
    won = verts.reshape(-1, 3).index_select(0, rows.view(-1)).view(-1, 3, 3)
    pu = (covered % width).to(verts.dtype)
    pv = ((covered // width) % height).to(verts.dtype)
    _, depth = _barycentric_depth(won, pu, pv)
    out = torch.full((b_size * height * width,), fill, dtype=verts.dtype, device=verts.device)
    out = out.index_put((covered,), depth)
    shape = (b_size, height, width)
    return out.view(shape), winner.view(shape)


# ----------------------------------------------------------------------------- the renderer
class Renderer:
    """Camera, shading and warping for ``H×W`` images: the photo-geometric renderer Φ.

    Args:
        image_size: ``S`` for square images or ``(H, W)``.
        fov: horizontal field of view in degrees; 10° is nearly orthographic.
        min_depth, max_depth: the range canonical depth lives in.
        rot_center_depth: views rotate about the point (0, 0, rot_center_depth).

    >>> r = Renderer(64)
    >>> d = torch.ones(1, 64, 64)
    >>> torch.allclose(r.warp_depth(d, make_view()), d)
    True
    """

    def __init__(self, image_size: int | Sequence[int], fov: float = FOV,
                 min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH,
                 rot_center_depth: float = ROT_CENTER_DEPTH) -> None:
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        if height < 2 or width < 2:
            raise ValueError(f"image_size must be at least 2×2 pixels, got {height}×{width}")
        if not 0 < fov < 180:
            raise ValueError(f"fov must be in (0, 180) degrees, got {fov}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.height, self.width = int(height), int(width)
        self.fov = float(fov)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.rot_center_depth = float(rot_center_depth)
        # f = (W−1) / (2 tan(fov/2)) with square pixels; principal point at the image centre
        # in pixel-centre coordinates, so pixel u maps to grid_sample's x = 2u/(W−1) − 1.
        self.focal = (self.width - 1) / (2.0 * math.tan(math.radians(self.fov) / 2.0))
        self.cx, self.cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        margin = self.max_depth - self.min_depth
        # A warp can push real surface a little past max_depth; anything beyond half a range
        # more is "no surface here". Uncovered pixels get a depth a full range beyond.
        self.valid_max_depth = self.max_depth + margin / 2.0
        self.invalid_depth = self.max_depth + margin

    def __repr__(self) -> str:
        return (f"Renderer({self.height}×{self.width}, fov={self.fov}°, "
                f"depth=[{self.min_depth}, {self.max_depth}], "
                f"rot_center_depth={self.rot_center_depth})")

    # ---- camera --------------------------------------------------------------------------
    @property
    def K(self) -> Tensor:  # noqa: N802 (the intrinsics are called K everywhere)
        """Intrinsic matrix ``3×3``."""
        return torch.tensor([[self.focal, 0.0, self.cx],
                             [0.0, self.focal, self.cy],
                             [0.0, 0.0, 1.0]])

    def pixel_grid(self, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """Pixel-centre coordinates (u ``H×W``, v ``H×W``): u along columns, v along rows."""
        v, u = torch.meshgrid(torch.arange(self.height, device=device, dtype=dtype),
                              torch.arange(self.width, device=device, dtype=dtype),
                              indexing="ij")
        return u, v

    def points(self, depth: Tensor) -> Tensor:
        """Back-project depth to camera-space points z·K⁻¹(u, v, 1): ``B×H×W`` → ``B×H×W×3``."""
        self._check_depth(depth)
        u, v = self.pixel_grid(depth.device, depth.dtype)
        x = (u - self.cx) / self.focal * depth
        y = (v - self.cy) / self.focal * depth
        return torch.stack([x, y, depth], -1)

    def project(self, points: Tensor) -> Tensor:
        """Camera-space points ``...×3`` → pixel coordinates (u, v) ``...×2``."""
        z = points[..., 2:3]
        return points[..., :2] / z * self.focal + points.new_tensor([self.cx, self.cy])

    def to_grid(self, uv: Tensor) -> Tensor:
        """Pixel coordinates ``...×2`` → ``grid_sample`` coordinates (align_corners=True)."""
        return uv / uv.new_tensor([(self.width - 1) / 2.0, (self.height - 1) / 2.0]) - 1.0

    # ---- view transform ----------------------------------------------------------------------
    def transform(self, points: Tensor, view: Tensor) -> Tensor:
        """Move points into view: p' = R(p − c) + c + t. ``B×...×3``, view ``B×6``."""
        self._check_view(view)
        b_size = points.shape[0]
        center = points.new_tensor([0.0, 0.0, self.rot_center_depth])
        rot = rotation_matrix(view[:, :3])
        flat = (points.reshape(b_size, -1, 3) - center) @ rot.transpose(1, 2)
        flat = flat + center + view[:, None, 3:6]
        return flat.view(points.shape)

    def inverse_transform(self, points: Tensor, view: Tensor) -> Tensor:
        """Undo :meth:`transform`: p = Rᵀ(p' − t − c) + c."""
        self._check_view(view)
        b_size = points.shape[0]
        center = points.new_tensor([0.0, 0.0, self.rot_center_depth])
        rot = rotation_matrix(view[:, :3])
        flat = (points.reshape(b_size, -1, 3) - view[:, None, 3:6] - center) @ rot
        return (flat + center).view(points.shape)

    # ---- geometry ----------------------------------------------------------------------------
    def normals(self, depth: Tensor) -> Tensor:
        """Unit surface normals ``B×H×W×3`` of a depth map, pointing towards the camera.

        Tangents are central differences of the 3D points (one-sided at the border), so a
        plane gets its exact normal everywhere.
        """
        pts = self.points(depth)
        d_v, d_u = torch.gradient(pts, dim=(1, 2))
        # (∂p/∂v) × (∂p/∂u) points to −z for a wall facing the camera: outwards.
        return F.normalize(torch.cross(d_v, d_u, dim=-1), dim=-1, eps=1e-12)

    def mesh(self, depth: Tensor, view: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Triangle mesh of the depth grid: vertices ``B×(H·W)×3`` (camera space, moved by
        ``view`` if given) and faces ``F×3``."""
        pts = self.points(depth)
        if view is not None:
            pts = self.transform(pts, self._expand(view, pts.shape[0], "view"))
        return pts.reshape(pts.shape[0], -1, 3), grid_faces(self.height, self.width, depth.device)

    # ---- shading -----------------------------------------------------------------------------
    def diffuse(self, normals: Tensor, light: Tensor) -> Tensor:
        """Diffuse term max(0, ⟨n, −l⟩): normals ``B×H×W×3``, light ``B×4`` → ``B×1×H×W``."""
        self._check_light(light)
        direction = light_direction(light)
        cos = -(normals * direction[:, None, None, :]).sum(-1)
        return cos.clamp(min=0.0).unsqueeze(1)

    def shading(self, normals: Tensor, light: Tensor) -> Tensor:
        """Shading s = a + b·max(0, ⟨n, −l⟩) → ``B×1×H×W``."""
        ambient, diffuse = light[:, 0].view(-1, 1, 1, 1), light[:, 1].view(-1, 1, 1, 1)
        return ambient + diffuse * self.diffuse(normals, light)

    def shade(self, albedo: Tensor, normals: Tensor, light: Tensor) -> Tensor:
        """The lit canonical image ((albedo + 1)/2 · s)·2 − 1, saturating at ±1 like a sensor.

        albedo ``B×3×H×W`` in [-1, 1], normals ``B×H×W×3``, light ``B×4`` → ``B×3×H×W``.
        """
        self._check_image(albedo, "albedo")
        return ((albedo + 1.0) / 2.0 * self.shading(normals, light) * 2.0 - 1.0).clamp(-1.0, 1.0)

    # ---- warping -----------------------------------------------------------------------------
    def warp_depth(self, depth: Tensor, view: Tensor) -> Tensor:
        """The canonical depth as seen from ``view``: ``B×H×W``, ``B×6`` → ``B×H×W``.

        Rasterizes the depth-grid mesh moved into the view with a z-buffer; each covered pixel
        gets the depth of the nearest triangle along its ray. Uncovered pixels get
        ``invalid_depth`` (> max_depth). A batch of one broadcasts against the other input.
        """
        depth, view = self._broadcast(depth=depth, view=view)
        pts = self.transform(self.points(depth), view)
        uvz = torch.cat([self.project(pts), pts[..., 2:3]], -1)  # B×H×W×3
        faces = grid_faces(self.height, self.width, depth.device)
        warped, _ = rasterize_depth(uvz.reshape(uvz.shape[0], -1, 3), faces, self.height,
                                    self.width, self.invalid_depth,
                                    triangles=grid_triangles(uvz.detach()))
        return warped

    def valid_mask(self, warped_depth: Tensor) -> Tensor:
        """Pixels some surface covers after a warp: ``B×H×W`` → ``B×1×H×W`` in {0, 1}."""
        return (warped_depth <= self.valid_max_depth).unsqueeze(1).to(warped_depth.dtype)

    def inverse_warp_grid(self, warped_depth: Tensor, view: Tensor) -> Tensor:
        """Where each pixel of the view came from in the canonical image, as a
        ``grid_sample`` grid ``B×H×W×2`` (align_corners=True)."""
        warped_depth, view = self._broadcast(depth=warped_depth, view=view)
        canon = self.inverse_transform(self.points(warped_depth), view)
        return self.to_grid(self.project(canon))

    def warp_image(self, image: Tensor, depth: Tensor, view: Tensor,
                   background: float | Tensor = 1.0,
                   warped_depth: Tensor | None = None,
                   mode: str = "bilinear") -> tuple[Tensor, Tensor]:
        """Show any canonical image (texture, mask, normal map) from ``view``.

        Args:
            image: ``B×C×H×W`` in canonical view.
            depth: canonical depth ``B×H×W``.
            view: ``B×6``.
            background: value (or ``B×C×H×W`` tensor) for pixels no surface covers.
            warped_depth: ``warp_depth(depth, view)`` if already computed.
            mode: ``grid_sample`` interpolation, "bilinear" or "nearest".

        Returns:
            (image ``B×C×H×W``, valid mask ``B×1×H×W``).
        """
        image, depth, view = self._broadcast(image=image, depth=depth, view=view)
        if warped_depth is None:
            warped_depth = self.warp_depth(depth, view)
        grid = self.inverse_warp_grid(warped_depth, view)
        out = F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)
        inside = (grid.abs() <= 1.0 + 1e-4).all(-1).unsqueeze(1).to(out.dtype)
        valid = self.valid_mask(warped_depth) * inside
        return out * valid + background * (1.0 - valid), valid

    def unwarp_image(self, image: Tensor, depth: Tensor, view: Tensor,
                     mode: str = "bilinear") -> Tensor:
        """Bring an image seen from ``view`` back into the canonical frame: each canonical
        pixel takes the value where its surface point lands in the view (zero outside the
        picture). The reverse of :meth:`warp_image` for what the view shows; the paper uses
        it to carry an object mask of the input image onto the canonical surface.

        image ``B×C×H×W`` (seen from ``view``), canonical depth ``B×H×W``, view ``B×6`` →
        ``B×C×H×W`` canonical.
        """
        image, depth, view = self._broadcast(image=image, depth=depth, view=view)
        grid = self.to_grid(self.project(self.transform(self.points(depth), view)))
        return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=True)

    def render(self, depth: Tensor, albedo: Tensor, light: Tensor, view: Tensor,
               background: float | Tensor = 1.0,
               warped_depth: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Φ(d, a, v, l): the image of canonical depth and albedo under a light and a view.

        Args:
            depth: canonical depth ``B×H×W`` in [min_depth, max_depth].
            albedo: canonical albedo ``B×3×H×W`` in [-1, 1].
            light: ``B×4`` (ambient, diffuse, dx, dy).
            view: ``B×6`` (rx, ry, rz, tx, ty, tz).
            background: value for pixels no surface covers after the warp.
            warped_depth: ``warp_depth(depth, view)`` if already computed.

        Returns:
            (image ``B×3×H×W`` in [-1, 1], valid mask ``B×1×H×W``). At the identity view the
            image is exactly the shaded canonical image. A batch of one broadcasts.
        """
        # normals before broadcasting: one depth seen from B views needs them once
        normals = self.normals(depth)
        depth, albedo, light, view = self._broadcast(depth=depth, albedo=albedo,
                                                     light=light, view=view)
        texture = self.shade(albedo, normals, light)
        image, valid = self.warp_image(texture, depth, view, background=background,
                                       warped_depth=warped_depth)
        return image.clamp(-1.0, 1.0), valid  # bilinear round-off can step past ±1

    def yaw_sweep(self, depth: Tensor, albedo: Tensor, light: Tensor, n: int = 9,
                  max_yaw: float = 60.0, view: Tensor | None = None,
                  background: float | Tensor = 1.0) -> Tensor:
        """Render ``n`` yaws evenly spaced in [−max_yaw, max_yaw] degrees (for animations).

        ``view`` (``B×6``, default identity) is the starting view the yaw is added to.

        Returns:
            ``B×n×3×H×W``.
        """
        depth, albedo, light = self._broadcast(depth=depth, albedo=albedo, light=light)
        b_size = depth.shape[0]
        base = torch.zeros(b_size, 6) if view is None else view.detach().cpu().float()
        yaws = torch.linspace(-math.radians(max_yaw), math.radians(max_yaw), n)
        views = base[:, None].repeat(1, n, 1)
        views[..., 1] += yaws
        rep = lambda t: t.repeat_interleave(n, 0)  # noqa: E731
        frames, _ = self.render(rep(depth), rep(albedo), rep(light),
                                views.view(-1, 6).to(depth), background=background)
        return frames.view(b_size, n, *frames.shape[1:])

    # ---- input checks --------------------------------------------------------------------
    def _check_depth(self, depth: Tensor) -> None:
        if not isinstance(depth, Tensor):
            raise TypeError(f"depth must be a torch.Tensor of shape B×H×W, got {type(depth)}")
        if depth.dim() != 3 or depth.shape[1:] != (self.height, self.width):
            hint = " (drop the channel axis: depth[:, 0])" if depth.dim() == 4 else ""
            raise ValueError(f"depth must have shape B×{self.height}×{self.width} for this "
                             f"renderer, got {tuple(depth.shape)}{hint}")

    def _check_image(self, image: Tensor, name: str) -> None:
        if image.dim() != 4 or image.shape[2:] != (self.height, self.width):
            raise ValueError(f"{name} must have shape B×C×{self.height}×{self.width}, "
                             f"got {tuple(image.shape)}")
        if name == "albedo" and image.shape[1] != 3:
            raise ValueError(f"albedo must have 3 channels (RGB), got {image.shape[1]}")

    @staticmethod
    def _check_view(view: Tensor) -> None:
        if view.dim() != 2 or view.shape[1] != 6:
            raise ValueError("view must have shape B×6 (rx, ry, rz, tx, ty, tz; radians), "
                             f"got {tuple(view.shape)}; make_view() builds one from degrees")

    @staticmethod
    def _check_light(light: Tensor) -> None:
        if light.dim() != 2 or light.shape[1] != 4:
            raise ValueError("light must have shape B×4 (ambient, diffuse, dx, dy), "
                             f"got {tuple(light.shape)}")

    @staticmethod
    def _expand(t: Tensor, b_size: int, name: str) -> Tensor:
        if t.shape[0] == b_size:
            return t
        if t.shape[0] == 1:
            return t.expand(b_size, *t.shape[1:])
        raise ValueError(f"{name} has batch size {t.shape[0]} but the other inputs have "
                         f"{b_size}; give batch sizes that match, or 1 to share one")

    def _broadcast(self, **tensors: Tensor) -> list[Tensor]:
        """Check shapes and broadcast batch-of-one inputs against the others."""
        checks = {"depth": self._check_depth, "view": self._check_view,
                  "light": self._check_light,
                  "albedo": lambda t: self._check_image(t, "albedo"),
                  "image": lambda t: self._check_image(t, "image")}
        for name, t in tensors.items():
            if not isinstance(t, Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            checks[name](t)
        b_size = max(t.shape[0] for t in tensors.values())
        ref = tensors.get("depth", next(iter(tensors.values())))
        return [self._expand(t, b_size, name).to(device=ref.device)
                for name, t in tensors.items()]
