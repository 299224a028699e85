"""Writing a reconstruction to disk — the files of ``python -m g2s_lite reconstruct``
(Chapter 6) and the mesh export of Chapter 8.

* ``input.png``, ``reconstruction.png``, ``albedo.png``, ``shading.png``;
* ``depth.png`` and ``normal.png`` in the image's own view (near is bright; background white);
* ``mesh.obj``: the canonical depth grid as a triangle mesh, one vertex per pixel with the
  albedo as vertex colour (the ``v x y z r g b`` extension most viewers read), in camera
  space with y up so viewers show it upright;
* ``rotation.gif``: the shaded reconstruction turning from −60° to 60° of yaw;
* ``factors.pt``: every tensor of the reconstruction (``torch.load(..., weights_only=True)``),
  and, for a photo, ``"crop"``: the box ``[x0, y0, x1, y1]`` it was cut from
  (:func:`g2s_lite.photos.crop_of` reads it back).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .render import Renderer
from .viz import depth_to_rgb, normal_to_rgb, save_gif, to_image, to_uint8

#: Tensors saved to ``factors.pt``.
SAVED = ("image", "depth", "valid", "normal", "depth_canon", "albedo", "shading", "view",
         "light", "reconstruction", "w")


def _png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(to_uint8(array)).save(path)


def save_obj(path: str | Path, depth: Tensor, albedo: Tensor | None = None,
             renderer: Renderer | None = None) -> Path:
    """Write the depth grid ``1×H×W`` (or ``H×W``) as a Wavefront OBJ with vertex colours
    from ``albedo`` ``1×3×H×W`` in [−1, 1]; y and z are flipped (camera y is down, OBJ's
    y is up)."""
    depth = depth.detach().float().cpu().reshape(1, *depth.shape[-2:])
    renderer = renderer or Renderer(depth.shape[-1])
    verts, faces = renderer.mesh(depth)
    verts = verts[0] * torch.tensor([1.0, -1.0, -1.0])
    colours = (torch.full_like(verts, 0.7) if albedo is None else
               ((albedo.detach().float().cpu()[0] + 1) / 2).clamp(0, 1).reshape(3, -1).T)
    lines = [f"# g2s-lite mesh: {depth.shape[-2]}×{depth.shape[-1]} depth grid"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f} {r:.4f} {g:.4f} {b:.4f}"
              for (x, y, z), (r, g, b) in zip(verts.tolist(), colours.tolist())]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.cpu().tolist()]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def save_reconstruction(rec, out: str | Path, frames: int = 15) -> dict[str, Path]:
    """Write the files listed in the module docstring for a
    :class:`~g2s_lite.method.Reconstruction`; returns their paths by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(rec.depth.shape[-1])
    paths = {name: out / f"{name}.png" for name in
             ("input", "reconstruction", "albedo", "shading", "depth", "normal")}
    _png(to_image(rec.image), paths["input"])
    _png(to_image(rec.reconstruction), paths["reconstruction"])
    _png(to_image(rec.albedo), paths["albedo"])
    _png(rec.shading[0, 0].detach().cpu().clamp(0, 1).numpy()[..., None].repeat(3, -1),
         paths["shading"])
    _png(depth_to_rgb(rec.depth[0], rec.valid[0, 0]), paths["depth"])
    _png(normal_to_rgb(rec.normal[0], rec.valid[0, 0]), paths["normal"])
    paths["mesh"] = save_obj(out / "mesh.obj", rec.depth_canon, rec.albedo, renderer)
    with torch.no_grad():
        sweep = renderer.yaw_sweep(rec.depth_canon.cpu(), rec.albedo.cpu(), rec.light.cpu(),
                                   n=frames, max_yaw=60.0)
    paths["gif"] = save_gif(sweep[0], out / "rotation.gif")
    paths["tensors"] = out / "factors.pt"
    saved = {k: getattr(rec, k).detach().cpu() for k in SAVED}
    if getattr(rec, "crop", None) is not None:
        saved["crop"] = torch.tensor(rec.crop)
    torch.save(saved, paths["tensors"])
    return paths
