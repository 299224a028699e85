"""SynFaces with their pose and light, and a small CNN that reads them back — Chapter 3.

A SynFace carries the view and the light it was rendered under, so a regressor can learn
to read a face's pose (yaw, pitch) and its light direction (dx, dy) from the image alone.
Chapter 3 uses it to measure the variety of a GAN's samples and as the feature extractor
of a Fréchet distance (:mod:`g2s_lite.gan_quality`); Chapter 8 trains the same network to
read a face's identity (:func:`g2s_lite.edit.train_identity_reader`).

Seeds (disjoint from the GAN's training faces, ``data_seed=0`` of
:mod:`g2s_lite.train_gan`): the regressor trains on :data:`REGRESSOR_DATA_SEED`; held-out
test faces, here and in the chapters, come from :data:`TEST_SEED`.

Images are ``B×3×H×W`` in [-1, 1]; targets and predictions ``B×4`` are (yaw °, pitch °,
dx, dy) with yaw = ry and pitch = rx of SynFaces' view and (dx, dy) the light direction of
its light.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .runtime import seeded
from .synth import SynFaces

__all__ = ["REGRESSOR_DATA_SEED", "TEST_SEED", "TARGETS", "REGRESSOR_STEPS", "REGRESSOR_POOL",
           "N_ERRORS", "synface_images", "pose_light_targets", "PoseLightRegressor",
           "train_regressor", "RegressorOutputs", "regressor_outputs", "regressor_errors"]

#: SynFaces seed of the regressor's training faces (the GAN trains on seed 0).
REGRESSOR_DATA_SEED = 9001
#: SynFaces seed of the held-out test faces: coverage targets, variety and Fréchet reference.
TEST_SEED = 1000

#: Names and units of the regressor's four outputs, in order.
TARGETS = (("yaw", "deg"), ("pitch", "deg"), ("dx", "light x"), ("dy", "light y"))

# The regressor's budgets in the full measurement (gan_quality.budgets cuts them tenfold).
REGRESSOR_STEPS = 1500
REGRESSOR_POOL = 2048
N_ERRORS = 256

# SynFaces are rendered one face at a time (~12 ms each on a CPU); chunks keep memory flat.
_SYNFACE_CHUNK = 64


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
