"""3D-aware editing — Chapter 8 (work in progress: the kept reconstructions first)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

#: The factors a kept reconstruction holds (with ``w`` and the nets' and encoder's weights).
KEPT_FACTORS = ("image", "depth", "valid", "normal", "depth_canon", "albedo", "shading",
                "view", "light", "reconstruction", "w")


def keep(rec, path: str | Path, **meta) -> Path:
    """Write what an edit needs of a :class:`~g2s_lite.method.Reconstruction` (its factors,
    ``w``, the four nets' and the encoder's weights) to ``path``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"factors": {k: getattr(rec, k).detach().cpu() for k in KEPT_FACTORS},
             "nets": {k: getattr(rec.nets, k).state_dict()
                      for k in ("depth", "albedo", "view", "light")},
             "encoder": rec.encoder.state_dict(), "timings": rec.timings, "meta": meta}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_kept(path: str | Path, G, preset="synface64"):
    """A :class:`~g2s_lite.method.Reconstruction` back from :func:`keep`'s file (no stages)."""
    from .invert import make_encoder
    from .method import Reconstruction
    from .nets import Nets
    from .paper import get_preset
    from .prior import starting_prior

    preset = get_preset(preset)
    state = torch.load(path, map_location=G.device, weights_only=False)
    nets = Nets.create(preset.image_size, preset.nf, 0, G.device, prior=starting_prior(preset))
    for k, sd in state["nets"].items():
        getattr(nets, k).load_state_dict(sd)
    encoder = make_encoder(G, preset.step2[-1], preset.image_size, G.device)
    encoder.load_state_dict(state["encoder"])
    f = {k: v.to(G.device) for k, v in state["factors"].items()}
    return Reconstruction(**f, nets=nets, encoder=encoder, stages=[],
                          timings=state["timings"])


def reconstruct_test_faces(n: int, keep_dir: str | Path, preset: str = "synface64",
                           first: int = 0, quick: bool = False, progress: bool = False,
                           log=print) -> None:
    """Reconstruct test faces ``first … n−1`` of the SynFace benchmark exactly as its
    ``g2s_sym`` row does (same w, seed and perceptual loss), keeping each in
    ``keep_dir/face_NNN.pt``; faces already kept are skipped (resumable)."""
    from . import hub
    from .benchmark import BENCHMARK_SEED
    from .invert import project
    from .losses import PerceptualLoss
    from .method import reconstruct
    from .paper import get_preset
    from .synth import SynFaces

    the_preset = get_preset(preset, quick=quick)
    G, D = hub.load("synface64", device="cpu")
    G.mean_latent()
    faces = SynFaces(the_preset.image_size).sample(n, seed=BENCHMARK_SEED)
    perceptual = PerceptualLoss("auto")
    for i in range(first, n):
        path = Path(keep_dir) / f"face_{i:03d}.pt"
        if path.exists():
            continue
        t0 = time.perf_counter()
        image = faces["image"][i:i + 1]
        w, _ = project(image, G, D, the_preset.project, progress=False)
        rec = reconstruct(image, G, D, w=w, preset=the_preset, progress=progress, seed=i,
                          perceptual=perceptual)
        keep(rec, path, index=i, seed=BENCHMARK_SEED, preset=the_preset.name)
        log(f"face {i}: kept in {path} after {time.perf_counter() - t0:.0f} s "
            f"(view {[round(v, 3) for v in rec.view[0].tolist()[:3]]}, "
            f"true {[round(v, 3) for v in faces['view'][i].tolist()[:3]]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m g2s_lite.edit")
    sub = parser.add_subparsers(dest="what", required=True)
    k = sub.add_parser("keep", help="reconstruct benchmark test faces and keep them")
    k.add_argument("--n", type=int, default=20)
    k.add_argument("--first", type=int, default=0)
    k.add_argument("--keep", type=Path, required=True)
    k.add_argument("--preset", default="synface64")
    k.add_argument("--quick", action="store_true")
    k.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reconstruct_test_faces(args.n, args.keep, args.preset, args.first, args.quick,
                           log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
