"""How a chapter runs: quick or paper-like mode, and on which device (DESIGN §7).

``G2S_QUICK=1`` (set by CI and the tests) scales every schedule down so each chapter runs in
well under two minutes on a 2-core CPU. Nothing else changes between modes.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch

QUICK_ENV = "G2S_QUICK"


def quick_mode() -> bool:
    """True when ``G2S_QUICK`` is set to anything but "", "0", "false" or "no"."""
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when available (or ``prefer`` when given), else the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe(device: torch.device | None = None) -> str:
    """One line a chapter prints first: mode, device and versions."""
    device = device or pick_device()
    mode = "quick (G2S_QUICK=1)" if quick_mode() else "full (paper-like schedules)"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    from . import __version__
    return (f"g2s_lite {__version__} | mode: {mode} | device: {device} ({name}) "
            f"| torch {torch.__version__}")


def scaled(full: int, quick: int) -> int:
    """``quick`` in quick mode, else ``full`` — the one rule schedules are scaled by."""
    return quick if quick_mode() else full


@contextmanager
def seeded(seed: int):
    """Run a block with torch's CPU random state seeded with ``seed``, then restore the
    state as it was: a seeded draw that leaves the caller's random stream alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
