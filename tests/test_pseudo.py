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
