"""GAN quality measures (g2s_lite.gan_quality): the Fréchet distance against closed forms,
w-fitting on a tiny generator, the pose/light regressor, and the measures' outputs.

Everything runs on a tiny 16-px generator and a handful of images, so the file takes a few
seconds on a CPU; the real measurement is ``python -m g2s_lite.gan_quality``.
"""
import math

import numpy as np
import pytest
import torch

from g2s_lite import gan_quality as gq
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


def test_frechet_scaled_covariance():
    d = 10
    x = whitened(500, d, seed=1)
    # N(0, I) vs N(0, 4I): tr(I + 4I − 2·(4I)^{1/2}) = d·(1 + 4 − 4) = d
    assert gq.frechet_distance(x, 2 * x) == pytest.approx(d, rel=1e-6)
    # and per dimension: N(0, diag(a)) vs N(0, diag(b)) → Σ (√a − √b)², symmetric in a, b
    a, b = torch.linspace(0.5, 3.0, d, dtype=torch.float64), torch.linspace(4.0, 0.2, d,
                                                                             dtype=torch.float64)
    expected = float(((a.sqrt() - b.sqrt()) ** 2).sum())
    xa, xb = x * a.sqrt(), whitened(700, d, seed=2) * b.sqrt()
    assert gq.frechet_distance(xa, xb) == pytest.approx(expected, rel=1e-6)
    assert gq.frechet_distance(xb, xa) == pytest.approx(expected, rel=1e-6)


def test_frechet_symmetric_form_matches_sqrtm():
    """The eigh fallback (no scipy, or a complex sqrtm) gives the same trace."""
    x, y = torch.randn(200, 5, dtype=torch.float64), 1.5 * torch.randn(300, 5).double() + 0.3
    ca, cb = np.cov(x.numpy(), rowvar=False), np.cov(y.numpy(), rowvar=False)
    from scipy import linalg
    assert gq._trace_sqrt_product(ca, cb, 1e-6) == pytest.approx(
        float(np.trace(linalg.sqrtm(ca @ cb).real)), rel=1e-8)
    # a rank-deficient covariance (a dead feature, as ReLU features have) stays finite
    x[:, 0] = 0.0
    assert math.isfinite(gq.frechet_distance(x, y))


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


# ------------------------------------------------------------------ the regressor
def test_regressor_shapes_and_units():
    reg = gq.PoseLightRegressor().eval()
    x = torch.randn(2, 3, 64, 64)
    assert reg(x).shape == (2, 4)
    assert reg.features(x).shape == (2, reg.feature_dim) == (2, 64)
    assert reg(torch.randn(2, 3, 32, 48)).shape == (2, 4)  # any size divisible by 16
    # outputs are standardised predictions brought back to the targets' units
    reg.target_mean.copy_(torch.tensor([10.0, -5.0, 0.2, 0.3]))
    reg.target_std.copy_(torch.tensor([20.0, 8.0, 0.5, 0.3]))
    torch.testing.assert_close(reg(x), reg.standardised(x) * reg.target_std + reg.target_mean)
    with pytest.raises(ValueError, match="multiples of 16"):
        reg(torch.randn(1, 3, 40, 40))


def test_targets_and_mirroring():
    batch = {"view": torch.tensor([[0.1, -0.5, 0.0, 0, 0, 0]]),
             "light": torch.tensor([[0.4, 0.3, 0.6, -0.2]])}
    t = gq.pose_light_targets(batch)
    torch.testing.assert_close(t, torch.tensor([[math.degrees(-0.5), math.degrees(0.1),
                                                 0.6, -0.2]]))
    img = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 2, 4)
    img_m, t_m = gq._mirror(img, t)
    assert torch.equal(img_m[0, 0, 0], torch.tensor([3.0, 2.0, 1.0, 0.0]))
    torch.testing.assert_close(t_m, t * torch.tensor([-1.0, 1.0, -1.0, 1.0]))


def test_short_regressor_training_lowers_loss():
    history: list[float] = []
    reg = gq.train_regressor(steps=40, batch=8, pool=16, size=32, progress=False,
                             history=history)
    assert len(history) == 40 and not reg.training
    assert np.mean(history[-8:]) < 0.7 * np.mean(history[:8])
    # standardisation statistics come from the (mirrored) training faces
    assert reg.target_std.min() > 0 and abs(reg.target_mean[0]) < 1e-3  # mirrored yaw: mean 0


# ------------------------------------------------------------------ the measures
@pytest.fixture(scope="module")
def tiny_setup():
    torch.manual_seed(0)
    G = tiny_generator()
    return G, gq.untrained_like(G), gq.PoseLightRegressor().eval()


def test_coverage_keys(tiny_setup):
    G, U, _ = tiny_setup
    out = gq.coverage(G, n=2, steps=2, untrained=U, progress=False)
    assert {"n", "steps", "lr", "seed", "l1_trained", "l1_untrained", "l1_trained_start",
            "l1_untrained_start", "ratio", "l1_trained_per_image",
            "l1_untrained_per_image"} <= set(out)
    assert out["ratio"] == pytest.approx(out["l1_trained"] / out["l1_untrained"])
    assert len(out["l1_trained_per_image"]) == 2


def test_variety_and_feature_distance_keys(tiny_setup):
    G, U, reg = tiny_setup
    cache: dict = {}
    var = gq.variety(G, reg, n=4, untrained=U, cache=cache, progress=False)
    for col in ("data", "trained", "untrained"):
        assert set(var[col]) == {name for name, _ in gq.TARGETS}
        assert set(var[col]["yaw"]) == {"mean", "std", "q05", "q95"}
    fd = gq.feature_distance(G, reg, n=4, untrained=U, cache=cache, progress=False)
    assert {"trained", "untrained", "data", "n", "feature_dim"} <= set(fd)
    assert all(math.isfinite(fd[k]) and fd[k] > -1e-6 for k in ("trained", "untrained", "data"))
    # the cache let both measures share the rendered sets: data, floor, trained, untrained
    assert len(cache) == 4
