"""Command line: ``python -m g2s_lite reconstruct IMAGE --out DIR`` (Chapter 6)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from .paper import PRESETS
    from .runtime import quick_mode

    parser = argparse.ArgumentParser(
        prog="python -m g2s_lite",
        description="GAN2Shape with the g2s-lite package: recover the 3D shape of an image "
                    "with a 2D GAN.")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser(
        "reconstruct", help="reconstruct the 3D shape of one image",
        description="Project IMAGE onto the GAN (unless --latent is given), run the preset's "
                    "stages (prior → step 1 → step 2 → step 3) and write depth.png, "
                    "normal.png, albedo.png, shading.png, input.png, reconstruction.png, "
                    "mesh.obj, rotation.gif and factors.pt into --out (with --edits also the "
                    "textured mesh as OBJ+MTL+PNG and GLB, the pitch×yaw grid, the "
                    "relighting strip and the mesh- and GAN-route rotation GIFs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rec.add_argument("image", type=Path,
                     help="an image file (PNG, JPEG, …); grey and RGBA images become RGB "
                          "(RGBA on white). For faces and cats the face is found and cropped "
                          "the way the GAN's training images were (--no-detect: the centre "
                          "square); the square is resized to the preset's size")
    rec.add_argument("--out", type=Path, required=True, help="folder for the results")
    rec.add_argument("--weights", default="synface64",
                     help="named GAN weights from g2s_lite.hub (synface64 ships with the "
                          "package; the paper's celeba128, synface128, cat256, church256 and "
                          "car512 are downloaded on demand) or a StyleGAN2 checkpoint file")
    rec.add_argument("--latent", type=Path, default=None,
                     help="a .pt file holding the image's latent w (1×style_dim or "
                          "1×n_latent×style_dim); skips the projection")
    rec.add_argument("--preset", default=None, choices=sorted(PRESETS),
                     help="schedules and loss weights (g2s_lite.paper); default: the preset "
                          "of the weights' released configuration")
    rec.add_argument("--pretrained", type=Path, default=None, metavar="FILE.pt",
                     help="start A, V, L and the latent encoder from nets pretrained on GAN "
                          "samples (python -m g2s_lite.pretrain; D still starts at the "
                          "prior), as the paper's synthetic-face run does")
    rec.add_argument("--released", default=None, metavar="NAME_OR_FILE",
                     help="start D, A, V, L and the latent encoder from the paper's released "
                          "nets (celeba_pretrain, cat_pretrain, synface_pretrain: downloaded; "
                          "or the .pth file); with a hub name, the pseudo samples' views are "
                          "drawn from its released view distribution, as the paper's are")
    rec.add_argument("--no-detect", action="store_true",
                     help="do not look for a face: use the centre square of the photo")
    rec.add_argument("--mask", type=Path, default=None,
                     help="an image of the photo's size, white on the object: places the "
                          "prior on it and, for cars and churches, keeps the pseudo samples "
                          "to it, as the paper's parsing masks do; 'auto' finds a car or a "
                          "cat with torchvision's DeepLabV3 (its weights are a download: "
                          "Colab, or G2S_ALLOW_DOWNLOADS=1)")
    rec.add_argument("--quick", action=argparse.BooleanOptionalAction, default=quick_mode(),
                     help="divide every schedule by ten, a preview (the default when "
                          "G2S_QUICK=1)")
    rec.add_argument("--seed", type=int, default=0, help="seeds every network and draw")
    rec.add_argument("--device", default=None,
                     help="torch device (default: cuda when available, else cpu)")
    rec.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    rec.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    rec.add_argument("--edits", action="store_true",
                     help="also write Chapter 8's edits: textured/mesh.obj (+ mesh.mtl, "
                          "albedo.png), mesh.glb, grid.png, relight.png, rotation_mesh.gif "
                          "and rotation_gan.gif")
    rec.add_argument("--save-nets", action="store_true",
                     help="also keep the nets and the latent-offset encoder in factors.pt, so "
                          "that export.load_reconstruction(OUT, G) can edit it on the GAN "
                          "route later (about 20 MB at 64 px, 215 MB at 128 px)")
    return parser


class _Refused(Exception):
    """A bad input: its message becomes the one line ``error: …``."""


def _check_inputs(args) -> None:
    """Every input that can be checked before any work, so that a mistake costs nothing."""
    from . import hub
    from .images import open_rgb

    if args.out.exists() and not args.out.is_dir():
        raise _Refused(f"--out {args.out} is a file; give a folder (it is created if missing)")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _Refused(f"cannot create the folder --out {args.out} ({err.strerror})")
    try:
        open_rgb(args.image)
    except (OSError, ValueError) as err:
        raise _Refused(str(err))
    weights = str(args.weights)
    if weights not in hub.REGISTRY and not Path(weights).is_file():
        gans = ", ".join(k for k, e in hub.REGISTRY.items() if e.kind == "stylegan2")
        raise _Refused(f"unknown --weights {weights!r}: give one of {gans}, or a StyleGAN2 "
                       "checkpoint file")
    if weights in hub.REGISTRY and hub.REGISTRY[weights].kind != "stylegan2":
        raise _Refused(f"--weights {weights!r} is not a GAN ({hub.REGISTRY[weights].description})"
                       f"; pass it as --released")
    for option in ("latent", "pretrained", "mask"):
        path = getattr(args, option)
        if option == "mask" and str(path) == "auto":
            continue
        if path is not None and not path.is_file():
            raise _Refused(f"--{option} {path}: no such file")
    if (args.released is not None and args.released not in hub.REGISTRY
            and not Path(args.released).is_file()):
        raise _Refused(f"--released {args.released!r}: no such file or hub name (the paper's: "
                       "celeba_pretrain, cat_pretrain, synface_pretrain)")
    if args.released is not None and args.pretrained is not None:
        raise _Refused("give --pretrained or --released, not both")


def _object_mask(path: Path, photo, preset, device):
    """The object's mask ``1×1×S×S``: a mask file cut like the photo, or with ``auto`` the
    parsing net's (:mod:`g2s_lite.parsing`)."""
    from . import hub, parsing
    from .runtime import downloads_allowed

    try:
        if str(path) != "auto":
            return parsing.read_mask(path, photo.crop, preset.image_size,
                                     photo_size=photo.photo.size)
        return parsing.foreground_mask(photo.image.to(device), preset.category,
                                       downloads=downloads_allowed())
    except (OSError, ValueError, hub.WeightsUnavailable) as err:
        raise _Refused(f"--mask {path}: {err}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _reconstruct(args)
    except _Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _reconstruct(args) -> int:
    import torch

    from . import hub
    from .export import save_reconstruction
    from .invert import FramedGAN, project
    from .losses import PerceptualLoss
    from .method import reconstruct
    from .paper import get_preset
    from .photos import CASCADES, prepare, projection_error, reach, reach_warning
    from .runtime import downloads_allowed, pick_device, weights_cache

    _check_inputs(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    weights = str(args.weights)
    preset_name = args.preset or (hub.preset_of(weights) if weights in hub.REGISTRY
                                  else "face128")
    preset = get_preset(preset_name, quick=args.quick)
    try:
        photo = prepare(args.image, preset.image_size, preset.category,
                        detect_face=not args.no_detect)
    except ImportError as err:
        raise _Refused(str(err))
    image = photo.image.to(device)
    where = (f"face found at {photo.face}" if photo.face is not None
             else "no face looked for" if args.no_detect or preset.category not in CASCADES
             else "no face found")
    print(f"{args.image}: {where}; crop {photo.crop} of {photo.photo.size[0]}×"
          f"{photo.photo.size[1]} px")
    nets = encoder = mask = None
    if args.mask is not None:  # a bad mask is refused before the GAN is loaded
        mask = _object_mask(args.mask, photo, preset, device)
    try:
        G, D = hub.load(weights, device=device, progress=not args.no_progress,
                        cache=weights_cache())
    except (hub.WeightsUnavailable, ValueError, OSError) as err:
        raise _Refused(f"--weights {weights}: {err}")
    w = None
    if args.latent is not None:
        w = torch.load(args.latent, map_location=device, weights_only=True)
        if isinstance(w, dict):
            w = w.get("w", w.get("latent"))
        if not isinstance(w, torch.Tensor) or w.shape[-1] != G.style_dim:
            raise _Refused(f"{args.latent} must hold a tensor w ending in style_dim="
                           f"{G.style_dim}")
        w = w.reshape(1, *w.shape[-2:]) if w.dim() == 3 else w.reshape(1, -1)
    if args.pretrained is not None:
        from .pretrain import Pretrained
        from .prior import box_from_mask, starting_prior

        prior = None if mask is None else starting_prior(preset, box=box_from_mask(mask))
        try:
            start = Pretrained.load(args.pretrained, G, device)
            nets, encoder = start.starting_nets(preset, args.seed, prior), start.encoder
        except (OSError, ValueError) as err:
            raise _Refused(str(err))
    if args.released is not None:
        name = str(args.released)
        mvn = {k: f"{name.removesuffix('_pretrain')}_{k}_mvn" for k in ("view", "light")}
        mvn = {k: v if v in hub.REGISTRY else None for k, v in mvn.items()}
        try:
            nets, encoder = hub.load_gan2shape_nets(
                name, preset.image_size, mvn["view"], mvn["light"], G=G,
                f1_d=preset.step2[0].f1_d, relative=preset.step2[0].relative, device=device,
                cache=weights_cache())
            if mvn["view"] is not None:  # pseudo samples' views as the paper draws them
                preset = preset.with_views(hub.read_views(mvn["view"], preset.view_scale,
                                                          cache=weights_cache()))
        except (hub.WeightsUnavailable, ValueError, OSError) as err:
            raise _Refused(f"--released {name}: {err}")
    print(f"reconstructing {args.image} with {weights} on {device}, preset {preset.name}")
    if w is None:
        gan = FramedGAN(G, preset.gan_crop)
        w, projected = project(image, gan, D, preset.project, progress=not args.no_progress,
                               seed=args.seed)
        error = float(projection_error(image, projected)[0])
        own = reach(gan, D, preset.project, seed=args.seed)
        warning = reach_warning(error, own, weights, preset.category)
        print(warning or f"projection error {error:.3f} (the GAN's own samples: up to "
                         f"{float(own.max()):.3f}): within reach",
              file=sys.stderr if warning else sys.stdout)
    rec = reconstruct(image, G, D, w=w, preset=preset, progress=not args.no_progress,
                      seed=args.seed, nets=nets, encoder=encoder,
                      perceptual=PerceptualLoss("auto", downloads=downloads_allowed()),
                      crop=photo.crop, mask=mask)
    paths = save_reconstruction(rec, args.out, edits=args.edits, G=G, nets=args.save_nets)
    print(f"done in {rec.timings['total']:.1f} s; wrote " +
          ", ".join(str(p.relative_to(args.out)) for p in paths.values()) + f" to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
