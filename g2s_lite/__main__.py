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
                          "(RGBA on white), non-square ones are centre-cropped, and the "
                          "square is resized to the preset's size")
    rec.add_argument("--out", type=Path, required=True, help="folder for the results")
    rec.add_argument("--weights", default="synface64",
                     help="named GAN weights from g2s_lite.hub (synface64 ships with the "
                          "package; celeba128 and synface128 are downloaded on demand)")
    rec.add_argument("--latent", type=Path, default=None,
                     help="a .pt file holding the image's latent w (1×style_dim or "
                          "1×n_latent×style_dim); skips the projection")
    rec.add_argument("--preset", default="synface64", choices=sorted(PRESETS),
                     help="schedules and loss weights (g2s_lite.paper)")
    rec.add_argument("--pretrained", type=Path, default=None, metavar="FILE.pt",
                     help="start A, V, L and the latent encoder from nets pretrained on GAN "
                          "samples (python -m g2s_lite.pretrain; D still starts at the "
                          "prior), as the paper's synthetic-face run does")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import torch

    from . import hub
    from .export import save_reconstruction
    from .losses import PerceptualLoss
    from .method import reconstruct
    from .paper import get_preset
    from .runtime import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.image.is_file():
        print(f"error: no image file at {args.image}", file=sys.stderr)
        return 2
    device = pick_device(args.device)
    G, D = hub.load(args.weights, device=device)
    w = None
    if args.latent is not None:
        w = torch.load(args.latent, map_location=device, weights_only=True)
        if isinstance(w, dict):
            w = w.get("w", w.get("latent"))
        if not isinstance(w, torch.Tensor) or w.shape[-1] != G.style_dim:
            print(f"error: {args.latent} must hold a tensor w ending in style_dim="
                  f"{G.style_dim}", file=sys.stderr)
            return 2
        w = w.reshape(1, *w.shape[-2:]) if w.dim() == 3 else w.reshape(1, -1)
    preset = get_preset(args.preset, quick=args.quick)
    nets = encoder = None
    if args.pretrained is not None:
        from .pretrain import Pretrained
        try:
            start = Pretrained.load(args.pretrained, G, device)
            nets, encoder = start.starting_nets(preset, args.seed), start.encoder
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    print(f"reconstructing {args.image} with {args.weights} on {device}, preset {preset.name}")
    rec = reconstruct(args.image, G, D, w=w, preset=preset, progress=not args.no_progress,
                      seed=args.seed, nets=nets, encoder=encoder,
                      perceptual=PerceptualLoss("auto"))
    paths = save_reconstruction(rec, args.out, edits=args.edits, G=G)
    print(f"done in {rec.timings['total']:.1f} s; wrote " +
          ", ".join(str(p.relative_to(args.out)) for p in paths.values()) + f" to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
