"""How good is the small SynFace GAN? — Chapter 3 (and the model card beside the weights).

GAN2Shape needs a GAN whose image manifold *covers* its object class: every face the method
meets must be (nearly) an image of G, and G's images must show the *variety* of poses and
lights that lets the method see one face from many sides. This module measures both for the
book's small SynFace GAN, always next to two references — the data itself and an untrained
generator of the same shape — so that every number comes with a scale:

1. coverage: optimise one w per held-out SynFace (L1, a fixed budget of Adam steps, starting
   from the mean w) and compare the final reconstruction error through the trained G with the
   error through an untrained G (the book aims at a ratio of at most 0.5);
2. a pose-and-light regressor (:mod:`g2s_lite.pose_regressor`): a small CNN trained on
   SynFaces (which carry their view and light) to predict yaw, pitch and light direction
   (dx, dy), with its own held-out error;
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
:mod:`g2s_lite.train_gan`): the regressor trains on
:data:`~g2s_lite.pose_regressor.REGRESSOR_DATA_SEED`; held-out test faces come from
:data:`~g2s_lite.pose_regressor.TEST_SEED`; the Fréchet floor uses :data:`FLOOR_SEED`.

Images are ``B×3×H×W`` in [-1, 1]; w is ``B×style_dim``; regressor outputs ``B×4`` are
(yaw °, pitch °, dx, dy) (:data:`~g2s_lite.pose_regressor.TARGETS`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .gan import Generator, frozen
from .invert import latent_lr
from .paper import quick_length
from .pose_regressor import (N_ERRORS, REGRESSOR_DATA_SEED, REGRESSOR_POOL, REGRESSOR_STEPS,
                             TARGETS, TEST_SEED, PoseLightRegressor, RegressorOutputs,
                             regressor_errors, regressor_outputs, synface_images,
                             train_regressor)
from .runtime import quick_mode, seeded

__all__ = ["FLOOR_SEED", "SAMPLE_SEED", "UNTRAINED_SEED", "budgets", "untrained_like",
           "fit_latents", "coverage", "sample_images", "variety", "frechet_distance",
           "feature_distance", "measure", "markdown_report", "main"]

#: A second held-out SynFaces seed: the Fréchet distance between it and TEST_SEED is the floor
#: that finite samples leave even for a perfect generator.
FLOOR_SEED = 1001
#: Seed of the z ~ N(0, I) drawn for G's samples.
SAMPLE_SEED = 2021
#: Seed of the weights of the untrained reference generator.
UNTRAINED_SEED = 0

# Budgets of the full measurement (see budgets() for quick mode).
N_COVERAGE = 64
COVERAGE_STEPS = 200
COVERAGE_LR = 0.1
N_SAMPLES = 1000


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
