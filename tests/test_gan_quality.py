"""GAN quality measures (g2s_lite.gan_quality): the Fréchet distance against closed forms,
w-fitting on a tiny generator, and the measures' outputs (the regressor they read with has
its own tests, tests/test_pose_regressor.py).

Everything runs on a tiny 16-px generator and a handful of images, so the file takes a few
seconds on a CPU; the real measurement is ``python -m g2s_lite.gan_quality``.
"""
import json
import math

import numpy as np
import pytest
import torch

from g2s_lite import gan_quality as gq
from g2s_lite import pose_regressor as pr
from g2s_lite.gan import Generator


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(16, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8}).eval()


def whitened(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """n samples whose *sample* mean is exactly 0 and sample covariance exactly I, so that
    Fréchet distances of transformed copies equal their closed forms to round-off."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    x = x - x.mean(0)
    chol = torch.linalg.cholesky(x.T @ x / (n - 1))
    return torch.linalg.solve_triangular(chol, x.T, upper=False).T


# ------------------------------------------------------------------ Fréchet distance
def test_frechet_identical_sets_is_zero():
    x = torch.randn(300, 8)
    assert abs(gq.frechet_distance(x, x)) < 1e-6


def test_frechet_shifted_gaussians_is_squared_mean_difference():
    x = whitened(400, 6)
    m = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, -1.0], dtype=torch.float64)
    fd = gq.frechet_distance(x, x + m)                 # N(0, I) vs N(m, I)
    assert fd == pytest.approx(float(m @ m), rel=1e-6)


def test_frechet_diagonal_gaussians_closed_form():
    d = 10
    x = whitened(500, d, seed=1)
    # N(0, I) vs N(0, 4I): tr(I + 4I − 2·(4I)^{1/2}) = d·(1 + 4 − 4) = d
    assert gq.frechet_distance(x, 2 * x) == pytest.approx(d, rel=1e-6)
    # N(μa, diag(a)) vs N(μb, diag(b)) → ‖μa − μb‖² + Σ (√a − √b)², symmetric in a, b
    a = torch.linspace(0.5, 3.0, d, dtype=torch.float64)
    b = torch.linspace(4.0, 0.2, d, dtype=torch.float64)
    mu_a, mu_b = torch.linspace(-1, 1, d, dtype=torch.float64), torch.full((d,), 0.5,
                                                                         dtype=torch.float64)
    expected = float(((mu_a - mu_b) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    xa, xb = x * a.sqrt() + mu_a, whitened(700, d, seed=2) * b.sqrt() + mu_b
    assert gq.frechet_distance(xa, xb) == pytest.approx(expected, rel=1e-6)
    assert gq.frechet_distance(xb, xa) == pytest.approx(expected, rel=1e-6)


def test_frechet_matches_brute_force_sqrtm_on_non_commuting_covariances():
    """Random rotations make Σ_a Σ_b non-symmetric (a shortcut such as tr(Σ_a^½ Σ_b^½), exact
    only for commuting covariances, would fail here); the reference is the formula itself with
    scipy's general matrix square root."""
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(3)
    d = 6
    mix_a, mix_b = (torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(2))
    x = torch.randn(400, d, generator=g, dtype=torch.float64) @ mix_a
    y = torch.randn(300, d, generator=g, dtype=torch.float64) @ mix_b + 0.7
    ca, cb = np.cov(x.numpy(), rowvar=False), np.cov(y.numpy(), rowvar=False)
    assert np.abs(ca @ cb - (ca @ cb).T).max() > 0.1                # really non-commuting
    diff = x.numpy().mean(0) - y.numpy().mean(0)
    expected = diff @ diff + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert gq.frechet_distance(x, y) == pytest.approx(float(expected), rel=1e-8)


def test_frechet_singular_covariances():
    x, y = torch.randn(200, 5, dtype=torch.float64), 1.5 * torch.randn(300, 5).double() + 0.3
    # a dead feature (constant, as ReLU features can be) in both sets adds nothing
    x0, y0 = x.clone(), y.clone()
    x0[:, 0], y0[:, 0] = 0.0, 0.0
    assert gq.frechet_distance(x0, y0) == pytest.approx(gq.frechet_distance(x[:, 1:], y[:, 1:]),
                                                        rel=1e-9)
    # fewer vectors than dimensions: rank-deficient covariances, still a finite d² ≥ 0
    fd = gq.frechet_distance(torch.randn(10, 64), torch.randn(12, 64))
    assert math.isfinite(fd) and fd > 0


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same D"):
        gq.frechet_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="at least 2"):
        gq.frechet_distance(torch.randn(1, 3), torch.randn(5, 3))


# ------------------------------------------------------------------ fitting w
def test_fit_latents_recovers_an_image_of_g():
    G = tiny_generator()
    with torch.no_grad():
        w_true = G.mapping(torch.randn(3, G.style_dim, generator=torch.Generator().manual_seed(5)))
        target = G.synthesis(w_true, "const")
        start = (G.synthesis(G.mean_latent(), "const") - target).abs().flatten(1).mean(1)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    w, recon, l1 = gq.fit_latents(G, target, steps=60, lr=0.1, progress=False)
    assert w.shape == (3, G.style_dim) and recon.shape == target.shape and l1.shape == (3,)
    assert torch.allclose(l1, (recon - target).abs().flatten(1).mean(1))
    # a clear factor on average, and every image improves (one may sit in a local minimum)
    assert l1.mean() < start.mean() / 5 and (l1 < start / 2).all(), (start, l1)
    # G is measured, not changed
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert all(p.requires_grad for p in G.parameters())


def test_fit_latents_checks_image_size():
    with pytest.raises(ValueError, match="B×3×16×16"):
        gq.fit_latents(tiny_generator(), torch.zeros(1, 3, 32, 32), steps=1, progress=False)


def test_untrained_like_has_g_shape_and_is_seeded():
    G = tiny_generator()
    U1, U2 = gq.untrained_like(G, seed=3), gq.untrained_like(G, seed=3)
    assert (U1.size, U1.style_dim, U1.n_mlp, U1.channels) == (G.size, G.style_dim, G.n_mlp,
                                                              G.channels)
    assert all(torch.equal(a, b) for a, b in zip(U1.state_dict().values(),
                                                 U2.state_dict().values()))
    rng = torch.get_rng_state()
    gq.untrained_like(G)
    assert torch.equal(rng, torch.get_rng_state())  # the global stream is untouched


# ------------------------------------------------------------------ the measures
def test_budgets_divide_the_full_ones_by_ten():
    full, quick = gq.budgets(), gq.budgets(quick=True)
    assert full["regressor_steps"] == pr.REGRESSOR_STEPS and full["n_samples"] == gq.N_SAMPLES
    assert quick == {k: v // 10 for k, v in full.items()}


def test_sample_images_are_seeded_samples_of_g():
    G = tiny_generator()
    rng = torch.get_rng_state()
    a = gq.sample_images(G, 5, seed=7, batch=2)
    assert torch.equal(rng, torch.get_rng_state())  # seeded by its own generator
    z = torch.randn(5, G.style_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.testing.assert_close(a, G(z, noise_mode="const").clamp(-1, 1))
    assert not torch.equal(a, gq.sample_images(G, 5, seed=8))


def test_variety_is_each_targets_spread():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(200, 4, generator=g, dtype=torch.float64) * torch.tensor(
        [30.0, 10.0, 0.5, 0.2], dtype=torch.float64)
    spread = gq.variety(pr.RegressorOutputs(pred, torch.zeros(200, 2)))
    p = pred.numpy()
    for i, (name, _) in enumerate(pr.TARGETS):
        assert spread[name]["mean"] == pytest.approx(p[:, i].mean())
        assert spread[name]["std"] == pytest.approx(p[:, i].std(ddof=1))
        assert spread[name]["q05"] == pytest.approx(np.quantile(p[:, i], 0.05))
        assert spread[name]["q95"] == pytest.approx(np.quantile(p[:, i], 0.95))


def test_feature_distance_compares_features_only():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(50, 3, generator=g, dtype=torch.float64)
    a = pr.RegressorOutputs(torch.zeros(50, 4), feats)
    b = pr.RegressorOutputs(torch.ones(50, 4), feats + 1.0)  # other predictions, shifted
    assert gq.feature_distance(a, b) == pytest.approx(3.0, rel=1e-9)
    assert gq.feature_distance(a, a) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ the measures
@pytest.fixture(scope="module")
def tiny_setup():
    # seed 1: G differs from untrained_like(G), which is G's shape with seed-0 weights
    G = tiny_generator(seed=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        reg = pr.PoseLightRegressor().eval()
    return G, gq.untrained_like(G), reg


def test_coverage_compares_g_with_its_reference(tiny_setup):
    G, U, _ = tiny_setup
    out = gq.coverage(G, n=2, steps=2, untrained=U, progress=False)
    assert out["ratio"] == pytest.approx(out["l1_trained"] / out["l1_untrained"])
    assert out["l1_trained"] == pytest.approx(np.mean(out["l1_trained_per_image"]), abs=1e-5)
    assert len(out["l1_untrained_per_image"]) == 2 and out["l1_trained"] != out["l1_untrained"]
    # the same generator on both sides gets the same budget, hence ratio 1
    assert gq.coverage(G, n=2, steps=2, untrained=G, progress=False)["ratio"] == 1.0


def test_measure_quick_reports_what_the_pieces_give(tiny_setup):
    G, U, reg = tiny_setup
    result = gq.measure(G, quick=True, regressor=reg, progress=False)
    budget = gq.budgets(quick=True)
    assert result["budgets"] == budget and result["quick"] is True
    assert result["coverage"]["n"] == budget["n_coverage"]
    n = budget["n_samples"]
    assert result["variety"]["n"] == result["frechet"]["n"] == n
    # recomputed independently from the pieces: SynFaces, G's and the untrained G's samples
    data = pr.regressor_outputs(reg, pr.synface_images(n, pr.TEST_SEED, G.size)[0])
    floor = pr.regressor_outputs(reg, pr.synface_images(n, gq.FLOOR_SEED, G.size)[0])
    trained = pr.regressor_outputs(reg, gq.sample_images(G, n))
    untrained = pr.regressor_outputs(reg, gq.sample_images(U, n))
    fd = result["frechet"]
    assert fd["data"] == pytest.approx(gq.feature_distance(floor, data))
    assert fd["trained"] == pytest.approx(gq.feature_distance(trained, data))
    assert fd["untrained"] == pytest.approx(gq.feature_distance(untrained, data))
    assert fd["trained"] != fd["untrained"]
    assert result["variety"]["data"] == gq.variety(data)
    assert result["variety"]["untrained"] == gq.variety(untrained)
    report = gq.markdown_report(result)
    assert f"**{result['coverage']['ratio']:.2f}**" in report and f"{fd['trained']:.3f}" in report


def test_command_line_keeps_its_regressor_as_the_yardstick(tmp_path):
    from g2s_lite.gan import save_stylegan2

    save_stylegan2(tmp_path / "g.pt", tiny_generator(seed=1))
    args = ["--weights", str(tmp_path / "g.pt"), "--regressor", str(tmp_path / "reg.pt"),
            "--quick", "--no-progress"]
    first = gq.main(args + ["--out", str(tmp_path / "a.json"), "--markdown",
                            str(tmp_path / "a.md")])
    assert first["regressor"]["trained_here"] and (tmp_path / "reg.pt").is_file()
    second = gq.main(args + ["--out", str(tmp_path / "b.json")])
    assert not second["regressor"]["trained_here"]  # loaded, not trained again
    assert second["frechet"] == first["frechet"] and second["variety"] == first["variety"]
    stored = json.loads((tmp_path / "a.json").read_text())
    assert stored["quick"] is True and stored["frechet"] == first["frechet"]
    assert (tmp_path / "a.md").read_text() == gq.markdown_report(stored)
