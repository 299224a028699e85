"""Who a face is, read from its picture — the yardstick of Chapter 8's edits.

An edit that turns or relights a face should leave *who* it is alone. SynFaces knows who
every face is (its :class:`~g2s_lite.synth.FaceParams`), so a small CNN can learn to read
the parameters that make a face itself (:data:`IDENTITY`) from its head alone, under views
and lights wider than the world's (:func:`train_identity_reader`); how well it reads each
one on held-out faces (:func:`identity_readable`) says which count; and the distance between
what it reads in an edited picture and the truth (:func:`identity_distance`) says how much of
the face an edit kept (:mod:`~g2s_lite.edit_measure`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: The face parameters that say who a face is (not where it sits or what is behind it).
IDENTITY = ("half_width", "half_height", "head_relief", "eye_x", "eye_y", "eye_socket",
            "brow_ridge", "nose_tip_y", "nose_width", "nose_height", "cheek", "mouth_y",
            "lips", "chin", "hairline", "skin", "hair")
#: SynFaces seed of the identity reader's training faces (no test face, no GAN face).
IDENTITY_SEED = 7070
#: Views the identity reader learns under: wider than the world's, to reach edited views.
IDENTITY_VIEWS_DEG = (25.0, 80.0)  # pitch, yaw
#: Training of the identity reader (steps, distinct training faces).
READER_STEPS, READER_POOL = 2000, 3072
#: A parameter counts towards the identity distance when the reader explains at least this
#: share of its variance on held-out faces (R²): the colours and the head's proportions
#: are read well at 64 pixels, the millimetre-scale relief of nose, lips and brows is not.
READABLE_R2 = 0.2


def identity_vector(p) -> Tensor:
    """A face's :data:`IDENTITY` parameters as one vector (colours take three entries)."""
    values = []
    for name in IDENTITY:
        v = getattr(p, name)
        values += list(v) if isinstance(v, tuple) else [float(v)]
    return torch.tensor(values, dtype=torch.float32)


def identity_names() -> list[str]:
    """The names of :func:`identity_vector`'s entries."""
    return [f"{name}_{c}" if name in ("skin", "hair") else name
            for name in IDENTITY for c in (("r", "g", "b") if name in ("skin", "hair") else ("",))]


def _identity_faces(n: int, seed: int, size: int) -> tuple[Tensor, Tensor]:
    """``n`` SynFaces under wide random views and the world's lights, masked to the head
    (grey elsewhere), with their identity vectors."""
    from .paper import SYNFACE_LIGHTS, ViewRanges
    from .pseudo import sample_lights, sample_views
    from .synth import SYNFACE_BASE_LIGHT, SynFaces, face_params

    world = SynFaces(size)
    gen = torch.Generator().manual_seed(seed)
    images, ids = [], []
    for start in range(0, n, 128):
        params = [face_params(seed, i) for i in range(start, min(n, start + 128))]
        views = sample_views(len(params), ViewRanges(*IDENTITY_VIEWS_DEG, 5.0, 0.006, 0.006),
                             gen)
        lights = sample_lights(len(params), SYNFACE_BASE_LIGHT, SYNFACE_LIGHTS, gen)
        depth, albedo, mask = world.canonical(params)
        out = world.render(depth, albedo, lights, views, mask)
        images.append(out["image"] * out["mask"])
        ids += [identity_vector(p) for p in params]
    return torch.cat(images), torch.stack(ids)


def train_identity_reader(steps: int = READER_STEPS, pool: int = READER_POOL, size: int = 64,
                          seed: int = IDENTITY_SEED, batch: int = 32):
    """A :class:`~g2s_lite.pose_regressor.PoseLightRegressor`-shaped CNN that reads a face's
    :data:`IDENTITY` parameters from its head alone (``image·mask``), trained on faces
    under wide views and random lights so that what it reads does not move with them."""
    from .pose_regressor import PoseLightRegressor
    from .runtime import seeded

    images, ids = _identity_faces(pool, seed, size)
    with seeded(seed):
        reader = PoseLightRegressor(outputs=ids.shape[1])
    reader.target_mean.copy_(ids.mean(0))
    reader.target_std.copy_(ids.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(reader.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    reader.train()
    for _ in range(steps):
        idx = torch.randint(0, pool, (batch,), generator=gen)
        target = (ids[idx] - reader.target_mean) / reader.target_std
        loss = F.mse_loss(reader.standardised(images[idx]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return reader.eval()


def identity_readable(reader, n: int = 384, seed: int = IDENTITY_SEED + 1,
                      size: int = 64) -> Tensor:
    """The reader's R² for each identity entry on ``n`` held-out faces (other seed): ``D``."""
    images, ids = _identity_faces(n, seed, size)
    with torch.no_grad():
        read = reader(images)
    return 1 - (read - ids).pow(2).mean(0) / ids.var(0).clamp(min=1e-12)


def identity_distance(reader, images: Tensor, mask: Tensor, truth: Tensor,
                      readable: Tensor | None = None) -> Tensor:
    """RMS distance, in the training faces' standard deviations, between the identity the
    reader sees in ``images·mask`` (``B×3×S×S``, ``B×1×S×S``) and ``truth`` (``D`` or
    ``B×D`` identity vectors), over the ``readable`` entries (``D`` booleans; all by
    default): ``B``."""
    with torch.no_grad():
        read = reader.standardised(images * mask)
    target = (truth - reader.target_mean) / reader.target_std
    gap = (read - target).pow(2)
    if readable is not None:
        gap = gap[..., readable]
    return gap.mean(-1).sqrt()
