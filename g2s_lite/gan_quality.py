"""How good is the small SynFace GAN? — Chapter 3 (and the model card beside the weights).

GAN2Shape needs a GAN whose image manifold *covers* its object class: every face the method
meets must be (nearly) an image of G, and G's images must show the *variety* of poses and
lights that lets the method see one face from many sides. This module measures both for the
book's small SynFace GAN, always next to two references — the data itself and an untrained
generator of the same shape — so that every number comes with a scale:

1. coverage: optimise one w per held-out SynFace (L1, a fixed budget of Adam steps, starting
   from the mean w) and compare the final reconstruction error through the trained G with the
   error through an untrained G (the book aims at a ratio of at most 0.5);
2. a pose-and-light regressor: a small CNN trained on SynFaces (which carry their view and
   light) to predict yaw, pitch and light direction (dx, dy), with its own held-out error;
3. variety: the regressor's predictions on G's samples, their means and spreads side by side
   with those on SynFaces;
4. a Fréchet distance between G's samples and SynFaces in the regressor's feature space (the
   recipe of FID, with a feature extractor that knows faces' poses and lights instead of
   ImageNet classes), next to the untrained G's and to the floor that two independent sets of
   SynFaces give at the same sample size.

``python -m g2s_lite.gan_quality --weights runs/synface64/synface64.pt --out quality.json
--markdown quality.md [--quick]`` runs everything (:func:`measure`) and writes the numbers,
seeds, budgets and wall time, and a markdown table for the model card.

Seeds (disjoint, so that no measurement sees the GAN's training faces, ``data_seed=0`` of
:mod:`g2s_lite.train_gan`): the regressor trains on :data:`REGRESSOR_DATA_SEED`; held-out test
faces come from :data:`TEST_SEED`; the Fréchet floor uses :data:`FLOOR_SEED`.

Images are ``B×3×H×W`` in [-1, 1]; w is ``B×style_dim``; regressor outputs ``B×4`` are
(yaw °, pitch °, dx, dy) with yaw = ry and pitch = rx of SynFaces' view and (dx, dy) the
light direction of its light.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gan import Generator, frozen
from .invert import latent_lr
from .paper import quick_length
from .runtime import quick_mode, seeded
from .synth import SynFaces

__all__ = ["REGRESSOR_DATA_SEED", "TEST_SEED", "FLOOR_SEED", "SAMPLE_SEED", "UNTRAINED_SEED",
           "TARGETS", "budgets", "synface_images", "pose_light_targets", "PoseLightRegressor",
           "train_regressor", "RegressorOutputs", "regressor_outputs", "regressor_errors",
           "untrained_like", "fit_latents", "coverage", "sample_images", "variety",
           "frechet_distance", "feature_distance", "measure", "markdown_report", "main"]

#: SynFaces seed of the regressor's training faces (the GAN trains on seed 0).
REGRESSOR_DATA_SEED = 9001
#: SynFaces seed of the held-out test faces: coverage targets, variety and Fréchet reference.
TEST_SEED = 1000
#: A second held-out SynFaces seed: the Fréchet distance between it and TEST_SEED is the floor
#: that finite samples leave even for a perfect generator.
FLOOR_SEED = 1001
#: Seed of the z ~ N(0, I) drawn for G's samples.
SAMPLE_SEED = 2021
#: Seed of the weights of the untrained reference generator.
UNTRAINED_SEED = 0

#: Names and units of the regressor's four outputs, in order.
TARGETS = (("yaw", "deg"), ("pitch", "deg"), ("dx", "light x"), ("dy", "light y"))

# Budgets of the full measurement (see budgets() for quick mode).
REGRESSOR_STEPS = 1500
REGRESSOR_POOL = 2048
N_ERRORS = 256
N_COVERAGE = 64
COVERAGE_STEPS = 200
COVERAGE_LR = 0.1
N_SAMPLES = 1000

# SynFaces are rendered one face at a time (~12 ms each on a CPU); chunks keep memory flat.
_SYNFACE_CHUNK = 64


def budgets(quick: bool = False) -> dict[str, int]:
    """The sizes of :func:`measure`: the full ones, or in quick mode (a smoke run of the same
    code path) every one divided by ten.

    >>> budgets(quick=True)  # doctest: +NORMALIZE_WHITESPACE
    {'regressor_steps': 150, 'regressor_pool': 204, 'n_errors': 25, 'n_coverage': 6,
     'coverage_steps': 20, 'n_samples': 100}
    """
    full = dict(regressor_steps=REGRESSOR_STEPS, regressor_pool=REGRESSOR_POOL,
                n_errors=N_ERRORS, n_coverage=N_COVERAGE, coverage_steps=COVERAGE_STEPS,
                n_samples=N_SAMPLES)
    return {k: quick_length(v) for k, v in full.items()} if quick else full


# ============================================================ data
def synface_images(n: int, seed: int = TEST_SEED, size: int = 64, progress: bool = False,
                   desc: str = "SynFaces") -> tuple[Tensor, Tensor]:
    """Faces ``0 … n−1`` of ``seed`` and their targets.

    Returns:
        images ``n×3×size×size`` in [-1, 1], targets ``n×4`` (see :func:`pose_light_targets`).
    """
    from tqdm.auto import tqdm

    world = SynFaces(size)
    images, targets = [], []
    for start in tqdm(range(0, n, _SYNFACE_CHUNK), desc=desc, disable=not progress,
                      leave=False):
        batch = world.sample(min(_SYNFACE_CHUNK, n - start), seed=seed, start=start)
        images.append(batch["image"])
        targets.append(pose_light_targets(batch))
    return torch.cat(images), torch.cat(targets)


def pose_light_targets(batch: dict[str, Tensor]) -> Tensor:
    """The regressor's targets of a SynFaces batch: ``n×4`` (yaw °, pitch °, dx, dy).

    Yaw is the rotation about the y axis (``view[:, 1]``), pitch about x (``view[:, 0]``).
    """
    view, light = batch["view"], batch["light"]
    return torch.stack([torch.rad2deg(view[:, 1]), torch.rad2deg(view[:, 0]),
                        light[:, 2], light[:, 3]], 1)


# How the targets change when an image is mirrored left–right (see _mirror).
_MIRROR_SIGN = (-1.0, 1.0, -1.0, 1.0)


def _mirror(images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Mirror images left–right and their targets with them.

    Mirroring x (the principal point sits on the image's centre column) turns a rotation
    about y by θ into one by −θ, leaves the rotation about x alone, and sends the light
    direction (dx, dy, 1) to (−dx, dy, 1). The mirrored image *is* the rendering of the
    mirrored face under the mirrored view and light (up to rasterization ties at ~0.1% of
    the pixels, on silhouette edges), so mirroring doubles the training faces for free.
    """
    return images.flip(-1), targets * targets.new_tensor(_MIRROR_SIGN)


# ============================================================ the pose-and-light regressor
class PoseLightRegressor(nn.Module):
    """A small CNN: image → (yaw °, pitch °, dx, dy).

    Four stride-2 3×3 convs (GroupNorm + ReLU) bring ``H×W`` to ``H/16×W/16``; an adaptive
    average pool to 4×4 makes any size divisible by 16 acceptable while keeping *where*
    things are (pose is mostly position: where the nose sits relative to the head); a fully
    connected layer gives the ``feature_dim`` features (ReLU), a last one the four targets.

    The network predicts standardised targets; ``target_mean``/``target_std`` (buffers, set
    by :func:`train_regressor` from its training faces) bring them back to the original
    units, so ``forward`` speaks degrees and light coordinates.

    Args:
        width: channels of the first conv (then 2×, 4×, 4×).
        feature_dim: size of the feature vector (:meth:`features`).
        outputs: how many targets (Chapter 8 reads a face's identity with the same net).

    >>> reg = PoseLightRegressor()
    >>> reg(torch.zeros(2, 3, 64, 64)).shape, reg.features(torch.zeros(2, 3, 32, 32)).shape
    (torch.Size([2, 4]), torch.Size([2, 64]))
    """

    def __init__(self, width: int = 32, feature_dim: int = 64, outputs: int = len(TARGETS)):
        super().__init__()
        widths = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                       nn.GroupNorm(min(8, c_out), c_out), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(widths[-1] * 16, feature_dim)
        self.head = nn.Linear(feature_dim, outputs)
        self.feature_dim = feature_dim
        self.register_buffer("target_mean", torch.zeros(outputs))
        self.register_buffer("target_std", torch.ones(outputs))

    def _check(self, images: Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"PoseLightRegressor: images must be B×3×H×W, got "
                             f"{tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % 16 or w % 16:
            raise ValueError(f"PoseLightRegressor: H and W must be multiples of 16 (four "
                             f"stride-2 convs), got {h}×{w}; resize with F.interpolate")

    def features(self, images: Tensor) -> Tensor:
        """``B×3×H×W`` → ``B×feature_dim``: the penultimate layer (for Fréchet distances)."""
        self._check(images)
        return F.relu(self.fc(self.pool(self.convs(images)).flatten(1)))

    def standardised(self, images: Tensor) -> Tensor:
        """``B×3×H×W`` → ``B×4`` targets in standard units (what training compares)."""
        return self.head(self.features(images))

    def forward(self, images: Tensor) -> Tensor:
        """``B×3×H×W`` → ``B×4``: yaw (°), pitch (°), light dx, light dy."""
        return self.standardised(images) * self.target_std + self.target_mean


def train_regressor(steps: int = REGRESSOR_STEPS, batch: int = 32, lr: float = 2e-3,
                    seed: int = 0, data_seed: int = REGRESSOR_DATA_SEED,
                    pool: int = REGRESSOR_POOL, size: int = 64, progress: bool = True,
                    history: list[float] | None = None) -> PoseLightRegressor:
    """Train a :class:`PoseLightRegressor` on SynFaces of ``data_seed``.

    Rendering a SynFace costs far more than a training step, so the first ``pool`` faces of
    ``data_seed`` are rendered once and batches are drawn from them, each image mirrored
    with probability ½ (:func:`_mirror`, an exact relabelling), which doubles the pool.
    Adam with a cosine-decaying rate, MSE on standardised targets.

    Args:
        steps: optimisation steps.
        batch: images per step.
        lr: Adam's initial learning rate.
        seed: seed of the network's weights and the batch order.
        data_seed: SynFaces seed of the training faces (keep it apart from the GAN's
            ``data_seed=0`` and from :data:`TEST_SEED`).
        pool: number of distinct training faces.
        size: image size.
        history: if given, receives the loss of every step.

    Returns:
        the regressor, in eval mode.
    """
    from tqdm.auto import tqdm

    if steps < 1 or batch < 1 or pool < 2:
        raise ValueError(f"train_regressor: need steps ≥ 1, batch ≥ 1 and pool ≥ 2, got "
                         f"{steps}, {batch}, {pool}")
    images, targets = synface_images(pool, data_seed, size, progress, "regressor faces")
    gen = torch.Generator().manual_seed(seed)
    with seeded(seed):
        reg = PoseLightRegressor()
    # Mirroring leaves the std alone and sends the mean of yaw and dx to zero; the statistics
    # of pool and mirrored pool together are the ones batches are drawn from.
    both = torch.cat([targets, targets * targets.new_tensor(_MIRROR_SIGN)])
    reg.target_mean.copy_(both.mean(0))
    reg.target_std.copy_(both.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(reg.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    reg.train()
    bar = tqdm(range(steps), desc="train pose/light regressor", disable=not progress)
    for _ in bar:
        idx = torch.randint(0, pool, (batch,), generator=gen)
        x, y = images[idx], targets[idx]
        flip = torch.rand(batch, generator=gen) < 0.5
        x_m, y_m = _mirror(x, y)
        x = torch.where(flip[:, None, None, None], x_m, x)
        y = torch.where(flip[:, None], y_m, y)
        loss = F.mse_loss(reg.standardised(x), (y - reg.target_mean) / reg.target_std)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if history is not None:
            history.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return reg.eval()


class RegressorOutputs(NamedTuple):
    """What the regressor makes of a set of ``n`` images, on the CPU."""

    predictions: Tensor  #: ``n×4``: yaw (°), pitch (°), light dx, light dy
    features: Tensor  #: ``n×feature_dim``: the penultimate layer


@torch.no_grad()
def regressor_outputs(regressor: PoseLightRegressor, images: Tensor,
                      batch: int = 250) -> RegressorOutputs:
    """Predictions and features of ``images`` (``n×3×H×W``), ``batch`` images at a time on
    the regressor's device; one pass gives both.

    >>> out = regressor_outputs(PoseLightRegressor().eval(), torch.zeros(5, 3, 32, 32), batch=2)
    >>> out.predictions.shape, out.features.shape
    (torch.Size([5, 4]), torch.Size([5, 64]))
    """
    device = next(regressor.parameters()).device
    preds, feats = [], []
    for chunk in images.split(batch):
        f = regressor.features(chunk.to(device))
        feats.append(f.cpu())
        preds.append((regressor.head(f) * regressor.target_std + regressor.target_mean).cpu())
    return RegressorOutputs(torch.cat(preds), torch.cat(feats))


def regressor_errors(reg: PoseLightRegressor, n: int = N_ERRORS, seed: int = TEST_SEED,
                     size: int = 64, progress: bool = False) -> dict[str, float]:
    """Mean absolute error of each target on ``n`` held-out ``size``-px SynFaces.

    Returns:
        ``{"yaw": …°, "pitch": …°, "dx": …, "dy": …}``, and the same for a constant
        prediction of the training mean (``"<name>_baseline"``) — the error a regressor that
        learned nothing would make.
    """
    images, targets = synface_images(n, seed, size, progress, "test faces")
    err = (regressor_outputs(reg, images).predictions - targets).abs().mean(0)
    base = (reg.target_mean.cpu() - targets).abs().mean(0)
    out = {name: float(e) for (name, _), e in zip(TARGETS, err)}
    out.update({f"{name}_baseline": float(b) for (name, _), b in zip(TARGETS, base)})
    return out


# ============================================================ coverage: fitting w
def untrained_like(G: Generator, seed: int = UNTRAINED_SEED) -> Generator:
    """A freshly initialised Generator of G's shape (size, style_dim, n_mlp, widths), on G's
    device, in eval mode; its weights depend on ``seed`` only (the global RNG is untouched).

    :func:`g2s_lite.train_gan.train` seeds torch with its ``seed`` (0 by default) and builds
    G first, so with the default ``seed=0`` this is exactly the book's G *before* training:
    the comparison isolates what training taught it.
    """
    with seeded(seed):
        fresh = Generator(G.size, style_dim=G.style_dim, n_mlp=G.n_mlp, channels=G.channels)
    return fresh.to(G.device).eval()


def fit_latents(G: Generator, images: Tensor, steps: int = 200, lr: float = COVERAGE_LR,
                progress: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Optimise one w per image so that ``G.synthesis(w, "const")`` reproduces it (L1).

    Every image starts from the mean w and gets the same fixed budget of Adam steps, all
    images in one batch (their losses are summed, so each w sees only its own image's
    gradient). The rate ramps down over the last quarter of the steps (cosine), as in
    StyleGAN2's projector, so the final w is not caught mid-oscillation. G's weights are
    not changed (their ``requires_grad`` flags are restored afterwards).

    Args:
        G: the generator.
        images: ``B×3×size×size`` targets in [-1, 1].
        steps: Adam steps (the budget).
        lr: Adam's peak learning rate on w.

    Returns:
        w ``B×style_dim``, reconstructions ``B×3×size×size`` (from the final w) and the
        final per-image L1 ``B`` (mean absolute difference over pixels and channels).
    """
    from tqdm.auto import tqdm

    if images.ndim != 4 or tuple(images.shape[1:]) != (3, G.size, G.size):
        raise ValueError(f"fit_latents: images must be B×3×{G.size}×{G.size} for this G, got "
                         f"{tuple(images.shape)}")
    if steps < 0:
        raise ValueError(f"fit_latents: steps must be ≥ 0, got {steps}")
    images = images.to(G.device, G.dtype)
    with frozen(G):
        w = G.mean_latent().expand(len(images), -1).clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr)
        bar = tqdm(range(steps), desc="fit w", disable=not progress, leave=False)
        for step in bar:
            t = step / steps
            for group in opt.param_groups:
                group["lr"] = latent_lr(t, lr, rampup=0.0)
            l1 = (G.synthesis(w, "const") - images).abs().flatten(1).mean(1)
            opt.zero_grad(set_to_none=True)
            l1.sum().backward()
            opt.step()
            bar.set_postfix(l1=f"{l1.mean().item():.4f}")
        with torch.no_grad():
            recon = G.synthesis(w, "const")
            l1 = (recon - images).abs().flatten(1).mean(1)
    return w.detach(), recon, l1


def coverage(G: Generator, n: int = N_COVERAGE, steps: int = COVERAGE_STEPS, seed: int = TEST_SEED,
             untrained: Generator | None = None, lr: float = COVERAGE_LR,
             progress: bool = True) -> dict[str, Any]:
    """How well w-fitting reconstructs ``n`` held-out SynFaces through G vs an untrained G.

    Args:
        G: the generator to measure.
        n: number of test faces (faces ``0 … n−1`` of ``seed``).
        steps, lr: the budget of :func:`fit_latents`, the same for both generators.
        untrained: the reference; default ``untrained_like(G)``.

    Returns:
        dict with ``n``, ``steps``, ``lr``, ``seed``; ``l1_trained`` and ``l1_untrained``
        (mean per-image L1 after fitting), ``l1_trained_start`` and ``l1_untrained_start``
        (the mean w's image, before fitting), ``ratio`` = l1_trained / l1_untrained (the book
        aims at ≤ 0.5), ``l1_trained_per_image`` and ``l1_untrained_per_image`` (lists).
    """
    images, _ = synface_images(n, seed, G.size, progress, "coverage faces")
    untrained = untrained_like(G) if untrained is None else untrained
    out: dict[str, Any] = {"n": n, "steps": steps, "lr": lr, "seed": seed}
    for name, model in (("trained", G), ("untrained", untrained)):
        with torch.no_grad():
            start = model.synthesis(model.mean_latent(), "const").cpu()
        _, _, l1 = fit_latents(model, images, steps, lr, progress)
        out[f"l1_{name}"] = float(l1.mean())
        out[f"l1_{name}_start"] = float((start - images).abs().flatten(1).mean(1).mean())
        out[f"l1_{name}_per_image"] = [round(float(v), 5) for v in l1]
    out["ratio"] = out["l1_trained"] / out["l1_untrained"]
    return out


# ============================================================ variety and Fréchet distance
@torch.no_grad()
def sample_images(G: Generator, n: int, seed: int = SAMPLE_SEED, batch: int = 100) -> Tensor:
    """``n`` samples ``G(z)``, z ~ N(0, I) from ``seed``, constant noise, no truncation,
    clamped to [-1, 1] (as they would be shown): ``n×3×size×size`` on G's device."""
    z = torch.randn(n, G.style_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([G(c.to(G.device, G.dtype), noise_mode="const").clamp(-1, 1)
                      for c in z.split(batch)])


def variety(outputs: RegressorOutputs) -> dict[str, dict[str, float]]:
    """The spread of poses and lights in a set of images, as the regressor sees them:
    ``{target: {"mean", "std", "q05", "q95"}}`` over yaw, pitch, dx, dy (q05, q95: the 5th
    and 95th percentiles). On SynFaces themselves it gives the data's spread as the regressor
    sees it, so its own errors affect data and generators alike.

    >>> yaw = torch.arange(-50.0, 51.0)                    # 101 faces, yaw −50° … 50°
    >>> pred = torch.stack([yaw, 0 * yaw, 0 * yaw, 0 * yaw], 1)
    >>> {k: round(v, 2) for k, v in variety(RegressorOutputs(pred, pred))["yaw"].items()}
    {'mean': 0.0, 'std': 29.3, 'q05': -45.0, 'q95': 45.0}
    """
    pred = outputs.predictions
    q = torch.quantile(pred, pred.new_tensor([0.05, 0.95]), dim=0)
    return {name: {"mean": float(pred[:, i].mean()), "std": float(pred[:, i].std()),
                   "q05": float(q[0, i]), "q95": float(q[1, i])}
            for i, (name, _) in enumerate(TARGETS)}


def frechet_distance(feats_a: Tensor | np.ndarray, feats_b: Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    ``d² = ‖μ_a − μ_b‖² + tr Σ_a + tr Σ_b − 2 tr (Σ_a Σ_b)^{1/2}``: the squared
    Wasserstein-2 distance between N(μ_a, Σ_a) and N(μ_b, Σ_b), the formula of FID.

    The last trace needs no general matrix square root: ``Σ_a Σ_b = Σ_a^{1/2} (Σ_a^{1/2} Σ_b)``
    and the symmetric positive semi-definite ``M = (Σ_a^{1/2} Σ_b) Σ_a^{1/2}`` share their
    eigenvalues λ_i ≥ 0 (XY and YX always do), so ``tr (Σ_a Σ_b)^{1/2} = Σ_i √λ_i``. Both
    ``Σ_a^{1/2}`` and λ come from symmetric eigensolvers (``eigh``), which stay exact and real
    when a covariance is singular (dead ReLU features, fewer samples than dimensions);
    round-off below zero is clipped.

    Args:
        feats_a: ``N×D``.
        feats_b: ``M×D``; N, M ≥ 2.

    Returns:
        d² (≥ 0 up to round-off), in squared feature units.

    >>> x = torch.randn(500, 3, dtype=torch.float64)
    >>> round(frechet_distance(x, x + 2.0), 6)  # same covariance, means 2·(1, 1, 1) apart
    12.0
    """
    a, b = (np.asarray(torch.as_tensor(f).detach().cpu().double()) for f in (feats_a, feats_b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: features must be N×D and M×D with the same D, got "
                         f"{a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"frechet_distance: need at least 2 vectors per set to estimate a "
                         f"covariance, got {len(a)} and {len(b)}")
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(vals.clip(min=0.0))) @ vecs.T
    lam = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b)
                 - 2.0 * np.sqrt(lam.clip(min=0.0)).sum())


def feature_distance(outputs_a: RegressorOutputs, outputs_b: RegressorOutputs) -> float:
    """:func:`frechet_distance` of two sets of images in the regressor's feature space: the
    recipe of FID, with features that know faces' poses and lights."""
    return frechet_distance(outputs_a.features, outputs_b.features)


# ============================================================ everything, and the report
def measure(G: Generator, quick: bool = False, regressor: PoseLightRegressor | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Every measure of this module on G, with seeds, budgets and the time each took.

    Args:
        G: the generator to measure.
        quick: the smoke-run :func:`budgets` instead of the full ones.
        regressor: a trained :class:`PoseLightRegressor`; trained here when None.

    Returns:
        a JSON-ready dict with keys ``regressor`` (its budget and held-out errors),
        ``coverage`` (:func:`coverage`), ``variety`` (:func:`variety` of SynFaces
        (:data:`TEST_SEED`) as ``data``, and of G's and an untrained G's samples (z seed
        :data:`SAMPLE_SEED`) as ``trained`` and ``untrained``), ``frechet`` (the
        :func:`feature_distance` of each of them to those SynFaces, with SynFaces of
        :data:`FLOOR_SEED` as ``data``: the value a perfect generator would get with as many
        samples, since Fréchet distances are biased upwards at finite n), ``seeds``,
        ``budgets``, ``quick``, ``generator``, ``seconds`` (per step) and ``wall_seconds``.
    """
    budget = budgets(quick)
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    device = G.device
    reg_info: dict[str, Any] = {}
    t = time.perf_counter()
    if regressor is None:
        regressor = train_regressor(budget["regressor_steps"], pool=budget["regressor_pool"],
                                    size=G.size, progress=progress)
        reg_info.update(steps=budget["regressor_steps"], pool=budget["regressor_pool"],
                        trained_here=True)
        seconds["train_regressor"] = round(time.perf_counter() - t, 1)
    else:
        reg_info["trained_here"] = False
    regressor = regressor.to(device).eval()
    t = time.perf_counter()
    reg_info["mae"] = regressor_errors(regressor, budget["n_errors"], size=G.size,
                                       progress=progress)
    reg_info["n_test"] = budget["n_errors"]
    seconds["regressor_errors"] = round(time.perf_counter() - t, 1)

    untrained = untrained_like(G)
    t = time.perf_counter()
    cov = coverage(G, budget["n_coverage"], budget["coverage_steps"], untrained=untrained,
                   progress=progress)
    seconds["coverage"] = round(time.perf_counter() - t, 1)

    # Each set is rendered and regressed once, then read by both variety and the distances.
    t = time.perf_counter()
    n = budget["n_samples"]
    out = {"data": regressor_outputs(regressor, synface_images(
               n, TEST_SEED, G.size, progress, f"SynFaces seed {TEST_SEED}")[0]),
           "floor": regressor_outputs(regressor, synface_images(
               n, FLOOR_SEED, G.size, progress, f"SynFaces seed {FLOOR_SEED}")[0]),
           "trained": regressor_outputs(regressor, sample_images(G, n)),
           "untrained": regressor_outputs(regressor, sample_images(untrained, n))}
    seconds["samples"] = round(time.perf_counter() - t, 1)
    var = {"n": n, "seed": SAMPLE_SEED, "data_seed": TEST_SEED, "units": dict(TARGETS),
           **{name: variety(out[name]) for name in ("data", "trained", "untrained")}}
    fd = {"n": n, "seed": SAMPLE_SEED, "data_seed": TEST_SEED, "floor_seed": FLOOR_SEED,
          "feature_dim": regressor.feature_dim,
          **{name: feature_distance(out[source], out["data"])
             for name, source in (("data", "floor"), ("trained", "trained"),
                                  ("untrained", "untrained"))}}
    return {
        "generator": {"size": G.size, "style_dim": G.style_dim, "n_mlp": G.n_mlp,
                      "channels": {str(k): v for k, v in G.channels.items()}},
        "regressor": reg_info, "coverage": cov, "variety": var, "frechet": fd,
        "seeds": {"regressor_data": REGRESSOR_DATA_SEED, "test": TEST_SEED,
                  "floor": FLOOR_SEED, "samples": SAMPLE_SEED, "untrained": UNTRAINED_SEED,
                  "gan_training_data": 0},
        "budgets": budget, "quick": quick,
        "seconds": seconds, "wall_seconds": round(time.perf_counter() - t_start, 1),
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
    }


def markdown_report(result: dict[str, Any]) -> str:
    """A model-card table of :func:`measure`'s result: data vs trained G vs untrained G."""
    cov, var, fd, reg = (result[k] for k in ("coverage", "variety", "frechet", "regressor"))

    def ms(col: str, name: str, digits: int) -> str:
        s = var[col][name]
        return f"{s['mean']:+.{digits}f} ± {s['std']:.{digits}f}"

    rows = ["| measure | SynFaces (data) | trained G | untrained G |",
            "|---|---|---|---|",
            f"| coverage: L1 after fitting w ({cov['n']} test faces, {cov['steps']} Adam "
            f"steps) | – | {cov['l1_trained']:.4f} | {cov['l1_untrained']:.4f} |",
            f"| coverage: L1 of the mean w (before fitting) | – | "
            f"{cov['l1_trained_start']:.4f} | {cov['l1_untrained_start']:.4f} |"]
    for name, unit in TARGETS:
        digits = 1 if unit == "deg" else 2
        label = f"{name} ({'°' if unit == 'deg' else unit}), mean ± std"
        rows.append(f"| variety: {label} | {ms('data', name, digits)} | "
                    f"{ms('trained', name, digits)} | {ms('untrained', name, digits)} |")
    rows.append(f"| Fréchet distance to SynFaces (regressor features, n = {fd['n']}) | "
                f"{fd['data']:.3f} (floor) | {fd['trained']:.3f} | {fd['untrained']:.3f} |")
    mae = reg["mae"]
    seeds = result["seeds"]
    notes = [
        "",
        f"Coverage ratio (trained / untrained L1): **{cov['ratio']:.2f}** (aim: ≤ 0.5).",
        f"Variety: predictions of a pose/light regressor trained on SynFaces (seed "
        f"{seeds['regressor_data']}) on {var['n']} samples (z seed {seeds['samples']}, constant "
        f"noise, no truncation) and on {var['n']} SynFaces (seed {seeds['test']}). Its "
        f"held-out mean absolute error ({reg['n_test']} faces): yaw {mae['yaw']:.1f}°, pitch "
        f"{mae['pitch']:.1f}°, dx {mae['dx']:.3f}, dy {mae['dy']:.3f} (predicting the mean: "
        f"{mae['yaw_baseline']:.1f}°, {mae['pitch_baseline']:.1f}°, {mae['dx_baseline']:.3f}, "
        f"{mae['dy_baseline']:.3f}).",
        f"Fréchet floor: SynFaces seed {seeds['floor']} vs seed {seeds['test']}. Untrained G: "
        f"same shape, initialised with seed {seeds['untrained']}. Wall time "
        f"{result['wall_seconds']:.0f} s on {result['device']} ({result['threads']} "
        f"thread(s)).",
    ]
    return "\n".join(rows + notes) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line: :func:`measure` a checkpoint, write the JSON and the markdown table.
    Quick mode is decided here, from ``--quick`` or ``G2S_QUICK``."""
    from .gan import load_stylegan2

    p = argparse.ArgumentParser(prog="python -m g2s_lite.gan_quality",
                                description="Measure coverage, variety and a Fréchet distance "
                                            "of a SynFace GAN against SynFaces and an "
                                            "untrained generator of the same shape.")
    p.add_argument("--weights", required=True, help="StyleGAN2 checkpoint ({'g_ema', …})")
    p.add_argument("--out", required=True, help="JSON file for all numbers")
    p.add_argument("--markdown", default=None, help="also write a model-card table here")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: every budget divided by ten (also when G2S_QUICK=1)")
    p.add_argument("--regressor", default=None,
                   help="regressor weights: loaded if the file exists, else trained and saved")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, …)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    quick = a.quick or quick_mode()
    budget = budgets(quick)
    G, _ = load_stylegan2(a.weights, device=a.device)
    regressor, trained_seconds = None, None
    if a.regressor and Path(a.regressor).is_file():
        regressor = PoseLightRegressor()
        regressor.load_state_dict(torch.load(a.regressor, map_location="cpu",
                                             weights_only=True))
    elif a.regressor:
        # Train it here (not inside measure) so it can be kept: later runs then compare
        # generators with the same yardstick.
        t = time.perf_counter()
        regressor = train_regressor(budget["regressor_steps"], pool=budget["regressor_pool"],
                                    size=G.size, progress=not a.no_progress)
        trained_seconds = round(time.perf_counter() - t, 1)
        Path(a.regressor).parent.mkdir(parents=True, exist_ok=True)
        torch.save(regressor.state_dict(), a.regressor)
    result = measure(G, quick, regressor=regressor, progress=not a.no_progress)
    if trained_seconds is not None:
        result["regressor"].update(steps=budget["regressor_steps"],
                                   pool=budget["regressor_pool"], trained_here=True)
        result["seconds"]["train_regressor"] = trained_seconds
        result["wall_seconds"] = round(result["wall_seconds"] + trained_seconds, 1)
    if a.regressor:
        result["regressor"]["weights"] = str(a.regressor)
    result.update(weights=str(a.weights),
                  command=" ".join(["python -m g2s_lite.gan_quality",
                                    *(sys.argv[1:] if argv is None else argv)]))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    if a.markdown:
        Path(a.markdown).write_text(markdown_report(result))
    print(markdown_report(result))
    return result


if __name__ == "__main__":
    main()
