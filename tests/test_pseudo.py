"""Random views and lights (ranges, the paper's light recipe) and pseudo samples."""
import math

import pytest
import torch

from g2s_lite.prior import make_prior
from g2s_lite.paper import FACE_LIGHTS, SYNFACE_LIGHTS, ViewRanges
from g2s_lite.pseudo import render_pseudo, sample_lights, sample_views
from g2s_lite.render import Renderer


def test_sampled_views_stay_in_their_ranges():
    ranges = ViewRanges(pitch=20, yaw=60, roll=5, tx=0.1, ty=0.05, tz=0.0)
    v = sample_views(2000, ranges, torch.Generator().manual_seed(0))
    assert v.shape == (2000, 6)
    limits = torch.tensor([math.radians(20), math.radians(60), math.radians(5), 0.1, 0.05, 0.0])
    assert (v.abs() <= limits + 1e-7).all()
    assert (v[:, :5].abs().amax(0) > 0.95 * limits[:5]).all()  # the ranges are used, not just bounded
    assert (v[:, 5] == 0).all()


@pytest.mark.parametrize("ranges", [SYNFACE_LIGHTS, FACE_LIGHTS])
def test_sampled_lights_follow_the_papers_recipe(ranges):
    base = (0.4, 0.6)
    l = sample_lights(4000, base, ranges, torch.Generator().manual_seed(1))
    r = l[:, 1] - base[1]
    assert r.min() >= ranges.diffuse[0] and r.max() <= ranges.diffuse[1]
    assert torch.allclose(l[:, 0], base[0] + ranges.alpha * r, atol=1e-6)  # ambient coupling
    assert l[:, 2].min() >= ranges.dx[0] and l[:, 2].max() <= ranges.dx[1]
    assert l[:, 3].min() >= ranges.dy[0] and l[:, 3].max() <= ranges.dy[1]
    assert abs(l[:, 2].mean() - sum(ranges.dx) / 2) < 0.05  # uniform


def test_pseudo_samples_and_their_masks():
    r = Renderer(64)
    depth = make_prior("ellipsoid", 64)[None]
    albedo = torch.zeros(1, 3, 64, 64)
    g = torch.Generator().manual_seed(2)
    views = sample_views(6, ViewRanges(pitch=20, yaw=60, roll=0, tx=0.0, ty=0.0), g)
    views[0] = 0
    lights = sample_lights(6, (0.5, 0.5), SYNFACE_LIGHTS, g)
    images, masks = render_pseudo(r, depth, albedo, views, lights)
    assert images.shape == (6, 3, 64, 64) and masks.shape == (6, 1, 64, 64)
    assert torch.all(masks[0] == 1)  # the identity view covers everything
    # every pixel the turned surface leaves uncovered is masked out
    warped = r.warp_depth(depth, views)
    assert torch.equal(masks[:, 0] == 0, (warped > r.valid_max_depth) | (masks[:, 0] == 0))
    turned = views[:, 1].abs() > math.radians(20)
    assert (masks[turned].mean((1, 2, 3)) < 1).all()
    with pytest.raises(ValueError, match="one light per view"):
        render_pseudo(r, depth, albedo, views, lights[:3])


# ----------------------------------------------------------------------------- the paper's view distribution
def _distribution(yaw_scale=1.2):
    """A view distribution like the released ones: correlated rotations and x/y moves, and no
    spread at all in depth (the released covariances' last row and column are zero)."""
    from g2s_lite.paper import ViewDistribution

    a = torch.tensor([[0.10, 0.00, 0.00, 0.0, 0.0],
                      [0.05, 0.30, 0.00, 0.0, 0.0],
                      [0.00, 0.02, 0.05, 0.0, 0.0],
                      [0.00, 0.10, 0.00, 0.2, 0.0],
                      [0.01, 0.00, 0.00, 0.0, 0.1]], dtype=torch.float64)
    cov = torch.zeros(6, 6, dtype=torch.float64)
    cov[:5, :5] = a @ a.T
    mean = (0.05, -0.1, 0.01, 0.2, -0.3, 0.0)
    return ViewDistribution(mean, tuple(tuple(r) for r in cov.tolist()), yaw_scale), cov


def test_views_drawn_from_a_distribution_have_its_mean_and_covariance_in_radians():
    """The released recipe by hand: draw in V's units, multiply the yaw by 1.2, then scale
    rotations by 60° (in radians) and moves by 0.1 and 0. The sample moments of 200 000 draws
    must match the moments that recipe implies, within a few standard errors."""
    from g2s_lite.pseudo import draw_views, sample_views

    dist, cov = _distribution()
    scale = torch.tensor([math.radians(60)] * 3 + [0.1, 0.1, 0.0], dtype=torch.float64)
    scale_yaw = torch.ones(6, dtype=torch.float64)
    scale_yaw[1] = 1.2
    s = scale * scale_yaw
    mean = torch.tensor(dist.mean, dtype=torch.float64) * s
    want_cov = cov * s[:, None] * s[None, :]
    views = sample_views(200_000, dist, torch.Generator().manual_seed(0)).double()
    got_mean, got_cov = views.mean(0), torch.cov(views.T)
    se = (want_cov.diagonal() / 200_000).sqrt()
    assert ((got_mean - mean).abs() <= 5 * se + 1e-12).all()
    assert torch.allclose(got_cov, want_cov, atol=5e-3 * float(want_cov.abs().max()))
    assert (views[:, 5] == 0).all()  # no spread in depth: exactly the mean
    # the same generator, the same views (step 2's draws are reproducible)
    a = draw_views(5, dist, torch.Generator().manual_seed(3))
    assert torch.equal(a, sample_views(5, dist, torch.Generator().manual_seed(3)))


def test_a_light_distribution_is_refused_as_views(tmp_path):
    from g2s_lite import hub

    torch.save({"mean": torch.zeros(4), "cov": torch.eye(4)}, tmp_path / "light.pth")
    with pytest.raises(ValueError, match="light.pth.*6×6.*view"):
        hub.read_views(tmp_path / "light.pth")


def test_read_views_reads_a_released_file_and_the_yaw_scale_of_its_configuration(tmp_path):
    from g2s_lite import hub

    _, cov = _distribution()
    torch.save({"mean": torch.arange(6.0) / 10, "cov": cov.float()}, tmp_path / "v.pth")
    views = hub.read_views(tmp_path / "v.pth")
    assert views.mean == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert views.cov[1][1] == pytest.approx(float(cov[1, 1]), rel=1e-6)
    assert views.yaw_scale == 1.2 and hub.read_views(tmp_path / "v.pth", 1.0).yaw_scale == 1.0


def test_step2_draws_its_pseudo_views_from_the_presets_distribution():
    """With no spread, every pseudo sample of step 2 is seen from the distribution's mean
    (yaw × 1.2, in radians): the preset's views reach the sampler."""
    from conftest import tiny_preset
    from g2s_lite import hub
    from g2s_lite.method import reconstruct
    from g2s_lite.paper import ViewDistribution
    from g2s_lite.synth import SynFaces

    zero = tuple(tuple(0.0 for _ in range(6)) for _ in range(6))
    preset = tiny_preset().with_views(ViewDistribution((0.1, -0.2, 0.0, 0.1, 0.0, 0.0), zero))
    G, D = hub.load("synface64")
    image = SynFaces(64).sample(1, seed=5)["image"]
    rec = reconstruct(image, G, D, w=G.mean_latent(), preset=preset, progress=False)
    views = rec.stages[0].step2.views
    want = torch.tensor([0.1 * math.radians(60), -0.2 * 1.2 * math.radians(60), 0.0,
                         0.01, 0.0, 0.0])
    assert torch.allclose(views, want.expand_as(views), atol=1e-6)
