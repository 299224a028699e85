"""Timings: ``python -m g2s_lite.bench render`` prints forward+backward milliseconds of Φ;
``python -m g2s_lite.bench reconstruct`` the seconds of the whole method on one SynFace
(each part: projection, steps 1–3), with the preset's full schedule or, under
``G2S_QUICK=1`` / ``--quick``, the quick one — with ``--layout-of celeba128`` (or another
released GAN) on a GAN and networks of that model's exact layout with random weights, since
the cost does not depend on the weights and nothing is then downloaded;
``python -m g2s_lite.bench batch`` the images per hour of
:func:`~g2s_lite.method.reconstruct_batch` at several batch sizes.

Timings live here and print figures; the tests never time anything.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from .paper import MAX_DEPTH, MIN_DEPTH
from .render import Renderer
from .runtime import quick_mode


def _wait(device: str | torch.device) -> None:
    """Let the GPU finish what was queued, so a clock reads the work and not its queueing."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _inputs(size: int, batch: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch, 1, 6, 6, generator=g).tanh() * 0.06 + 1.0
    depth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[:, 0]
    depth = depth.clamp(MIN_DEPTH, MAX_DEPTH)
    albedo = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    light = torch.tensor([0.4, 0.5, 0.2, 0.3]).repeat(batch, 1)
    view = torch.cat([(torch.rand(batch, 3, generator=g) * 2 - 1) * 0.5,
                      (torch.rand(batch, 3, generator=g) * 2 - 1) * 0.01], 1)
    return [t.to(device).requires_grad_() for t in (depth, albedo, light, view)]


def time_render(size: int, batch: int = 16, device: str = "cpu", repeats: int = 20,
                warmup: int = 3) -> dict[str, float]:
    """Median and minimum milliseconds of ``render`` forward + backward."""
    dev = torch.device(device)
    r = Renderer(size)
    inputs = _inputs(size, batch, dev)

    def step() -> None:
        image, _ = r.render(*inputs)
        image.square().mean().backward()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        _wait(dev)
        t0 = time.perf_counter()
        step()
        _wait(dev)
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def random_released(name: str, device: str = "cpu", seed: int = 0):
    """A GAN of the released model ``name``'s exact layout (size, widths, mapping) with random
    weights, ``(G, D)``: what a timing needs, without the download."""
    from . import hub
    from .gan import Discriminator, Generator, default_channels
    from .runtime import seeded

    entry = hub.REGISTRY[name]
    if entry.kind != "stylegan2" or entry.bundled:
        raise ValueError(f"{name!r} is not a released GAN; choose one of "
                         + ", ".join(k for k, e in hub.REGISTRY.items()
                                     if e.kind == "stylegan2" and not e.bundled))
    widths = default_channels(entry.channel_multiplier)
    with seeded(seed):
        G = Generator(entry.size, 512, 8, widths).eval().to(device)
        D = Discriminator(entry.size, widths).eval().to(device)
    return G, D


def time_reconstruct(preset: str = "synface64", quick: bool = False, device: str = "cpu",
                     seed: int = 2024, progress: bool = True,
                     layout_of: str | None = None) -> dict[str, float]:
    """Seconds per part of :func:`~g2s_lite.method.reconstruct` on one SynFace, or, with
    ``layout_of`` (a released GAN's name), on one of that random-weight GAN's own images
    with the paper-layout networks (:func:`random_released`)."""
    from . import hub
    from .method import reconstruct
    from .paper import get_preset
    from .synth import SynFaces

    the_preset = get_preset(preset, quick)
    nets = encoder = None
    if layout_of is None:
        G, D = hub.load("synface64", device=device)
        image = SynFaces(the_preset.image_size).sample(1, seed=seed)["image"]
    else:
        from .invert import FramedGAN
        from .released import offset_encoder, paper_encoder, paper_nets

        G, D = random_released(layout_of, device)
        with torch.no_grad():
            image = FramedGAN(G, the_preset.gan_crop).generate(
                G.mapping(torch.randn(1, 512, device=device)), the_preset.image_size)
        nets = paper_nets(the_preset.image_size)
        encoder = offset_encoder(paper_encoder(the_preset.image_size), G,
                                 the_preset.step2[0].f1_d, the_preset.step2[0].relative)
    G.mean_latent()
    _wait(device)
    rec = reconstruct(image, G, D, preset=the_preset, nets=nets, encoder=encoder,
                      progress=progress, seed=0)
    _wait(device)
    return rec.timings


def time_batch(sizes=(1, 4, 16), preset: str = "synface64", quick: bool = False,
               device: str = "cpu", vectorize: bool | None = None, seed: int = 2024
               ) -> dict[int, float]:
    """Images per hour of :func:`~g2s_lite.method.reconstruct_batch` with ``K`` images at
    once, for each ``K`` in ``sizes`` (steps 1–3 of every stage; the projection, one per
    image whatever the batch, is left out)."""
    from . import hub
    from .method import reconstruct_batch
    from .paper import get_preset
    from .synth import SynFaces

    the_preset = get_preset(preset, quick)
    G, D = hub.load("synface64", device=device)
    w = G.mean_latent()
    out = {}
    for k in sizes:
        faces = SynFaces(the_preset.image_size).sample(k, seed=seed)["image"]
        ws = w.reshape(1, -1).repeat(k, 1)  # the latent does not change the cost
        _wait(device)
        t0 = time.perf_counter()
        reconstruct_batch(faces, G, D, ws, the_preset, vectorize=vectorize)
        _wait(device)
        out[k] = 3600 * k / (time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m g2s_lite.bench",
                                     description="Print timings of the book's building blocks.")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("render", help="forward+backward of the renderer Φ")
    p.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sizes")
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions (default 20)")
    p.add_argument("--device", action="append",
                   help="cpu and/or cuda (default: cpu, plus cuda when available)")
    q = sub.add_parser("reconstruct", help="the whole method on one SynFace, seconds per part")
    q.add_argument("--preset", default="synface64", help="preset (default synface64)")
    q.add_argument("--quick", action=argparse.BooleanOptionalAction, default=quick_mode(),
                   help="the quick schedule (the default when G2S_QUICK=1)")
    q.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    q.add_argument("--layout-of", default=None, metavar="GAN",
                   help="time a random-weight GAN and networks of this released model's "
                        "layout (e.g. celeba128 with --preset face128); nothing is downloaded")
    b = sub.add_parser("batch", help="images per hour, several images reconstructed at once")
    b.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16],
                   help="images at once (default 1 4 16)")
    b.add_argument("--preset", default="synface64", help="preset (default synface64)")
    b.add_argument("--quick", action=argparse.BooleanOptionalAction, default=quick_mode(),
                   help="the quick schedule (the default when G2S_QUICK=1)")
    b.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    b.add_argument("--vectorize", action=argparse.BooleanOptionalAction, default=None,
                   help="one vectorised call for the images' nets (default: on a GPU)")
    args = parser.parse_args(argv)
    if args.what == "batch":
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        print(f"reconstruct_batch, preset {args.preset}{' (quick)' if args.quick else ''}, "
              f"{device} ({name}), {torch.get_num_threads()} CPU threads, "
              f"torch {torch.__version__}")
        for k in args.sizes:  # each figure as soon as it is measured
            rate = time_batch([k], args.preset, args.quick, device, args.vectorize)[k]
            print(f"  batch {k:3d}  {rate:8.1f} images/hour", flush=True)
        return
    if args.what == "reconstruct":
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        t = time_reconstruct(args.preset, args.quick, device, layout_of=args.layout_of)
        what = f", {args.layout_of}'s layout (random weights)" if args.layout_of else ""
        print(f"reconstruct, preset {args.preset}{' (quick)' if args.quick else ''}{what}, "
              f"{device} ({name}), {torch.get_num_threads()} CPU threads, "
              f"torch {torch.__version__}")
        for part, seconds in t.items():
            print(f"  {part:8s} {seconds:7.1f} s")
        return
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(f"render forward+backward, batch {args.batch}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    for device in devices:
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        for size in args.sizes:
            t = time_render(size, args.batch, device, args.repeats)
            print(f"  {device:4s} ({name}) {size:4d}×{size:<4d} median {t['median_ms']:8.2f} ms"
                  f"   min {t['min_ms']:8.2f} ms")


if __name__ == "__main__":
    main()
