import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny networks: extra threads only add overhead (a lot, on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smooth_depth(batch: int, size: int, amplitude: float = 0.06, coarse: int = 5,
                 seed: int = 0) -> torch.Tensor:
    """Random smooth depth maps in [0.9, 1.1]: bicubic upsampling of coarse noise."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(batch, 1, coarse, coarse, generator=g).tanh() * amplitude + 1.0
    d = torch.nn.functional.interpolate(c, size=(size, size), mode="bicubic", align_corners=True)
    return d[:, 0].clamp(0.9, 1.1)


def tiny_preset(**changes):
    """The synface64 preset cut to a few steps of each step: for plumbing tests, which check
    what is written and passed around, not how good the shape is (seconds, not minutes)."""
    from dataclasses import replace

    from g2s_lite.paper import get_preset

    quick = get_preset("synface64", quick=True)
    tiny = replace(
        quick,
        step1=tuple(replace(c, steps=3) for c in quick.step1),
        step2=tuple(replace(c, steps=3, collect=1, batch=4) for c in quick.step2),
        step3=tuple(replace(c, steps=3, batch=4) for c in quick.step3),
        project=replace(quick.project, steps=3))
    return replace(tiny, **changes)


@pytest.fixture(scope="session")
def gan():
    """The bundled SynFace GAN (G, D) with its mean w, loaded once for the session; tests
    must not train it."""
    from g2s_lite import hub

    G, D = hub.load("synface64")
    G.mean_latent()
    return G, D


# ----------------------------------------------------------------------------- torchrun
def free_port() -> int:
    """A TCP port nobody listens on, for a process group of the tests."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, size, port, task, folder):
    """One process of ``size`` on the CPU (gloo), as torchrun starts it: runs ``task`` and
    leaves what it got in ``folder``/rank.pt."""
    import os

    from g2s_lite.runtime import joined

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    with joined("cpu") as world:
        torch.save(task(world), f"{folder}/{rank}.pt")


def in_processes(task, size, folder):
    """``task(world)`` in ``size`` processes joined as torchrun joins them; what each returned,
    in rank order (``task`` must be a module-level function)."""
    torch.multiprocessing.spawn(_rank, (size, free_port(), task, str(folder)), nprocs=size)
    return [torch.load(folder / f"{r}.pt", weights_only=False) for r in range(size)]
