"""Figures: image grids, depth and normal maps, rotation strips and animations."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor


def to_image(image: Tensor) -> np.ndarray:
    """``3×H×W`` (or ``1×3×H×W``) in [−1, 1] → ``H×W×3`` numpy array in [0, 1]."""
    if image.dim() == 4:
        image = image[0]
    return ((image.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()


def to_uint8(array: np.ndarray) -> np.ndarray:
    """``H×W×3`` values in [0, 1] → 8-bit pixels (for PIL)."""
    return (np.clip(array, 0, 1) * 255).round().astype(np.uint8)


def depth_to_rgb(depth: Tensor, mask: Tensor | None = None, vmin: float | None = None,
                 vmax: float | None = None, cmap: str = "magma_r") -> np.ndarray:
    """``H×W`` depth → ``H×W×3`` colours (near is bright); pixels outside ``mask`` white."""
    d = depth.detach().float().cpu()
    m = torch.ones_like(d, dtype=torch.bool) if mask is None else mask.detach().cpu().reshape(d.shape) > 0.5
    lo = float(d[m].min()) if vmin is None else vmin
    hi = float(d[m].max()) if vmax is None else vmax
    rgb = plt.get_cmap(cmap)(((d - lo) / max(hi - lo, 1e-8)).clamp(0, 1).numpy())[..., :3]
    rgb[~m.numpy()] = 1.0
    return rgb


def normal_to_rgb(normal: Tensor, mask: Tensor | None = None) -> np.ndarray:
    """``H×W×3`` outward normals → the usual normal-map colours (facing the camera = blue)."""
    n = normal.detach().float().cpu() * torch.tensor([1.0, -1.0, -1.0])
    rgb = ((n + 1) / 2).clamp(0, 1).numpy()
    if mask is not None:
        rgb[mask.detach().cpu().reshape(rgb.shape[:2]).numpy() < 0.5] = 1.0
    return rgb


def _as_array(x: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if x.dim() == 4:
        x = x[0]
    if x.dim() == 3 and x.shape[0] in (1, 3):
        return to_image(x) if x.shape[0] == 3 else x[0].detach().cpu().numpy()
    return x.detach().float().cpu().numpy()


def show_row(images: Sequence[Tensor | np.ndarray], titles: Sequence[str] | None = None,
             size: float = 2.2, cmap: str = "gray") -> plt.Figure:
    """One row of images (tensors in [−1, 1] or numpy arrays) with optional titles."""
    return show_grid([list(images)], [list(titles)] if titles else None, size=size, cmap=cmap)


def show_grid(rows: Sequence[Sequence[Tensor | np.ndarray]],
              titles: Sequence[Sequence[str]] | None = None, size: float = 2.2,
              cmap: str = "gray", row_labels: Sequence[str] | None = None) -> plt.Figure:
    """A grid of images: ``rows[i][j]``."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(row):
                ax.imshow(_as_array(row[j]), cmap=cmap)
                if titles and j < len(titles[i]):
                    ax.set_title(titles[i][j], fontsize=9)
        if row_labels:
            axes[i][0].text(-0.08, 0.5, row_labels[i], transform=axes[i][0].transAxes,
                            ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def show_strip(frames: Tensor, labels: Sequence[str] | None = None,
               size: float = 1.6) -> plt.Figure:
    """A rotation strip: ``T×3×H×W`` frames in one row."""
    return show_row(list(frames), labels, size=size)


def save_gif(frames: Tensor, path: str | Path, fps: int = 12, bounce: bool = True) -> Path:
    """Write ``T×3×H×W`` frames in [−1, 1] as an animated GIF (there and back if bounce)."""
    from PIL import Image

    seq = list(frames) + (list(frames)[-2:0:-1] if bounce else [])
    pil = [Image.fromarray(to_uint8(to_image(f))) for f in seq]
    path = Path(path)
    pil[0].save(path, save_all=True, append_images=pil[1:], duration=int(1000 / fps), loop=0)
    return path


def decomposition(sample: dict[str, Tensor], i: int = 0, size: float = 2.2) -> plt.Figure:
    """Depth, normal, shading, albedo and the image of one SynFace (or any dict with those
    keys: canonical ``depth_canon``, ``albedo``, ``shading``, ``canon_image``, and ``image``)."""
    from .render import Renderer

    depth = sample["depth_canon"][i].detach().cpu()
    r = Renderer(tuple(depth.shape))
    cells = [depth_to_rgb(depth), normal_to_rgb(r.normals(depth[None])[0]),
             sample["shading"][i, 0].detach().cpu().clamp(0, 1.2).numpy(), sample["albedo"][i],
             sample["canon_image"][i], sample["image"][i]]
    titles = ["depth d", "normal n", "shading s", "albedo a", "a·s (canonical)",
              "image Φ(d,a,v,l)"]
    return show_row(cells, titles, size=size)


def teaser(path: str | Path | None = None, n: int = 6, seed: int = 1) -> plt.Figure:
    """The README's picture: SynFaces, their ground-truth depth and normals, and one face
    turned by the renderer. ``python -c "from g2s_lite import viz; viz.teaser('book/figures/teaser.png')"``."""
    from .synth import SynFaces

    world = SynFaces(128)
    b = world.sample(n, seed=seed)
    frames = world.renderer.yaw_sweep(b["depth_canon"][:1], b["albedo"][:1], b["light"][:1],
                                      n=n, max_yaw=50.0)[0]
    rows = [list(b["image"]),
            [depth_to_rgb(b["depth"][i], b["mask"][i]) for i in range(n)],
            [normal_to_rgb(b["normal"][i], b["mask"][i]) for i in range(n)],
            list(frames)]
    fig = show_grid(rows, size=1.6, row_labels=["image", "depth", "normal", "turned"])
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80, bbox_inches="tight")
    return fig
