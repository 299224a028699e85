"""Timings: how *long* things take (how *accurate* they are: :mod:`~g2s_lite.benchmark`).

The book's building blocks timed, in milliseconds and seconds, by ``python -m g2s_lite.bench``
(``python -m g2s_lite.benchmark``, a different command, measures the method's accuracy on
held-out SynFaces).

``python -m g2s_lite.bench render`` prints forward+backward milliseconds of Φ;
``python -m g2s_lite.bench reconstruct`` the seconds of the whole method on one SynFace
(each part: projection, steps 1–3), with the preset's full schedule or, under
``G2S_QUICK=1`` / ``--quick``, the quick one — with ``--layout-of celeba128`` (or another
released GAN) on a GAN and networks of that model's exact layout with random weights, since
the cost does not depend on the weights and nothing is then downloaded;
``python -m g2s_lite.bench batch`` the images per hour of
:func:`~g2s_lite.method.reconstruct_batch` at several batch sizes;
``python -m g2s_lite.bench profile`` where a reconstruction's time goes: seconds per step,
per part of the method (G, D, the renderer, the nets, …, forward and backward) and per
operation, under ``torch.profiler``.

With ``--json FILE`` each also writes its figures into a timings file (:func:`write_timings`):
``results/timings_gpu.json``, which Chapter 9 reads, is made so::

    python -m g2s_lite.bench reconstruct --preset synface64 --quick --device cuda \\
        --json results/timings_gpu.json

Timings live here and print figures; the tests check what is written, never the figures.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from .paper import MAX_DEPTH, MIN_DEPTH
from .render import Renderer
from .runtime import device_name, pick_device, quick_mode


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
        G, D = hub.load(hub.BOOK_GAN, device=device)
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
    G, D = hub.load(hub.BOOK_GAN, device=device)
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


# ----------------------------------------------------------------------------- profile
#: The parts a reconstruction's time is split into: each part's callables (``Class.method``
#: or a function, in a ``g2s_lite`` module) carry its label while they run, and the backward
#: of what they computed counts for the part too. The labels exist only while profiling:
#: the library itself pays nothing for them.
PROFILE_PARTS = {
    "G": ("gan", ("Generator.synthesis", "Generator.mapping")),
    "D": ("gan", ("Discriminator.forward", "Discriminator.features")),
    "renderer": ("render", ("Renderer.render", "Renderer.warp_depth", "Renderer.warp_image",
                            "Renderer.unwarp_image", "Renderer.normals", "Renderer.shading",
                            "Renderer.diffuse")),
    "nets D/A/V/L": ("nets", ("DepthNet.forward", "AlbedoNet.forward", "ViewNet.forward",
                              "LightNet.forward")),
    "offset encoder": ("nets", ("LatentEncoder.forward",)),
    "losses": ("losses", ("PerceptualLoss.forward", "photometric_l1", "smoothness",
                          "feature_l1")),
}
_LABEL = "part: "  # what a part's ranges are called in the profiler's events
_BACKWARD = "autograd::engine::evaluate_function: "
_OPTIMIZER = "Optimizer."  # torch labels its optimisers' step and zero_grad itself


def _label(fn, label: str):
    def labelled(*args, **kwargs):
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)
    labelled.__wrapped__ = fn
    return labelled


@contextmanager
def labelled_parts(parts=PROFILE_PARTS):
    """Within the block each part's callables run inside a profiler range ``part: <name>``.

    Methods are replaced on their class; functions in every module of this package that
    holds them (modules import them by name). Everything is put back afterwards."""
    undo = []
    for part, (module_name, names) in parts.items():
        module = importlib.import_module(f".{module_name}", __package__)
        for name in names:
            owner_name, _, attr = name.rpartition(".")
            if owner_name:
                owners = [getattr(module, owner_name)]
                original = vars(owners[0])[attr]
            else:
                original = getattr(module, attr)
                owners = [m for key, m in list(sys.modules.items())
                          if key.split(".")[0] == __package__ and m is not None]
            wrapped = _label(original, _LABEL + part)
            for owner in owners:
                for key, value in list(vars(owner).items()):
                    if value is original:
                        setattr(owner, key, wrapped)
                        undo.append((owner, key, original))
    try:
        yield
    finally:
        for owner, key, original in reversed(undo):
            setattr(owner, key, original)


def split_by_part(events) -> dict[str, float]:
    """Seconds of own CPU time per part, from a profiler's event tree.

    An operation counts for the nearest labelled range around it; a backward operation
    counts for the part whose forward operation created it (their autograd sequence numbers
    match); the optimisers' steps are the part "optimizer". What no part claims is "other
    forward" or "other backward" (gradient accumulation into ``.grad`` among it)."""
    part_of: dict[int, str] = {}
    made_by: dict[tuple[int, int], str] = {}  # (thread, sequence number) → forward part
    seconds: dict[str, float] = defaultdict(float)
    for e in events:  # sorted by start time: a parent comes before its children
        parent = e.cpu_parent
        if e.name.startswith(_LABEL):
            part = e.name[len(_LABEL):] + " forward"
        elif e.name.startswith(_BACKWARD):
            made = made_by.get((e.fwd_thread, e.sequence_nr))
            part = (made.removesuffix(" forward") if made else "other") + " backward"
        elif e.name.startswith(_OPTIMIZER):
            part = "optimizer"
        elif parent is not None:
            part = part_of[parent.id]
        else:
            part = "other forward"
        part_of[e.id] = part
        if e.sequence_nr >= 0 and part.endswith(" forward"):
            made_by.setdefault((e.thread, e.sequence_nr), part)
        seconds[part] += e.self_cpu_time_total / 1e6
    return dict(seconds)


def profile_reconstruct(preset="synface64", quick: bool = True, threads: int | None = 1,
                        seed: int = 2024, top: int = 15) -> dict:
    """One reconstruction of a SynFace (seed ``seed``) on the CPU under ``torch.profiler``.

    Returns a dict (what ``--json`` writes): ``steps``, the reconstruction's own seconds per
    step; ``wall``, the seconds of the whole profiled call; ``parts``, those seconds split by
    part (:data:`PROFILE_PARTS`, forward and backward, the optimiser, other operations, and
    "python" for the time no operation took: the interpreter, the profiler's own cost),
    summing to ``wall``; ``top_ops``, the operations with the most own time; ``profiled``,
    the schedule the parts and operations come from.

    The full schedule's profile holds millions of events, which the profiler takes longer to
    sort than the reconstruction takes to run; its steps do the same work per iteration as
    the quick schedule's, only more often. So with ``quick=False`` the steps' seconds are
    those of an unprofiled full run, and the parts and operations those of the quick one.
    """
    from torch.profiler import ProfilerActivity, profile

    from . import hub
    from .method import reconstruct
    from .paper import get_preset
    from .synth import SynFaces

    G, D = hub.load(hub.BOOK_GAN)
    G.mean_latent()
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)

    def run(schedule_quick: bool):
        the_preset = get_preset(preset, schedule_quick)
        image = SynFaces(the_preset.image_size).sample(1, seed=seed)["image"]
        start = time.perf_counter()
        rec = reconstruct(image, G, D, preset=the_preset, progress=False, seed=0)
        return the_preset, rec, time.perf_counter() - start

    try:
        steps = None if quick else dict(run(False)[1].timings)
        with labelled_parts(), profile(activities=[ProfilerActivity.CPU]) as prof:
            the_preset, rec, wall = run(True)
    finally:
        torch.set_num_threads(before)
    events = prof.events()
    parts = split_by_part(events)
    parts["python"] = wall - sum(parts.values())
    ops = sorted((a for a in prof.key_averages() if not a.key.startswith(_LABEL)),
                 key=lambda a: -a.self_cpu_time_total)[:top]
    return {"preset": get_preset(preset, quick).name,
            "threads": threads or before, "torch": torch.__version__,
            "steps": steps or dict(rec.timings), "profiled": the_preset.name, "wall": wall,
            "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
            "top_ops": [{"name": a.key, "seconds": a.self_cpu_time_total / 1e6,
                         "calls": a.count} for a in ops]}


def print_profile(p: dict) -> None:
    """The three tables of :func:`profile_reconstruct`'s result."""
    print(f"profile of reconstruct, preset {p['preset']}, CPU, {p['threads']} thread(s), "
          f"torch {p['torch']} (times include the profiler's own cost)")
    print(f"seconds per step ({p['preset']}, unprofiled where the schedule is full):")
    for step, seconds in p["steps"].items():
        print(f"  {step:24s} {seconds:8.2f}")
    print(f"seconds by part, profiled on {p['profiled']} (of {p['wall']:.2f} s for the "
          "whole call):")
    for part, seconds in p["parts"].items():
        print(f"  {part:24s} {seconds:8.2f}  {100 * seconds / p['wall']:5.1f} %")
    print("top operations by own time:")
    for op in p["top_ops"]:
        print(f"  {op['name'][:60]:60s} {op['seconds']:8.2f} s {op['calls']:8d} calls")


# ----------------------------------------------------------------------------- the timings file
#: What an entry of each section of a timings file is keyed by: a new entry takes the place
#: of the one with the same key (its figures per size merged in), or is added.
TIMING_KEYS = {"runs": ("layout", "preset", "quick", "device"),
               "render_ms": ("device", "batch"),
               "batch_images_per_hour": ("preset", "quick", "vectorize", "device")}
#: Said at the top of a new timings file.
TIMINGS_WHAT = ("Timings of g2s_lite: seconds per part of one reconstruction (runs), "
                "milliseconds of the renderer's forward+backward (render_ms), images per hour "
                "of reconstruct_batch (batch_images_per_hour)")
#: Where a timings file says which command writes it.
TIMINGS_WRITTEN_BY = ("python -m g2s_lite.bench render|reconstruct|batch … --json FILE: each "
                      "entry keeps the command that measured it")
SEVERAL = "several: each entry names its own"


def machine(device: str | torch.device) -> dict:
    """What a timing was measured on: the ``device``'s name, the CPU threads, torch's
    version and the date."""
    return {"device": device_name(device), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "date": datetime.date.today().isoformat()}


def _summarise(timings: dict) -> dict:
    """The file's own ``device``, ``torch`` and ``date`` (what Chapter 9 prints first), from
    its entries': the one they share (a device string that names it more fully is kept), or
    :data:`SEVERAL`; the latest date."""
    entries = [e for section in TIMING_KEYS for e in timings.get(section, [])]
    devices = {(e["device"], e["threads"]) for e in entries}
    if len(devices) == 1:
        (name, threads), = devices
        if not str(timings.get("device", "")).startswith(name):
            timings["device"] = f"{name}, {threads} CPU threads"
    else:
        timings["device"] = SEVERAL
    versions = {e["torch"] for e in entries}
    timings["torch"] = versions.pop() if len(versions) == 1 else SEVERAL
    timings["date"] = max(e["date"] for e in entries)
    return timings


def write_timings(path: str | Path, section: str, entry: dict) -> dict:
    """Put ``entry`` (with its :func:`machine` fields and ``command``) into ``section`` of the
    timings file ``path`` (made when missing), in place of the entry with the same key
    (:data:`TIMING_KEYS`; figures per size of both are kept, the new ones winning); return
    the file's contents. The file is replaced whole, never half written."""
    path = Path(path)
    timings = (json.loads(path.read_text()) if path.exists() else
               {"what": TIMINGS_WHAT, "written_by": TIMINGS_WRITTEN_BY, "device": "",
                "torch": "", "date": "", "runs": [], "render_ms": [], "not_measured": "",
                "batch_images_per_hour": []})
    key = [entry[k] for k in TIMING_KEYS[section]]
    entries = timings.setdefault(section, [])
    for k, old in enumerate(entries):
        if [old.get(name) for name in TIMING_KEYS[section]] == key:
            entries[k] = {**old, **{name: {**old[name], **value}
                                    if isinstance(value, dict) and isinstance(old.get(name), dict)
                                    else value for name, value in entry.items()}}
            break
    else:
        entries.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(_summarise(timings), indent=1) + "\n")
    partial.replace(path)
    return timings


# ----------------------------------------------------------------------------- other GPUs
#: Peak FP32 arithmetic (TFLOP/s) and memory bandwidth (GB/s) of GPUs a reader may meet, from
#: their makers' datasheets (the data-centre parts in their SXM form; Colab's A100 is the
#: 40 GB one).
GPU_SPECS = {"H200": (67.0, 4800.0), "H100": (67.0, 3350.0), "A100": (19.5, 1555.0),
             "L4": (30.3, 300.0), "T4": (8.1, 320.0)}


def gpu_of(device: str) -> str:
    """The :data:`GPU_SPECS` name in a device's description.

    >>> gpu_of("NVIDIA H200 (driver 580.159.04), 16 CPU threads")
    'H200'
    """
    for name in GPU_SPECS:
        if name in device:
            return name
    raise ValueError(f"no GPU of {sorted(GPU_SPECS)} in {device!r}: add its peak FP32 "
                     "TFLOP/s and memory bandwidth to bench.GPU_SPECS")


def expected_seconds(seconds: float, measured: str, target: str) -> tuple[float, float]:
    """What a run that took ``seconds`` on the GPU ``measured`` may take on ``target`` (names
    of :data:`GPU_SPECS`), an estimate from their specifications alone: ``(launch-bound,
    device-bound)``.

    Device-bound: the time scaled by the larger of the two ratios, peak arithmetic and memory
    bandwidth, as a run whose GPU was busy all along would be. Launch-bound: the time as it
    is, as a run of small networks, whose GPU mostly waits for the host to launch the next
    kernel, would be on any GPU. A real run lies between the two (a slower host CPU, as
    Colab's, adds to both).

    >>> expected_seconds(100.0, "H200", "H200")
    (100.0, 100.0)
    >>> round(expected_seconds(100.0, "H100", "A100")[1], 1)  # arithmetic: the larger gap
    343.6
    """
    (flops_m, bw_m), (flops_t, bw_t) = GPU_SPECS[measured], GPU_SPECS[target]
    scale = max(flops_m / flops_t, bw_m / bw_t, 1.0)
    return seconds, seconds * scale


def full_run(timings: dict, preset: str = "face128") -> dict:
    """The entry of a timings file's full-schedule ``preset`` run."""
    for run in timings["runs"]:
        if run["preset"] == preset and not run["quick"]:
            return run
    raise ValueError(f"the timings file holds no full {preset} run: time one with python -m "
                     f"g2s_lite.bench reconstruct --preset {preset} --no-quick --json FILE")


def gpu_estimates(timings: dict, preset: str = "face128", targets=("T4", "L4", "A100")
                  ) -> dict[str, tuple[float, float]]:
    """:func:`expected_seconds` of the full ``preset`` run of a timings file on each GPU of
    ``targets``."""
    run = full_run(timings, preset)
    measured = gpu_of(run["device"])
    return {t: expected_seconds(run["seconds"]["total"], measured, t) for t in targets}


# ----------------------------------------------------------------------------- command line
def _render(args: argparse.Namespace, command: str) -> None:
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(f"render forward+backward, batch {args.batch}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    for device in devices:
        name = machine(device)["device"]
        median, least = {}, {}
        for size in args.sizes:
            t = time_render(size, args.batch, device, args.repeats)
            median[str(size)], least[str(size)] = round(t["median_ms"], 2), round(t["min_ms"], 2)
            print(f"  {device:4s} ({name}) {size:4d}×{size:<4d} median {t['median_ms']:8.2f} ms"
                  f"   min {t['min_ms']:8.2f} ms")
        if args.json:
            write_timings(args.json, "render_ms", {
                "command": command, "batch": args.batch, **machine(device),
                "median": median, "min": least})


def _reconstruct(args: argparse.Namespace, command: str) -> None:
    device = str(pick_device(args.device))
    t = time_reconstruct(args.preset, args.quick, device, layout_of=args.layout_of)
    what = f", {args.layout_of}'s layout (random weights)" if args.layout_of else ""
    print(f"reconstruct, preset {args.preset}{' (quick)' if args.quick else ''}{what}, "
          f"{device} ({machine(device)['device']}), {torch.get_num_threads()} CPU threads, "
          f"torch {torch.__version__}")
    for part, seconds in t.items():
        print(f"  {part:8s} {seconds:7.1f} s")
    if args.json:
        gan = (f"{args.layout_of}'s layout (random weights)" if args.layout_of
               else "synface64 (bundled)")
        write_timings(args.json, "runs", {
            "preset": args.preset, "quick": args.quick, "gan": gan,
            "layout": args.layout_of or "synface64", "command": command, **machine(device),
            "seconds": {part: round(seconds, 1) for part, seconds in t.items()}})


def _batch(args: argparse.Namespace, command: str) -> None:
    device = str(pick_device(args.device))
    print(f"reconstruct_batch, preset {args.preset}{' (quick)' if args.quick else ''}, "
          f"{device} ({machine(device)['device']}), {torch.get_num_threads()} CPU threads, "
          f"torch {torch.__version__}")
    for k in args.sizes:  # each figure as soon as it is measured
        rate = time_batch([k], args.preset, args.quick, device, args.vectorize)[k]
        print(f"  batch {k:3d}  {rate:8.1f} images/hour", flush=True)
        if args.json:
            write_timings(args.json, "batch_images_per_hour", {
                "command": command, "preset": args.preset, "quick": args.quick,
                "vectorize": args.vectorize, **machine(device),
                "per_batch_size": {str(k): round(rate, 1)}})


def _profile(args: argparse.Namespace, command: str) -> None:
    p = profile_reconstruct(args.preset, args.quick, args.threads, args.seed, args.top)
    print_profile(p)
    if args.json:
        args.json.write_text(json.dumps({**p, "command": command}, indent=1) + "\n")


def _estimate(args: argparse.Namespace, command: str) -> None:
    from .results import committed

    timings = json.loads((args.timings or committed("timings_gpu.json")).read_text())
    run = full_run(timings, args.preset)
    print(f"full {args.preset}: {run['seconds']['total']:.1f} s measured on {run['device']}")
    for gpu, (low, high) in gpu_estimates(timings, args.preset, args.gpus).items():
        print(f"  {gpu:5s} expected {low / 60:5.1f} to {high / 60:5.1f} minutes (launch-bound to "
              "device-bound, from the specifications)")


def main(argv: list[str] | None = None) -> None:
    from .results import command_parser
    from .runtime import command_text

    prog = "python -m g2s_lite.bench"
    parser = command_parser(prog, "How long the book's building blocks take (timings); for "
                            "how accurate the method is, see python -m g2s_lite.benchmark.")
    sub = parser.add_subparsers(dest="what", required=True, parser_class=type(parser))
    p = sub.add_parser("render", help="forward+backward of the renderer Φ")
    p.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sizes")
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions (default 20)")
    p.add_argument("--device", action="append",
                   help="cpu and/or cuda (default: cpu, plus cuda when available)")
    q = sub.add_parser("reconstruct", help="the whole method on one SynFace, seconds per part")
    q.add_argument("--layout-of", default=None, metavar="GAN",
                   help="time a random-weight GAN and networks of this released model's "
                        "layout (e.g. celeba128 with --preset face128); nothing is downloaded")
    b = sub.add_parser("batch", help="images per hour, several images reconstructed at once")
    b.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16],
                   help="images at once (default 1 4 16)")
    b.add_argument("--vectorize", action=argparse.BooleanOptionalAction, default=None,
                   help="one vectorised call for the images' nets (default: on a GPU)")
    for one in (q, b):
        one.add_argument("--preset", default="synface64", help="preset (default synface64)")
        one.add_argument("--quick", action=argparse.BooleanOptionalAction, default=quick_mode(),
                         help="the quick schedule (the default when G2S_QUICK=1)")
        one.add_argument("--device", default=None,
                         help="cpu or cuda (default: cuda when available)")
    for one in (p, q, b):
        one.add_argument("--json", type=Path, default=None, metavar="FILE",
                         help="also write the figures into this timings file (made, or "
                              "updated in place of the entry timed alike), e.g. "
                              "results/timings_gpu.json")
    f = sub.add_parser("profile", help="where a reconstruction's time goes (torch.profiler)")
    f.add_argument("--preset", default="synface64", help="preset (default synface64)")
    f.add_argument("--quick", action=argparse.BooleanOptionalAction, default=quick_mode(),
                   help="the quick schedule (the default when G2S_QUICK=1)")
    f.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    f.add_argument("--seed", type=int, default=2024, help="which SynFace (default 2024)")
    f.add_argument("--top", type=int, default=15, help="operations listed (default 15)")
    f.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the figures (and the command) to this file")
    e = sub.add_parser("estimate", help="a full run's expected time on other GPUs, from the "
                       "measured one and their specifications")
    e.add_argument("--preset", default="face128", help="the measured run (default face128)")
    e.add_argument("--gpus", nargs="+", default=["T4", "L4", "A100"], choices=list(GPU_SPECS),
                   help="GPUs to estimate (default T4 L4 A100)")
    e.add_argument("--timings", type=Path, default=None, metavar="FILE",
                   help="timings file (default: the committed results/timings_gpu.json)")
    args = parser.parse_args(argv)
    run = {"render": _render, "reconstruct": _reconstruct, "batch": _batch,
           "profile": _profile, "estimate": _estimate}[args.what]
    try:
        run(args, command_text(prog, argv))
    except (ValueError, FileNotFoundError) as error:  # bad input: one line, exit code 2
        parser.error(str(error))


if __name__ == "__main__":
    main()
