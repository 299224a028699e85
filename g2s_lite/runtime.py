"""How a program runs: quick or paper-like mode, which device, seeding, timing, several
runs side by side, and several processes sharing one run (``torchrun``).

Quick mode is decided once, where a program starts: a chapter's first cell calls
:func:`quick_mode` (which reads ``G2S_QUICK``), a command line has ``--quick``, and the
choice is passed down as ``quick=``. Library functions never read the environment, so the
same call gives the same result on every machine. In quick mode every schedule length is
cut by :func:`g2s_lite.paper.quick_length`; nothing else changes.

The same holds for ``torchrun``: an entry point calls :func:`joined` (which reads the
launcher's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``) and passes the :class:`World` it gets
down as ``world=``; a plain run is :data:`SOLO`, one process of one. And for weights:
whether torchvision may download what the torch hub cache lacks (:func:`downloads_allowed`,
``G2S_ALLOW_DOWNLOADS``, passed down as ``downloads=``) and where the hub keeps what it
downloads (:func:`weights_cache`, ``G2S_CACHE``, passed down as ``cache=``).
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch

#: The environment variable an entry point reads to choose quick mode (CI and tests set it).
QUICK_ENV = "G2S_QUICK"

T = TypeVar("T")


def _switch(name: str) -> bool:
    """An environment switch: on unless unset, "", "0", "false" or "no"."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def quick_mode(device: torch.device | None = None) -> bool:
    """Whether to run quick: ``G2S_QUICK`` when it is set (quick unless "", "0", "false" or
    "no"); unset, quick where ``device`` is no GPU (a chapter opened on Colab's CPU runtime
    or a laptop) and the paper-like schedules on a GPU; unset and no device, the paper-like
    schedules (a command line's default).

    For entry points only (a notebook's first cell, a command line's default): pass the
    answer down as ``quick=``."""
    if os.environ.get(QUICK_ENV, "").strip() != "" or device is None:
        return _switch(QUICK_ENV)
    return torch.device(device).type != "cuda"


#: Set by the headless runs (``make test``, ``make book``, CI): no live widgets there.
HEADLESS_ENV = "G2S_HEADLESS"


def live_widgets() -> bool:
    """Whether a chapter shows its sliders: everywhere a person runs it (Jupyter, Colab; quick
    or full mode), but not where nobody watches (``G2S_HEADLESS`` set: the book build and the
    tests, where a kernel can stall on widget messages). Each slider has a static figure
    beside it for the HTML book.

    For entry points only (a notebook's cells)."""
    return not _switch(HEADLESS_ENV)


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when available (or ``prefer`` when given), else the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: str | torch.device) -> str:
    """The GPU's name for a CUDA device, else "CPU"."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def describe(device: torch.device, quick: bool) -> str:
    """One line a chapter prints first: mode (and how to switch it), device and versions."""
    mode = ("quick (schedules ÷ 10; QUICK = False for the paper's)" if quick
            else "full (the paper's schedules; QUICK = True for a quick run)")
    from . import __version__
    return (f"g2s_lite {__version__} | mode: {mode} | device: {device} ({device_name(device)}) "
            f"| torch {torch.__version__}")


def scaled(full: int, quick_value: int, quick: bool) -> int:
    """``quick_value`` in quick mode, else ``full``: a chapter's own sizes (how many faces,
    how many steps of an experiment) follow the mode it runs in.

    >>> scaled(1000, 50, quick=True), scaled(1000, 50, quick=False)
    (50, 1000)
    """
    return quick_value if quick else full


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU random state seeded with ``seed``, then restore the
    state as it was: a seeded draw that leaves the caller's random stream alone.

    >>> with seeded(0): a = torch.rand(2)
    >>> with seeded(0): b = torch.rand(2)
    >>> torch.equal(a, b)
    True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


# ----------------------------------------------------------------------------- command lines
def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Give a command the options of how it runs, the same in every command: ``--device``,
    ``--threads``, ``--quick`` and ``--no-progress`` (:func:`run_options` applies them)."""
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--quick", action="store_true",
                        help=f"cut every schedule for a quick look (also when {QUICK_ENV}=1)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_options(args: argparse.Namespace) -> bool:
    """Apply :func:`add_run_options`' ``--threads``; whether the run is quick (``--quick``
    or :func:`quick_mode`). For entry points only: it reads the environment."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return args.quick or quick_mode()


def command_text(prog: str, argv: list[str] | None = None) -> str:
    """The command line a file records: ``prog`` and its arguments (``sys.argv``'s when
    ``argv`` is None).

    >>> command_text("python -m g2s_lite.benchmark", ["--n", "2"])
    'python -m g2s_lite.benchmark --n 2'
    """
    return " ".join([prog, *(sys.argv[1:] if argv is None else argv)])


# ----------------------------------------------------------------------------- side by side
def side_by_side(fn: Callable[..., T], jobs: dict[str, dict], workers: int | None = None,
                 device: torch.device | str = "cpu") -> dict[str, T]:
    """``{label: fn(**kwargs)}`` for every ``label: kwargs`` in ``jobs``, the calls side by
    side on a CPU's cores.

    Ablations (with and without symmetry, one prior or another) are independent runs, and
    on a CPU one run keeps only one core busy, so they run in separate processes at once,
    each with its share of this process's threads (with one thread each the numbers are bit
    for bit the serial ones). On a GPU, or with ``workers=1``, the calls go one after the
    other here. ``fn`` must be importable (a module-level function), as must its arguments.

    Args:
        fn: the function to call.
        jobs: ``{label: keyword arguments}``.
        workers: processes at once (default: one per job, at most one per CPU core; 1 on a
            GPU).
        device: where the calls compute; several processes only on the CPU.
    """
    if not jobs:
        raise ValueError("jobs is empty: give at least one {label: keyword arguments} to run")
    on_gpu = torch.device(device).type != "cpu"
    if workers is None:
        workers = 1 if on_gpu else os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if on_gpu and workers > 1:
        raise ValueError("side_by_side runs several processes only on the CPU; on a GPU use "
                         "workers=1 (the default there)")
    workers = min(workers, len(jobs))  # no idle processes
    if workers == 1:
        return {label: fn(**kwargs) for label, kwargs in jobs.items()}
    threads = max(1, torch.get_num_threads() // workers)
    spawn = multiprocessing.get_context("spawn")  # fork is unsafe once torch has threads
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        futures = {label: pool.submit(_call_with_threads, threads, fn, kwargs)
                   for label, kwargs in jobs.items()}
        return {label: future.result() for label, future in futures.items()}


def _call_with_threads(threads: int, fn: Callable[..., T], kwargs: dict) -> T:
    torch.set_num_threads(threads)
    return fn(**kwargs)


# ----------------------------------------------------------------------------- torchrun
#: How long a process waits for the others at a meeting point (a gather, a barrier) before
#: giving up: one rank may still be on a long image while another has finished its share.
MEETING_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class World:
    """The processes that share one run: this one's ``rank`` among ``size`` (and its
    ``local_rank`` on its machine, which picks its GPU). ``SOLO`` is a plain run.

    >>> World(1, 4).share(range(10))
    [1, 5, 9]
    >>> SOLO.share([3, 4]), SOLO.main, World(1, 2).main
    ([3, 4], True, False)
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items``: every ``size``-th one from its rank, so that
        shares differ by at most one item whatever the items' order."""
        return list(items[self.rank::self.size])

    def device(self, prefer: str | None = None) -> torch.device:
        """This process's device: its own GPU (``cuda:local_rank``) when CUDA is used."""
        device = pick_device(prefer)
        if device.type == "cuda" and device.index is None and self.size > 1:
            device = torch.device("cuda", self.local_rank)
        return device

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (picklable), in rank order, on every process."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (anything ``torch.save`` takes; ignored elsewhere) on every
        process, its tensors on the CPU: each process moves them to its own device (a tensor
        sent as it is would land on rank 0's GPU)."""
        if self.size == 1:
            return obj
        box = [None]
        if self.main:
            buffer = io.BytesIO()
            torch.save(obj, buffer)
            box = [buffer.getvalue()]
        torch.distributed.broadcast_object_list(box, src=0)
        return torch.load(io.BytesIO(box[0]), map_location="cpu", weights_only=False)

    @contextmanager
    def averaging(self, parameters) -> Iterator[None]:
        """Within the block, every backward pass leaves in each of ``parameters``' ``.grad``
        the average over the processes (what ``DistributedDataParallel`` does): the same
        optimiser steps then keep the processes' copies equal, each having seen its own
        data. Per parameter, as its gradient is ready, so that the loops that train the nets
        stay as they are.
        """
        if self.size == 1:
            yield
            return

        def average(p: torch.Tensor) -> None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= self.size

        hooks = [p.register_post_accumulate_grad_hook(average) for p in parameters]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.size > 1:
            torch.distributed.barrier()


#: A plain run: one process.
SOLO = World()


@contextmanager
def joined(device: str | None = None) -> Iterator[World]:
    """The :class:`World` this process belongs to, for an entry point (it reads the
    environment that ``torchrun`` sets): :data:`SOLO` for a plain run; under ``torchrun``
    the process group is set up (NCCL when the run uses CUDA, else gloo; several machines
    through torchrun's rendezvous) and taken down at the end.

    Args:
        device: the device the run asks for (None: CUDA when available).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        yield SOLO
        return
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    on_gpu = world.device(device).type == "cuda"
    if on_gpu:
        torch.cuda.set_device(world.local_rank)
    torch.distributed.init_process_group("nccl" if on_gpu else "gloo",
                                         timeout=MEETING_TIMEOUT)
    try:
        yield world
    finally:
        torch.distributed.destroy_process_group()


# ----------------------------------------------------------------------------- downloads
#: Set to 1 to let torchvision download its weights off Colab (:func:`downloads_allowed`).
DOWNLOADS_ENV = "G2S_ALLOW_DOWNLOADS"
#: A folder for the weights the hub downloads, instead of :func:`default_cache`
#: (:func:`weights_cache`).
CACHE_ENV = "G2S_CACHE"


def torch_hub_file(file: str) -> Path:
    """Where torchvision keeps a weights file it downloaded: the torch hub cache's
    ``checkpoints`` folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / file


def downloads_allowed() -> bool:
    """True on Colab or when ``G2S_ALLOW_DOWNLOADS`` is set to anything but "", "0",
    "false" or "no": only then may torchvision download weights the torch hub cache lacks
    (the book never downloads on its own initiative elsewhere).

    For entry points only (a notebook's cell, a command line's main): pass the answer down
    as ``downloads=``."""
    return _switch(DOWNLOADS_ENV) or "google.colab" in sys.modules


def default_cache() -> Path:
    """Where the hub keeps downloaded weights unless told otherwise: ``~/.cache/g2s_lite``."""
    return Path.home() / ".cache" / "g2s_lite"


def weights_cache() -> Path:
    """``$G2S_CACHE`` when set, else :func:`default_cache`.

    For entry points only (a command line's main): pass the answer down as ``cache=``."""
    return Path(os.environ.get(CACHE_ENV) or default_cache())
