"""The exercise checks: each accepts an answer computed another way and rejects a wrong one."""
import json
import math

import pytest
import torch

from g2s_lite import metrics, prior
from g2s_lite.exercises import check, checks_of
from g2s_lite.paper import PRIOR_FAR, PRIOR_NEAR
from g2s_lite.render import Renderer, make_view
from g2s_lite.results import committed
from g2s_lite.synth import SynFaces


def test_parallax_matches_the_renderer():
    r = Renderer(64)
    moved = r.transform(torch.tensor([[[0.0, 0.0, 0.9], [0.0, 0.0, 1.1]]]), make_view(yaw=10))
    shifts = (r.project(moved)[0, :, 0] - r.cx).tolist()
    assert check("1.3", shifts)
    assert not check("1.3", [-s for s in shifts])          # the sign says which way


def test_weak_prior_by_value_and_by_map():
    face = SynFaces(64).sample(1, seed=0)
    ellipsoid = prior.make_prior("ellipsoid", 64, prior.box_from_mask(face["mask"][0]))
    assert check("2.2", PRIOR_FAR - (PRIOR_FAR - ellipsoid) / 2)
    assert not check("2.2", ellipsoid)
    assert check("2.2", ((PRIOR_NEAR + PRIOR_FAR) / 2, PRIOR_FAR))
    assert not check("2.2", (PRIOR_NEAR, PRIOR_FAR))


def test_styles_of_the_bundled_generator(gan):
    G, _ = gan
    assert check("3.5", G.n_latent)
    assert not check("3.5", G.n_latent + 1)


def test_constant_brightness_alpha_from_the_renderer():
    world = SynFaces(64)
    face = world.sample(1, seed=0)
    normals = world.renderer.normals(face["depth_canon"])
    cosine = world.renderer.diffuse(normals, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))[0, 0]
    c = cosine[face["mask_canon"][0, 0] > 0.5].mean().item()
    assert check("4.1", -c)
    assert not check("4.1", -0.4)                           # the paper's α is not exact here


def test_typical_distance_measured(gan):
    G, _ = gan
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(4096, G.style_dim, generator=g, dtype=torch.float64)
    assert check("5.5", samples.norm(dim=1).mean().item())  # whitened: the distance is the norm
    assert not check("5.5", G.style_dim)                     # the squared distance, not it


def test_asymmetry_of_a_known_map():
    depth = torch.ones(8, 8)
    depth[:, :4] += 0.1                                      # left half raised by 0.1
    assert check("6.1", 0.1, depth=depth)                    # every pixel differs from its mirror
    assert check("6.1", 0.0, depth=torch.ones(8, 8))
    assert not check("6.1", 0.05, depth=depth)


def _joint():
    return json.loads(committed("synface64_joint.json").read_text())


def test_ratio_from_the_rows():
    rows = {r["method"]: r for r in _joint()["rows"]}
    assert check("7.1", rows["g2s_pretrained"]["side"] / rows["null_depth"]["side"])
    assert not check("7.1", rows["g2s_pretrained"]["side"])


def test_null_side_is_the_spread_of_log_depth():
    world = SynFaces(64)
    face = world.sample(1, seed=0)
    on = metrics.depth_errors(torch.ones(1, 64, 64), face["depth"], face["mask"],
                              world.renderer)["mask"][0] > 0
    spread = face["depth"][0][on].log().std(unbiased=False).item()
    assert check("7.2", 100 * spread)
    assert not check("7.2", spread)                          # SIDE is reported ×10⁻²


def test_yaw_correlation_and_paired_gap_recomputed_with_numpy():
    import numpy as np
    run = _joint()
    images = run["images"]
    faces = SynFaces(64).sample(run["meta"]["n_images"], seed=run["meta"]["seed"])
    ids = sorted(images, key=int)
    side = np.array([images[i]["g2s_pretrained"]["side"] for i in ids])
    yaw = np.abs(faces["view"][[int(i) for i in ids], 1].numpy())
    assert check("7.3", np.corrcoef(yaw, side)[0, 1])
    assert not check("7.3", -np.corrcoef(yaw, side)[0, 1] - 0.2)
    diff = np.array([images[i]["g2s_pretrained_nosym"]["side"] - images[i]["g2s_pretrained"]["side"]
                     for i in ids])
    assert check("7.4", (diff.mean(), diff.std(ddof=1) / math.sqrt(len(diff))))
    assert not check("7.4", (diff.mean(), diff.std(ddof=0)))


def test_chapter_9_checks_agree_with_draws_and_with_the_method_s_own_framing():
    """9.6 against views actually drawn by the sampler; 9.7 against the preset's frame
    applied to an index grid the way the method applies it (generate's centre_fraction)."""
    import torch

    from g2s_lite.exercises import ch09
    from g2s_lite.paper import PRESETS, ViewDistribution
    from g2s_lite.pseudo import draw_views

    cov = [[0.0] * 6 for _ in range(6)]
    cov[1][1] = ch09.YAW_VARIANCE_96
    views = draw_views(100_000, ViewDistribution((0.0,) * 6, tuple(map(tuple, cov)),
                                                 ch09.YAW_SCALE_96),
                       torch.Generator().manual_seed(0))
    drawn = math.degrees(float(views[:, 1].std()))
    assert check("9.6", round(drawn, 2)) and not check("9.6", math.sqrt(0.04) * 60)
    frame = PRESETS["cat128"].gan_crop
    side = round(256 * frame)
    margin = (256 - side) // 2
    assert check("9.7", (margin, margin, margin + side, margin + side))
    assert not check("9.7", (0, 0, side, side))


def test_every_chapter_has_checks_and_unknown_ones_say_what_to_do():
    for chapter in list(range(1, 10)):
        assert checks_of(chapter), f"chapter {chapter} has no check"
    with pytest.raises(ValueError, match="solutions appendix"):
        check("1.1", 0)
    with pytest.raises(ValueError, match="<chapter>.<k>"):
        check("one", 0)
