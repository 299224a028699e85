"""Writing a reconstruction to disk — the files of ``python -m g2s_lite reconstruct``
(Chapter 6) and the mesh export of Chapter 8.

* ``input.png``, ``reconstruction.png``, ``albedo.png``, ``shading.png``;
* ``depth.png`` and ``normal.png`` in the image's own view (near is bright; background white);
* ``mesh.obj``: the canonical depth grid as a triangle mesh, one vertex per pixel with the
  albedo as vertex colour (the ``v x y z r g b`` extension most viewers read), in camera
  space with y up so viewers show it upright;
* ``rotation.gif``: the shaded reconstruction turning from −60° to 60° of yaw;
* ``factors.pt``: the reconstruction in one file (:func:`save_factors`): every tensor of it
  (``torch.load(..., weights_only=True)[name]``), for a photo ``"crop"``, the box
  ``[x0, y0, x1, y1]`` it was cut from (:func:`g2s_lite.photos.crop_of` reads it back), and
  its ``"gan_crop"``; with ``nets=True`` (``--save-nets``) also its nets and latent-offset
  encoder (20 MB at 64 px, 215 MB at 128 px). :func:`load_reconstruction` reads it back,
  ready to edit on the mesh route, and with the nets on the GAN route too.
* with ``edits=True`` (Chapter 8, ``--edits``): ``textured/mesh.obj`` + ``mesh.mtl`` +
  ``albedo.png`` (the albedo as a texture, like the official code's export), ``mesh.glb``
  (one file web viewers open), ``grid.png`` (pitch × yaw, mesh route), ``relight.png`` (the
  relighting strip), ``rotation_mesh.gif`` and, given the GAN, ``rotation_gan.gif``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .nets import save_file
from .released import load_nets
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


def _png_grid(images: Tensor, path: Path) -> Path:
    """``R×C×3×H×W`` images in [−1, 1] tiled into one PNG."""
    rows = [np.concatenate([to_image(im) for im in row], 1) for row in images.cpu()]
    _png(np.concatenate(rows, 0), path)
    return path


def textured_mesh(depth: Tensor, albedo: Tensor, renderer: Renderer | None = None):
    """The canonical depth grid ``1×H×W`` as a ``trimesh.Trimesh`` textured with
    ``albedo`` ``1×3×H×W`` in [−1, 1] (one vertex per pixel, its pixel as UV), in camera
    space with y and z flipped so that viewers show it upright and facing them."""
    import trimesh
    from PIL import Image

    depth = depth.detach().float().cpu().reshape(1, *depth.shape[-2:])
    height, width = depth.shape[-2:]
    renderer = renderer or Renderer(width)
    verts, faces = renderer.mesh(depth)
    verts = (verts[0] * torch.tensor([1.0, -1.0, -1.0])).numpy()
    u, v = renderer.pixel_grid()
    # OBJ and glTF put the texture's first row at v = 1
    uv = torch.stack([u / (width - 1), 1 - v / (height - 1)], -1).reshape(-1, 2).numpy()
    texture = Image.fromarray(to_uint8(to_image(albedo)))
    # a white diffuse colour, so that viewers show the texture as it is (trimesh's is grey)
    material = trimesh.visual.material.SimpleMaterial(image=texture, name="albedo",
                                                      diffuse=(255, 255, 255, 255))
    return trimesh.Trimesh(verts, faces.cpu().numpy(), process=False,
                           visual=trimesh.visual.TextureVisuals(uv=uv, material=material))


def mesh_view(depth: Tensor, albedo: Tensor, size: int = 420):
    """An interactive 3D view of the textured mesh (:func:`textured_mesh`): a plotly
    ``Mesh3d`` figure, coloured per vertex by the albedo, that turns and zooms in Jupyter,
    in Colab and, as HTML (``fig.to_html(include_plotlyjs="cdn")``), in the built book, which
    serves plotly.js itself (``book/_ext/plotly_offline.py``)."""
    import plotly.graph_objects as go

    mesh = textured_mesh(depth, albedo)
    colour = ((albedo.detach().float().cpu()[0].reshape(3, -1).T + 1) / 2).clamp(0, 1).numpy()
    x, y, z = mesh.vertices.T
    i, j, k = mesh.faces.T
    fig = go.Figure(go.Mesh3d(x=x, y=y, z=z, i=i, j=j, k=k, vertexcolor=colour,
                              lighting=dict(ambient=0.7, diffuse=0.4), flatshading=False))
    camera = dict(eye=dict(x=0.6, y=0.3, z=1.6), up=dict(x=0, y=1, z=0))
    fig.update_layout(width=size, height=size, margin=dict(l=0, r=0, t=0, b=0),
                      scene=dict(aspectmode="data", xaxis_visible=False, yaxis_visible=False,
                                 zaxis_visible=False, camera=camera))
    return fig


def save_textured_obj(folder: str | Path, depth: Tensor, albedo: Tensor,
                      renderer: Renderer | None = None) -> Path:
    """Write ``folder/mesh.obj``, ``mesh.mtl`` and the albedo texture ``albedo.png``
    (:func:`textured_mesh`); returns the OBJ's path."""
    from trimesh.exchange.obj import export_obj

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text, files = export_obj(textured_mesh(depth, albedo, renderer), include_normals=False,
                             return_texture=True, mtl_name="mesh.mtl")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "mesh.obj").write_text(text)
    return folder / "mesh.obj"


def save_glb(path: str | Path, depth: Tensor, albedo: Tensor,
             renderer: Renderer | None = None) -> Path:
    """Write the textured mesh (:func:`textured_mesh`) as one binary glTF file."""
    path = Path(path)
    path.write_bytes(textured_mesh(depth, albedo, renderer).export(file_type="glb"))
    return path


def save_edits(rec, out: str | Path, G=None, frames: int = 15) -> dict[str, Path]:
    """Chapter 8's files for a reconstruction (module docstring); the GAN-route GIF only
    when the generator ``G`` is given."""
    from . import edit

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(rec.depth.shape[-1])
    paths = {"textured": save_textured_obj(out / "textured", rec.depth_canon, rec.albedo,
                                           renderer),
             "glb": save_glb(out / "mesh.glb", rec.depth_canon, rec.albedo, renderer)}
    with torch.no_grad():
        paths["grid"] = _png_grid(edit.pitch_yaw_grid(rec), out / "grid.png")
        paths["relight"] = _png_grid(edit.relight_strip(rec)[None], out / "relight.png")
        paths["gif_mesh"] = save_gif(edit.yaw_frames(rec, frames), out / "rotation_mesh.gif")
        if G is not None:
            paths["gif_gan"] = save_gif(edit.yaw_frames(rec, frames, route="gan", G=G),
                                        out / "rotation_gan.gif")
    return paths


def save_reconstruction(rec, out: str | Path, frames: int = 15, edits: bool = False,
                        G=None, nets: bool = False) -> dict[str, Path]:
    """Write the files listed in the module docstring for a
    :class:`~g2s_lite.method.Reconstruction` (with ``edits``, Chapter 8's too:
    :func:`save_edits`; with ``nets``, the nets and the encoder in ``factors.pt``); returns
    their paths by name."""
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
    paths["tensors"] = save_factors(rec, out / "factors.pt", nets)
    if edits:
        paths.update(save_edits(rec, out, G, frames))
    return paths


# ----------------------------------------------------------------------------- back from disk
def save_factors(rec, path: str | Path, nets: bool = True, **meta) -> Path:
    """Write a :class:`~g2s_lite.method.Reconstruction` as one file, atomically, that
    :func:`load_reconstruction` reads back: the tensors of :data:`SAVED` (each under its
    name), ``"gan_crop"``, ``"crop"`` (when it was cut from a photo), ``"timings"``,
    ``meta`` and, with ``nets``, its ``"nets"`` (:meth:`~g2s_lite.nets.Nets.save`) and
    ``"encoder"`` (the latent-offset encoder of the last step 2, with what rebuilds it:
    what the GAN route of an edit needs)."""
    blob = {k: getattr(rec, k).detach().cpu() for k in SAVED}
    blob.update(gan_crop=float(rec.gan_crop), timings=dict(rec.timings), meta=meta)
    if rec.crop is not None:
        blob["crop"] = torch.tensor(rec.crop)
    if nets and rec.encoder is not None:
        blob["encoder"] = _encoder_state(rec.encoder)
    if nets and rec.nets is not None:
        return rec.nets.save(path, **blob)
    return save_file(blob, path)


def load_reconstruction(path: str | Path, G=None, preset="synface64"):
    """A :class:`~g2s_lite.method.Reconstruction` (without its stages) back from
    :func:`save_factors`' file, or from the ``factors.pt`` in the folder ``path``.

    Its latent-offset encoder, which the GAN route of an edit needs, is rebuilt for the
    generator ``G`` (and left out without it). Files written before reconstructions had one
    format load too: the factors of an older ``factors.pt`` (no nets, no encoder), and a face
    kept by an older ``python -m g2s_lite.edit keep`` (``{"factors", "nets", "encoder",
    …}``); for those, ``preset`` says what they do not (its GAN crop, and for the kept
    faces its nets' size and width and its encoder's; a name or a
    :class:`~g2s_lite.paper.Preset`)."""
    from .method import Reconstruction
    from .paper import get_preset

    path = Path(path)
    path = path / "factors.pt" if path.is_dir() else path
    device = "cpu" if G is None else G.device
    blob = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(blob, dict) or not ("factors" in blob or set(SAVED) <= set(blob)):
        raise ValueError(f"{path} holds no reconstruction: give a factors.pt (python -m "
                         "g2s_lite reconstruct) or a file written by export.save_factors")
    preset = get_preset(preset)
    if "factors" in blob:  # a face kept before reconstructions had one format
        blob = _from_old_kept(blob, preset, G)
    crop = blob.get("crop")
    encoder = blob.get("encoder")
    return Reconstruction(
        **{k: blob[k] for k in SAVED}, stages=[], timings=blob.get("timings", {}),
        nets=load_nets(blob["nets"], device) if "nets" in blob else None,
        encoder=(None if G is None or encoder is None
                 else _encoder_from_state(encoder, G, blob["image"].shape[-1])),
        crop=None if crop is None else [int(v) for v in crop.tolist()],
        gan_crop=blob.get("gan_crop", preset.gan_crop))


def _encoder_state(encoder) -> dict:
    """A latent-offset encoder as a dict that rebuilds it (:func:`_encoder_from_state`):
    ``layout`` (the book's or the released one), ``start`` (the mapping module where its
    offsets enter), ``nf`` (its first width), ``relative`` and its ``state``."""
    from .nets import LatentEncoder

    first = next(m for m in encoder.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    return {"layout": "book" if isinstance(encoder.encoder, LatentEncoder) else "released",
            "start": encoder.start, "nf": first.out_channels, "relative": encoder.relative,
            "state": encoder.state_dict()}


def _encoder_from_state(state: dict, G, image_size: int):
    """The latent-offset encoder of :func:`_encoder_state`'s dict, for ``G``."""
    from .invert import LatentOffsetEncoder
    from .released import offset_encoder, paper_encoder

    if state["layout"] == "released":  # its F1_d counts the pixel norm (released.py)
        encoder = offset_encoder(paper_encoder(image_size, G.style_dim), G,
                                 G.n_mlp - state["start"], state["relative"])
    else:
        encoder = LatentOffsetEncoder(G, len(G.style) - state["start"], state["nf"],
                                      state["relative"], image_size)
    encoder.load_state_dict(state["state"])
    return encoder.to(G.device)


def _from_old_kept(blob: dict, preset, G) -> dict:
    """A face kept before reconstructions had one format, in :func:`save_factors`' layout:
    its nets and encoder were ``preset``'s (the encoder of its last step 2), and its GAN
    crop, which it did not keep, the preset's."""
    from .invert import offset_start

    size, config = preset.image_size, preset.step2[-1]
    out = {**blob["factors"], "timings": blob.get("timings", {}), "gan_crop": preset.gan_crop,
           "nets": {"image_size": size, "nf": preset.nf, "layout": "book",
                    "state": blob["nets"]}}
    if G is not None:
        out["encoder"] = {"layout": "book", "start": offset_start(G, config.f1_d),
                          "nf": config.nf, "relative": config.relative,
                          "state": blob["encoder"]}
    return out
