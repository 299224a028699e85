"""The renderer Φ against independent expectations: analytic planes, a brute-force ray
caster, exact shifts, and gradient/NaN checks."""
import math

import numpy as np
import pytest
import torch

from g2s_lite.metrics import erode
from g2s_lite.render import (Renderer, grid_faces, grid_triangles, make_view, rasterize_depth,
                             rotation_matrix)
from conftest import smooth_depth


def plane_depth(r: Renderer, normal, point=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """Depth map of the plane ⟨n, p − p0⟩ = 0: z = ⟨n, p0⟩ / ⟨n, K⁻¹(u, v, 1)⟩."""
    n = torch.tensor(normal, dtype=torch.float64)
    u, v = r.pixel_grid(dtype=torch.float64)
    rays = torch.stack([(u - r.cx) / r.focal, (v - r.cy) / r.focal, torch.ones_like(u)], -1)
    z = (n @ torch.tensor(point, dtype=torch.float64)) / (rays @ n)
    return z.float()[None]


# ----------------------------------------------------------------------------- rotations
def test_rotation_axes_are_right_handed():
    rx = rotation_matrix(torch.tensor([[math.pi / 2, 0.0, 0.0]]))[0]
    ry = rotation_matrix(torch.tensor([[0.0, math.pi / 2, 0.0]]))[0]
    rz = rotation_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))[0]
    ex, ey, ez = torch.eye(3)
    assert torch.allclose(rx @ ey, ez, atol=1e-6)  # x: y → z
    assert torch.allclose(ry @ ez, ex, atol=1e-6)  # y: z → x
    assert torch.allclose(rz @ ex, ey, atol=1e-6)  # z: x → y


def test_rotation_order_is_z_y_x():
    a = torch.tensor([[0.3, -0.5, 0.7]])
    z = torch.zeros(1)
    rx = rotation_matrix(torch.stack([a[:, 0], z, z], 1))
    ry = rotation_matrix(torch.stack([z, a[:, 1], z], 1))
    rz = rotation_matrix(torch.stack([z, z, a[:, 2]], 1))
    assert torch.allclose(rotation_matrix(a), rz @ ry @ rx, atol=1e-6)
    assert not torch.allclose(rotation_matrix(a), rx @ ry @ rz, atol=1e-3)


def test_transform_inverse_round_trip():
    r = Renderer(16)
    pts = torch.randn(3, 16, 16, 3) * 0.1 + torch.tensor([0, 0, 1.0])
    view = torch.cat([torch.randn(3, 3), torch.randn(3, 3) * 0.05], 1)
    back = r.inverse_transform(r.transform(pts, view), view)
    assert torch.allclose(back, pts, atol=1e-5)


# ----------------------------------------------------------------------------- camera
def test_points_project_round_trip_and_intrinsics():
    r = Renderer(32, fov=10.0)
    assert r.focal == pytest.approx(31 / (2 * math.tan(math.radians(5))))
    depth = smooth_depth(2, 32)
    uv = r.project(r.points(depth))
    u, v = r.pixel_grid()
    assert torch.allclose(uv[..., 0], u.expand_as(uv[..., 0]), atol=1e-3)
    assert torch.allclose(uv[..., 1], v.expand_as(uv[..., 1]), atol=1e-3)
    # The image's left and right edges at depth 1 are ±tan(fov/2) away from the axis.
    pts = r.points(torch.ones(1, 32, 32))
    assert pts[0, 0, -1, 0].item() == pytest.approx(math.tan(math.radians(5)), rel=1e-5)
    assert pts[0, 0, 0, 0].item() == pytest.approx(-math.tan(math.radians(5)), rel=1e-5)


# ----------------------------------------------------------------------------- normals
@pytest.mark.parametrize("theta_deg", [0.0, 20.0, -35.0, 60.0])
def test_tilted_plane_normals(theta_deg):
    """A plane turned by θ about the y axis has normal ±(sin θ, 0, cos θ) everywhere."""
    r = Renderer(24)
    t = math.radians(theta_deg)
    depth = plane_depth(r, (math.sin(t), 0.0, math.cos(t)))
    n = r.normals(depth)[0]
    expected = -torch.tensor([math.sin(t), 0.0, math.cos(t)])  # outwards: towards the camera
    assert torch.allclose(n, expected.expand_as(n), atol=1e-4)


def test_warped_frontal_plane_has_rotated_normal():
    """Turning a frontal wall by yaw θ through warp_depth gives a plane with normal
    R_y(θ)·(0, 0, −1) = (−sin θ, 0, −cos θ)."""
    r = Renderer(32)
    t = math.radians(25.0)
    warped = r.warp_depth(torch.ones(1, 32, 32), make_view(yaw=25.0))
    # away from the uncovered strip, whose invalid depth the finite differences would see
    inner = erode(r.valid_mask(warped))[0, 0] > 0
    n = r.normals(warped)[0]
    expected = torch.tensor([-math.sin(t), 0.0, -math.cos(t)])
    assert inner.sum() > 500
    assert torch.allclose(n[inner], expected.expand_as(n[inner]), atol=1e-3)


# ----------------------------------------------------------------------------- warping
def test_identity_view_returns_depth_and_shaded_image():
    r = Renderer(32)
    depth = smooth_depth(3, 32)
    albedo = torch.rand(3, 3, 32, 32) * 2 - 1
    light = torch.tensor([[0.3, 0.6, 0.4, -0.2]]).repeat(3, 1)
    ident = torch.zeros(3, 6)
    assert torch.allclose(r.warp_depth(depth, ident), depth, atol=1e-6)
    image, valid = r.render(depth, albedo, light, ident)
    shaded = r.shade(albedo, r.normals(depth), light)
    assert torch.all(valid == 1)
    # exact up to float32 round-off of the pixel → 3D → pixel round trip: no half-pixel shift
    assert (image - shaded).abs().max() < 1e-4


def test_translation_shifts_a_wall_by_whole_pixels():
    """A wall at depth 1 translated by k·z/f moves the image k pixels to the right."""
    r = Renderer(32)
    albedo = torch.rand(1, 3, 32, 32) * 2 - 1
    light = torch.tensor([[1.0, 0.0, 0.0, 0.0]])  # ambient only: the image is the albedo
    k = 3
    view = torch.tensor([[0.0, 0.0, 0.0, k * 1.0 / r.focal, 0.0, 0.0]])
    image, valid = r.render(torch.ones(1, 32, 32), albedo, light, view)
    shaded = r.shade(albedo, r.normals(torch.ones(1, 32, 32)), light)
    # column k sits exactly on the wall's edge, where coverage is down to round-off
    assert torch.allclose(image[..., k + 1:], shaded[..., 1:-k], atol=1e-4)
    assert torch.all(valid[..., :k] == 0) and torch.all(valid[..., k + 1:] == 1)


def brute_force_depth(r: Renderer, depth: torch.Tensor, view: torch.Tensor) -> np.ndarray:
    """Independent reference: cast every pixel's ray against every 3D triangle
    (Möller–Trumbore, float64) and keep the nearest hit. Rays have unit z, so the ray
    parameter of a hit is its depth."""
    verts, faces = r.mesh(depth, view)
    verts = verts.double().numpy()
    faces = faces.numpy()
    h, w = r.height, r.width
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    dirs = np.stack([(u - r.cx) / r.focal, (v - r.cy) / r.focal, np.ones_like(u, float)], -1)
    dirs = dirs.reshape(-1, 3)
    out = np.full((depth.shape[0], h * w), np.inf)
    for b in range(depth.shape[0]):
        a, bb, c = (verts[b][faces[:, i]] for i in range(3))  # F×3
        e1, e2 = bb - a, c - a
        pvec = np.cross(dirs[:, None, :], e2[None])  # P×F×3
        det = (e1[None] * pvec).sum(-1)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tvec = -a[None]  # ray origin is the camera centre (0, 0, 0)
        s = (tvec * pvec).sum(-1) * inv
        qvec = np.cross(tvec, e1[None])
        t2 = (dirs[:, None, :] * qvec).sum(-1) * inv
        t = (e2[None] * qvec).sum(-1) * inv
        tol = 1e-7
        hit = ok & (s >= -tol) & (t2 >= -tol) & (s + t2 <= 1 + tol) & (t > 0)
        out[b] = np.where(hit, t, np.inf).min(1)
    return out.reshape(-1, h, w)


@pytest.mark.parametrize("case", range(4))
def test_zbuffer_matches_brute_force_ray_casting(case):
    size = 20
    r = Renderer(size)
    depth = smooth_depth(2, size, amplitude=0.08, seed=case)
    g = torch.Generator().manual_seed(100 + case)
    angles = (torch.rand(2, 3, generator=g) * 2 - 1) * torch.tensor([0.5, 0.9, 0.4])
    trans = (torch.rand(2, 3, generator=g) * 2 - 1) * 0.01
    view = torch.cat([angles, trans], 1)  # combined pitch, yaw, roll and translation
    ours = r.warp_depth(depth, view).numpy()
    ref = brute_force_depth(r, depth, view)
    ours_hit = ours < r.invalid_depth
    ref_hit = np.isfinite(ref)
    # Coverage may differ only for pixel centres lying on a silhouette edge (round-off).
    assert (ours_hit != ref_hit).mean() < 0.005
    both = ours_hit & ref_hit
    assert both.sum() > 0.5 * both.size
    err = np.abs(ours[both] - ref[both])
    assert np.mean(err < 1e-4) > 0.995
    assert np.median(err) < 1e-5


def test_occlusion_nearer_surface_wins():
    """A bump in front of a wall hides the wall behind it after a turn."""
    r = Renderer(32)
    u, v = r.pixel_grid()
    bump = 0.08 * torch.exp(-((u - 15.5) ** 2 + (v - 15.5) ** 2) / 30.0)
    depth = (1.05 - bump)[None]
    warped = r.warp_depth(depth, make_view(yaw=40.0))
    ref = brute_force_depth(r, depth, make_view(yaw=40.0))
    both = (warped.numpy() < r.invalid_depth) & np.isfinite(ref)
    assert np.mean(np.abs(warped.numpy()[both] - ref[both]) < 1e-4) > 0.99


def test_grid_faces_cover_each_quad_twice():
    faces = grid_faces(3, 4)
    assert faces.shape == (2 * 2 * 3, 3)
    assert faces.min() == 0 and faces.max() == 11
    assert len({tuple(sorted(f)) for f in faces.tolist()}) == faces.shape[0]


# ----------------------------------------------------------------------------- shading
def test_lambertian_shading_of_a_wall():
    r = Renderer(8)
    normals = r.normals(torch.ones(1, 8, 8))
    light = torch.tensor([[0.2, 0.5, 0.0, 0.0]])  # light travelling along +z: head-on
    assert torch.allclose(r.shading(normals, light), torch.full((1, 1, 8, 8), 0.7))
    light = torch.tensor([[0.2, 0.5, 1.0, 0.0]])  # 45° off: cos = 1/√2
    assert torch.allclose(r.shading(normals, light),
                          torch.full((1, 1, 8, 8), 0.2 + 0.5 / math.sqrt(2)), atol=1e-6)
    albedo = torch.zeros(1, 3, 8, 8)  # mid grey
    image = r.shade(albedo, normals, torch.tensor([[0.2, 0.5, 0.0, 0.0]]))
    assert torch.allclose(image, torch.full_like(image, 0.5 * 0.7 * 2 - 1))


def test_light_from_the_right_brightens_surfaces_facing_right():
    """dx < 0: the light travels towards −x, so it comes from +x (the right of the image)."""
    r = Renderer(32)
    right = plane_depth(r, (-math.sin(0.5), 0.0, math.cos(0.5)))  # faces +x (outward normal)
    left = plane_depth(r, (math.sin(0.5), 0.0, math.cos(0.5)))
    light = torch.tensor([[0.0, 1.0, -1.0, 0.0]])
    s_right = r.shading(r.normals(right), light).mean()
    s_left = r.shading(r.normals(left), light).mean()
    assert r.normals(right)[0, 5, 5, 0] > 0
    assert s_right > s_left + 0.5


# ----------------------------------------------------------------------------- gradients
def test_gradients_reach_depth_albedo_light_and_view():
    r = Renderer(24)
    depth = smooth_depth(2, 24).requires_grad_()
    albedo = (torch.rand(2, 3, 24, 24) * 1.6 - 0.8).requires_grad_()
    light = torch.tensor([[0.3, 0.5, 0.3, 0.2], [0.4, 0.4, -0.5, 0.1]]).requires_grad_()
    view = torch.tensor([[0.1, 0.3, 0.05, 0.002, -0.001, 0.0],
                         [-0.2, -0.4, 0.0, 0.0, 0.003, 0.0]]).requires_grad_()
    image, _ = r.render(depth, albedo, light, view)
    (image * torch.randn_like(image)).sum().backward()
    for name, t in [("depth", depth), ("albedo", albedo), ("light", light), ("view", view)]:
        assert torch.isfinite(t.grad).all(), name
        assert t.grad.abs().sum() > 0, name
    assert (view.grad.abs() > 0).all()  # every view component matters


def test_view_gradient_matches_finite_differences():
    r = Renderer(24)
    # float64 and a small step: the mesh is piecewise planar, so a large step would average
    # the slopes of neighbouring triangles.
    depth = smooth_depth(1, 24).double()
    view = torch.tensor([[0.05, 0.2, -0.1, 0.003, -0.002, 0.01]], dtype=torch.float64)
    eps = 1e-6
    # Compare on pixels that stay covered, away from silhouettes, under every perturbation:
    # there the depth is a smooth function of the view.
    keep = torch.ones(1, 24, 24)
    for k in range(6):
        for sign in (-1, 1):
            dv = torch.zeros_like(view)
            dv[0, k] = sign * eps
            keep = keep * erode(r.valid_mask(r.warp_depth(depth, view + dv)))[:, 0]
    weights = torch.randn(1, 24, 24, dtype=torch.float64) * keep

    def f(v):
        return (r.warp_depth(depth, v) * weights).sum()

    v = view.clone().requires_grad_()
    f(v).backward()
    for k in range(6):
        dv = torch.zeros_like(view)
        dv[0, k] = eps
        numeric = (f(view + dv) - f(view - dv)) / (2 * eps)
        assert v.grad[0, k].item() == pytest.approx(numeric.item(), rel=1e-3, abs=1e-3)


def test_random_inputs_never_produce_nan():
    r = Renderer(16)
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        depth = (torch.rand(4, 16, 16, generator=g) * 0.2 + 0.9).requires_grad_()
        albedo = (torch.rand(4, 3, 16, 16, generator=g) * 2 - 1).requires_grad_()
        light = (torch.rand(4, 4, generator=g) * 2 - 1).requires_grad_()
        view = torch.cat([(torch.rand(4, 3, generator=g) * 2 - 1) * math.pi / 2,
                          (torch.rand(4, 3, generator=g) * 2 - 1) * 0.05], 1).requires_grad_()
        image, valid = r.render(depth, albedo, light, view)
        assert torch.isfinite(image).all() and torch.isfinite(valid).all()
        assert image.min() >= -1 and image.max() <= 1
        image.sum().backward()
        for t in (depth, albedo, light, view):
            assert torch.isfinite(t.grad).all()


# ----------------------------------------------------------------------------- API
def test_batch_of_one_broadcasts_and_yaw_sweep():
    r = Renderer(16)
    depth = smooth_depth(1, 16)
    albedo = torch.rand(1, 3, 16, 16) * 2 - 1
    light = torch.tensor([[0.4, 0.5, 0.1, 0.1]])
    views = torch.stack([make_view(yaw=a)[0] for a in (-30.0, 0.0, 30.0)])
    images, valid = r.render(depth, albedo, light, views)
    assert images.shape == (3, 3, 16, 16) and valid.shape == (3, 1, 16, 16)
    sweep = r.yaw_sweep(depth, albedo, light, n=3, max_yaw=30.0)
    assert sweep.shape == (1, 3, 3, 16, 16)
    assert torch.allclose(sweep[0], images, atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    (dict(depth=torch.ones(1, 1, 16, 16)), "drop the channel axis"),
    (dict(depth=torch.ones(1, 8, 8)), "B×16×16"),
    (dict(albedo=torch.zeros(1, 4, 16, 16)), "3 channels"),
    (dict(light=torch.zeros(1, 3)), "B×4"),
    (dict(view=torch.zeros(1, 3)), "B×6"),
    (dict(view=torch.zeros(3, 6), light=torch.zeros(2, 4)), "batch size"),
])
def test_bad_inputs_get_clear_errors(bad, message):
    r = Renderer(16)
    args = dict(depth=torch.ones(1, 16, 16), albedo=torch.zeros(1, 3, 16, 16),
                light=torch.zeros(1, 4), view=torch.zeros(1, 6))
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        r.render(**args)


def test_grid_triangles_match_the_face_table_and_generic_rasterizer():
    r = Renderer(12)
    depth = smooth_depth(2, 12)
    uvz = torch.cat([r.project(r.points(depth)), depth[..., None]], -1)
    verts = uvz.reshape(2, -1, 3)
    faces = grid_faces(12, 12)
    assert torch.equal(grid_triangles(uvz), verts[:, faces])
    view = make_view(yaw=20.0, pitch=-10.0, batch=2)
    verts_v, faces_v = r.mesh(depth, view)
    uvz_v = torch.cat([r.project(verts_v), verts_v[..., 2:3]], -1)
    generic, ids = rasterize_depth(uvz_v, faces_v, 12, 12, fill=r.invalid_depth)
    assert torch.allclose(generic, r.warp_depth(depth, view))
    assert ids.min() >= -1 and ids.max() < 2 * faces.shape[0]


def test_unwarp_image_is_the_identity_at_the_identity_view_and_undoes_a_warp():
    """A canonical pattern warped to a view and brought back lands where it started, on the
    pixels the view shows (away from silhouettes, where bilinear samples mix; a gentle
    surface and a smooth pattern, so that nothing hides behind itself and the two bilinear
    resamplings cost little)."""
    r = Renderer(32)
    depth = smooth_depth(1, 32, amplitude=0.02, seed=3)
    g = torch.Generator().manual_seed(0)
    pattern = torch.nn.functional.interpolate(torch.rand(1, 1, 4, 4, generator=g), size=32,
                                              mode="bilinear", align_corners=True)
    assert torch.allclose(r.unwarp_image(pattern, depth, torch.zeros(1, 6)), pattern,
                          atol=1e-5)
    view = make_view(yaw=15.0, pitch=-8.0)
    seen, valid = r.warp_image(pattern, depth, view, background=0.0)
    back = r.unwarp_image(seen, depth, view)
    covered = erode(r.unwarp_image(valid, depth, view, mode="nearest") > 0.5, 2) > 0.5
    assert covered.float().mean() > 0.6
    assert (back - pattern)[covered].abs().max() < 0.02
    # and a canonical pixel whose point leaves the picture takes zero
    far = torch.zeros(1, 6)
    far[0, 3] = 0.2  # 0.2 sideways at depth ~1 is more than the picture's half width
    assert r.unwarp_image(torch.ones(1, 1, 32, 32), depth, far)[..., :, -4:].abs().max() == 0
