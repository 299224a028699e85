"""Training the small SynFace GAN — Chapter 3.

``python -m g2s_lite.train_gan --size 64 --out runs/synface64 [--resume] [--minutes 55]``

``torchrun --standalone --nproc_per_node 2 -m g2s_lite.train_gan ...`` shares each batch among
the processes (each draws its part of the faces and of the latents; gradients are averaged),
and ``--init-from FILE --data-start N`` continues a released ``{"g_ema", "d"}`` pair on faces
it has not seen — how a GAN is trained longer in several sittings.

StyleGAN2's recipe, kept to what a small model on a laptop needs:

- the non-saturating logistic loss: D minimises softplus(D(fake)) + softplus(−D(real)),
  G minimises softplus(−D(fake));
- lazy R1 regularisation: every ``d_reg_every`` steps, D also pays γ/2·‖∇ₓD(real)‖²
  (scaled by ``d_reg_every`` so the average strength is γ/2), with Adam's rate and
  momentum adjusted for the skipped steps as in StyleGAN2;
- mixing regularisation: with probability ``mixing`` the generator's layers read two
  different w, switching at a random layer, so no layer relies on its neighbours' style;
- an exponential moving average of G's weights (``g_ema``), the generator that is kept.

Training images are SynFaces drawn on the fly from ``--data-seed``; the book's held-out test
faces use other seeds. Checkpoints (``checkpoint.pt``) let a run resume where it stopped;
``synface64.pt`` is the exported ``{"g_ema", "d"}`` pair in the community format.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .gan import Discriminator, Generator, load_stylegan2, save_stylegan2
from .runtime import SOLO, World, joined
from .synth import SynFaces


def synface_channels(size: int) -> dict[int, int]:
    """The channel plan (resolution → channels) of the bundled SynFace GAN, up to ``size``:
    128 channels up to 8 px, then halving down to 8 — a model small enough to train on a
    laptop CPU.

    >>> synface_channels(64)
    {4: 128, 8: 128, 16: 64, 32: 32, 64: 16}
    """
    widths = {4: 128, 8: 128, 16: 64, 32: 32, 64: 16, 128: 8, 256: 8}
    return {r: c for r, c in widths.items() if r <= size}


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in checkpoints and the model card)."""

    size: int = 64
    style_dim: int = 128
    n_mlp: int = 4
    channels: dict[int, int] = field(default_factory=dict)  # empty: synface_channels(size)
    batch: int = 16
    lr: float = 0.002
    r1: float = 1.0
    d_reg_every: int = 16
    mixing: float = 0.9
    ema_kimg: float = 10.0  # half-life of the moving average, in thousands of images
    iters: int = 20000
    minutes: float | None = None  # wall-clock budget; stop (and save) when it is spent
    seed: int = 0
    data_seed: int = 0
    data_start: int = 0  # index of the first training face (a continued run skips the seen ones)
    init_from: str | None = None  # a {"g_ema", "d"} file to start from instead of random nets
    sample_every: int = 500
    checkpoint_every: int = 250

    def widths(self) -> dict[int, int]:
        return {int(k): v for k, v in self.channels.items()} or synface_channels(self.size)


def build(config: TrainConfig) -> tuple[Generator, Discriminator]:
    return (Generator(config.size, config.style_dim, config.n_mlp, config.widths()),
            Discriminator(config.size, config.widths()))


def mixed_latents(G: Generator, batch: int, mixing: float,
                  generator: torch.Generator | None = None) -> Tensor:
    """w+ (``B×n_latent×style_dim``): one w per sample, or with probability ``mixing`` two,
    switching at a random layer."""
    z = torch.randn(2, batch, G.style_dim, generator=generator).to(G.device)
    w1, w2 = G.mapping(z[0]), G.mapping(z[1])
    w = w1[:, None].repeat(1, G.n_latent, 1)
    if float(torch.rand((), generator=generator)) < mixing:
        cut = int(torch.randint(1, G.n_latent, (), generator=generator))
        w[:, cut:] = w2[:, None]
    return w


def r1_penalty(D: Discriminator, real: Tensor) -> Tensor:
    """Mean squared gradient norm of D at the real images."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


@torch.no_grad()
def ema_update(target: torch.nn.Module, source: torch.nn.Module, beta: float) -> None:
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, 1.0 - beta)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)


def _adam(params, lr: float, ratio: float) -> torch.optim.Adam:
    # lazy regularisation: fewer, larger steps → rescale rate and momentum (StyleGAN2 §B)
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99**ratio))


def init_from(G: Generator, G_ema: Generator, D: Discriminator, path: str | Path) -> None:
    """Start G, G_ema and D from an exported ``{"g_ema", "d"}`` file of the same architecture
    (G starts at the moving average: the raw G of the earlier run is not exported)."""
    src_G, src_D = load_stylegan2(path)
    if src_D is None:
        raise ValueError(f"{path} has no discriminator; --init-from needs a {{'g_ema', 'd'}} file")
    try:
        for target, source in ((G, src_G), (G_ema, src_G), (D, src_D)):
            target.load_state_dict(source.state_dict())
    except RuntimeError as e:
        raise ValueError(f"{path} has another architecture than this run ({str(e).splitlines()[0]}); "
                         "pass the --size/--style-dim/--n-mlp it was trained with") from None


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def sample_grid(G: Generator, z: Tensor, path: Path) -> None:
    """Save a grid of ``G(z)`` (constant noise) as a PNG."""
    from torchvision.utils import save_image

    with torch.no_grad():
        img = G(z).clamp(-1, 1).cpu()
    save_image(img, path, nrow=math.ceil(math.sqrt(len(img))), padding=0, normalize=True,
               value_range=(-1, 1))


def train(config: TrainConfig, out: str | Path, resume: bool = False,
          progress: bool = True, device: str | torch.device | None = None,
          world: World = SOLO) -> dict:
    """Train (or resume) a run in ``out``; returns the run's summary (also ``summary.json``).

    ``device`` defaults to CUDA when available, else the CPU; the SynFaces are rendered there too.
    Under ``torchrun`` (``world``), each process trains on ``batch / world.size`` of every
    batch's faces and latents, and the gradients are averaged, so the processes keep equal
    nets; rank 0 writes the files.

    ``out`` receives ``checkpoint.pt`` (resumable), ``synface{size}.pt`` (the exported
    ``{"g_ema", "d"}``), ``samples/*.png`` and ``summary.json``.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    dev = world.device(device)
    if config.batch % world.size:
        raise ValueError(f"batch {config.batch} does not split among {world.size} processes; "
                         "pass a --batch that is a multiple of --nproc_per_node")
    part = config.batch // world.size
    torch.manual_seed(config.seed)
    G, D = (m.to(dev) for m in build(config))
    G_ema = copy.deepcopy(G).eval()
    if config.init_from:
        init_from(G, G_ema, D, config.init_from)
    d_ratio = config.d_reg_every / (config.d_reg_every + 1)
    g_opt, d_opt = _adam(G.parameters(), config.lr, 1.0), _adam(D.parameters(), config.lr, d_ratio)
    start, elapsed, history = 0, 0.0, []
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = TrainConfig(**{**ckpt["config"],  # JSON-like storage keeps keys as strings
                               "channels": {int(k): v for k, v in ckpt["config"]["channels"].items()}})
        if dataclasses.replace(saved, iters=config.iters, minutes=config.minutes) != config:
            raise ValueError(f"{ckpt_path} was made with a different configuration: {saved}; "
                             "start a new --out folder or pass the same options")
        G.load_state_dict(ckpt["g"])
        D.load_state_dict(ckpt["d"])
        G_ema.load_state_dict(ckpt["g_ema"])
        g_opt.load_state_dict(ckpt["g_optim"])
        d_opt.load_state_dict(ckpt["d_optim"])
        start, elapsed, history = ckpt["iter"], ckpt["elapsed"], ckpt["history"]
        torch.set_rng_state(ckpt["rng"])
    if world.size > 1:  # each process its own latents, the same on a resume
        torch.manual_seed(config.seed + 1 + world.rank + 1000 * start)
    faces = SynFaces(config.size)
    fixed_z = torch.randn(16, config.style_dim, generator=torch.Generator().manual_seed(1)).to(dev)
    beta = 0.5 ** (config.batch / (config.ema_kimg * 1000))

    def save(it: int) -> None:
        if not world.main:
            return
        _save_atomic({"g": G.state_dict(), "d": D.state_dict(), "g_ema": G_ema.state_dict(),
                      "g_optim": g_opt.state_dict(), "d_optim": d_opt.state_dict(),
                      "iter": it, "elapsed": elapsed + time.perf_counter() - t0,
                      "history": history, "rng": torch.get_rng_state(),
                      "config": {**dataclasses.asdict(config),
                                 "channels": {str(k): v for k, v in config.channels.items()}}},
                     ckpt_path)

    t0 = time.perf_counter()
    it = start
    bar = tqdm(range(start, config.iters), initial=start, total=config.iters,
               desc="train SynFace GAN", disable=not progress or not world.main)
    for it in bar:
        spent = elapsed + time.perf_counter() - t0
        # rank 0's clock decides, so that every process stops at the same step
        if config.minutes is not None and world.broadcast(spent > 60 * config.minutes):
            break
        first = config.data_start + it * config.batch + world.rank * part
        real = faces.sample(part, seed=config.data_seed, start=first, device=dev)["image"]
        # discriminator
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G.synthesis(mixed_latents(G, part, config.mixing), noise_mode="random")
        d_loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        d_opt.zero_grad(set_to_none=True)
        with world.averaging(D.parameters()):
            d_loss.backward()
        d_opt.step()
        r1 = None
        if it % config.d_reg_every == 0:
            r1 = r1_penalty(D, real)
            d_opt.zero_grad(set_to_none=True)
            with world.averaging(D.parameters()):
                (config.r1 / 2 * r1 * config.d_reg_every).backward()
            d_opt.step()
        # generator
        G.requires_grad_(True)
        D.requires_grad_(False)
        fake = G.synthesis(mixed_latents(G, part, config.mixing), noise_mode="random")
        g_loss = F.softplus(-D(fake)).mean()
        g_opt.zero_grad(set_to_none=True)
        with world.averaging(G.parameters()):
            g_loss.backward()
        g_opt.step()
        ema_update(G_ema, G, beta)

        row = {"iter": it, "d_loss": d_loss.item(), "g_loss": g_loss.item()}
        if r1 is not None:
            row["r1"] = r1.item()
        history.append(row)
        bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}")
        if (it + 1) % config.sample_every == 0 and world.main:
            sample_grid(G_ema, fixed_z, out / "samples" / f"{it + 1:06d}.png")
        if (it + 1) % config.checkpoint_every == 0:
            save(it + 1)
    else:
        it = config.iters
    if it > start or not ckpt_path.exists():
        save(it)
    wall = elapsed + time.perf_counter() - t0
    if world.main:
        save_stylegan2(out / f"synface{config.size}.pt", G_ema, D)
        sample_grid(G_ema, fixed_z, out / "samples" / "final.png")
    summary = {"iters": it, "images": it * config.batch, "wall_seconds": round(wall, 1),
               "device": str(dev), "threads": torch.get_num_threads(), "processes": world.size,
               "torch": torch.__version__,
               "config": {**dataclasses.asdict(config),
                          "channels": {str(k): v for k, v in config.widths().items()}}}
    if world.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> dict:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m g2s_lite.train_gan",
                                description="Train the small StyleGAN2 of the book on SynFaces "
                                            "generated on the fly (resumable).")
    p.add_argument("--out", required=True, help="run folder (checkpoints, samples, export)")
    p.add_argument("--size", type=int, default=defaults.size, help="image size (64 or 128)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--iters", type=int, default=defaults.iters, help="total training steps")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop after this much wall-clock time (a resumed run counts its past)")
    p.add_argument("--batch", type=int, default=defaults.batch, help="images per step")
    p.add_argument("--style-dim", type=int, default=defaults.style_dim, help="width of z and w")
    p.add_argument("--n-mlp", type=int, default=defaults.n_mlp, help="mapping layers")
    p.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    p.add_argument("--r1", type=float, default=defaults.r1, help="R1 weight γ")
    p.add_argument("--mixing", type=float, default=defaults.mixing,
                   help="probability of style mixing")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of the networks and z")
    p.add_argument("--data-seed", type=int, default=defaults.data_seed,
                   help="SynFaces seed of the training images")
    p.add_argument("--data-start", type=int, default=defaults.data_start,
                   help="index of the first training face (to continue on unseen faces)")
    p.add_argument("--init-from", default=None,
                   help='start from this {"g_ema", "d"} file (e.g. g2s_lite/weights/synface64.pt)')
    p.add_argument("--sample-every", type=int, default=defaults.sample_every,
                   help="steps between sample grids")
    p.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every,
                   help="steps between checkpoints")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's; 1 is faster on a busy 2-core machine)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    config = TrainConfig(size=a.size, style_dim=a.style_dim, n_mlp=a.n_mlp, batch=a.batch,
                         lr=a.lr, r1=a.r1, mixing=a.mixing, iters=a.iters, minutes=a.minutes,
                         seed=a.seed, data_seed=a.data_seed, data_start=a.data_start,
                         init_from=a.init_from, sample_every=a.sample_every,
                         checkpoint_every=a.checkpoint_every)
    if a.init_from and not Path(a.init_from).is_file():
        p.exit(2, f"error: --init-from {a.init_from} is not a file; pass an exported "
                  '{"g_ema", "d"} checkpoint such as g2s_lite/weights/synface64.pt\n')
    with joined(a.device) as world:
        try:
            summary = train(config, a.out, resume=a.resume, progress=not a.no_progress,
                            device=a.device, world=world)
        except ValueError as e:
            p.exit(2, f"error: {e}\n")
    if world.main:
        print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
