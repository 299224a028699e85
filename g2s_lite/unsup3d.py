"""Unsup3d, the photo-geometric autoencoder GAN2Shape grew from — Chapter 10.

Unsup3d (Wu et al., CVPR 2020) learns the same four factors as GAN2Shape — canonical depth
d, albedo a, view v and light l — but from a *collection* of images instead of one image
and a GAN. Every image is explained by the renderer of Chapter 1,

    Î = Φ(d, a, v, l),    Î' = Φ(flip d, flip a, v, l),

and the networks D, A, V, L of Chapter 2 are trained on all images at once to make both
reconstructions match the input. The mirrored one Î' is the symmetry assumption: a face
seen straight on is its own mirror image, so its canonical depth and albedo must explain
the image when flipped too. Where they cannot (a parting, a shadow, one raised eyebrow) a
fifth network C predicts a per-pixel uncertainty σ, and the losses are negative
log-likelihoods that let σ grow there at a price of log σ:

    ℓ₁(Î, I, σ) = mean over pixels of  √2·|Î − I| / σ + log σ          (Laplace)
    ℓ_p(Î, I, σ) = mean over pixels of  e(Î, I)² / (2σ²) + log σ       (Gaussian)
    L = ℓ₁(Î, I, σ₁) + λ_f ℓ₁(Î', I, σ₁') + λ_p [ℓ_p(Î, I, σ_p) + λ_f ℓ_p(Î', I, σ_p')].

Without the symmetry assumption only the first and third terms remain.

What differs from the released code (the book's appendix lists the book's deviations): the
perceptual error e is the SSIM dissimilarity (1 − SSIM)/2 at full resolution instead of the
distance between VGG-16 relu3_3 features at a quarter of it (SSIM needs no download and is
the perceptual loss of every other chapter), the nets are narrower (``nf`` 16), the depth's
border is held on all four sides (the nets of Chapter 2) and the schedule fits a CPU
(:class:`~g2s_lite.paper.Unsup3dConfig`). Two more, because a CPU affords only a thousand
steps: L's light starts from above instead of from the front
(:data:`~g2s_lite.paper.UNSUP3D_LIGHT_DY`) and the released code's optional depth
smoothness is on (:data:`~g2s_lite.paper.UNSUP3D_LAM_DEPTH_SM`). A face and its hollow twin
explain the images equally well; with neither, two runs out of two learned the hollow one,
with both the shipped run learned the face.
It never sees a depth map: only images.

Measured on the SynFace benchmark (Chapter 7) as rows ``unsup3d_sym`` and ``unsup3d_nosym``:
the depth in the image's own view is the canonical depth warped by the predicted view.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .nets import EncoderDecoder, Nets
from .paper import Unsup3dConfig
from .render import Renderer
from .runtime import seeded

#: Seed of the training collection: SynFaces never used for testing (31337) or tuning (555).
UNSUP3D_SEED = 2020
#: Floor under σ, as in the released code: log σ and 1/σ stay finite.
EPS = 1e-7
#: The nets a shipped file holds: D and V are all it takes to predict depth in the image's
#: view, and they keep the file under 5 MB (A, L and C are training-only here).
SHIPPED = ("depth", "view")
#: Where the shipped weights live.
WEIGHTS_DIR = Path(__file__).parent / "weights"
#: The SSIM window of the perceptual term (the same as :class:`~g2s_lite.losses.PerceptualLoss`).
SSIM_WINDOW = 7


# ----------------------------------------------------------------------------- the losses
def _mean(loss: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``B×C×H×W`` over the pixels of a ``B×1×H×W`` mask (all pixels if None)."""
    if mask is None:
        return loss.mean()
    weights = mask.to(loss.dtype).expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp(min=1.0)


def confident_l1(pred: Tensor, target: Tensor, sigma: Tensor | None = None,
                 mask: Tensor | None = None) -> Tensor:
    """Laplace negative log-likelihood √2·|pred − target|/σ + log σ, averaged over the masked
    pixels and the channels; with ``sigma`` None the plain mean L1.

    Args:
        pred, target: ``B×C×H×W``.
        sigma: ``B×1×H×W`` uncertainty (> 0), shared by the channels.
        mask: ``B×1×H×W`` pixels to average over.

    The σ that minimises it is √2·|error|: confident where the error is small.

    >>> e = torch.full((1, 1, 2, 2), 0.5)
    >>> float(confident_l1(e, torch.zeros_like(e)))
    0.5
    """
    loss = (pred - target).abs()
    if sigma is not None:
        loss = loss * math.sqrt(2) / (sigma + EPS) + (sigma + EPS).log()
    return _mean(loss, mask)


def ssim_error(pred: Tensor, target: Tensor, window: int = SSIM_WINDOW) -> Tensor:
    """SSIM dissimilarity (1 − SSIM)/2 per pixel and channel, ``B×C×H×W`` in [0, 1], of
    images in [−1, 1]: 0 where the local structure matches."""
    from kornia.metrics import ssim

    return (1 - ssim((pred + 1) / 2, (target + 1) / 2, window)) / 2


def confident_perceptual(pred: Tensor, target: Tensor, sigma: Tensor | None = None,
                         mask: Tensor | None = None, window: int = SSIM_WINDOW) -> Tensor:
    """Gaussian negative log-likelihood e²/(2σ²) + log σ of the SSIM dissimilarity e
    (:func:`ssim_error`), averaged like :func:`confident_l1`; with ``sigma`` None the mean
    of e² — the released code's form, with SSIM in place of VGG features."""
    loss = ssim_error(pred, target, window) ** 2
    if sigma is not None:
        loss = loss / (2 * sigma**2 + EPS) + (sigma + EPS).log()
    return _mean(loss, mask)


# ----------------------------------------------------------------------------- the model
class ConfidenceNet(nn.Module):
    """C: image ``B×3×S×S`` → uncertainties σ ``B×4×S×S`` (softplus, > 0): for the L1 term,
    its mirrored twin, the perceptual term and its twin, in that order."""

    def __init__(self, image_size: int = 64, nf: int = 16) -> None:
        super().__init__()
        self.net = EncoderDecoder(3, 4, image_size, nf)

    def forward(self, image: Tensor) -> Tensor:
        return F.softplus(self.net(image))


@dataclass
class Unsup3d:
    """The four nets of Chapter 2, the confidence net C (None: σ = 1) and the renderer, with
    the symmetry assumption on or off. ``meta`` says how the nets were made."""

    nets: Nets
    confidence: ConfidenceNet | None
    symmetric: bool
    renderer: Renderer
    meta: dict = field(default_factory=dict)
    light_dy: float = 0.0  #: where L's light started (see :meth:`create`)

    @classmethod
    def create(cls, image_size: int = 64, nf: int = 16, symmetric: bool = True,
               confidence: bool = True, seed: int = 0, device: torch.device | str = "cpu",
               light_dy: float = 0.0) -> "Unsup3d":
        """Fresh nets, seeded. Unsup3d has no prior: D starts from its random weights.

        ``light_dy`` ≠ 0 starts L's light lit from above (dy, in L's units) instead of from
        the front, through a learnable bias of its last layer: a face and its hollow twin
        explain the images equally well, the light from above tells them apart (Chapter 10).
        """
        nets = Nets.create(image_size, nf, seed, device)
        if light_dy:
            old = nets.light.net.head
            head = nn.Conv2d(old.in_channels, old.out_channels, 1, bias=True).to(device)
            nn.init.zeros_(head.weight)
            with torch.no_grad():
                head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, math.atanh(light_dy)]))
            nets.light.net.head = head
        with seeded(seed + 1):
            conf = ConfidenceNet(image_size, nf).to(device) if confidence else None
        return cls(nets, conf, symmetric, Renderer(image_size), light_dy=light_dy)

    def modules(self) -> dict[str, nn.Module]:
        """The nets by name: depth, albedo, view, light (and confidence)."""
        named = {"depth": self.nets.depth, "albedo": self.nets.albedo, "view": self.nets.view,
                 "light": self.nets.light}
        if self.confidence is not None:
            named["confidence"] = self.confidence
        return named

    def parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules().values() for p in m.parameters()]

    def train(self, mode: bool = True) -> "Unsup3d":
        for m in self.modules().values():
            m.train(mode)
        return self

    def eval(self) -> "Unsup3d":
        return self.train(False)

    # ---- the autoencoder ---------------------------------------------------------------
    def losses(self, image: Tensor, lam_perc: float = 1.0, lam_flip: float = 0.5,
               lam_depth_sm: float = 0.0) -> dict[str, Tensor]:
        """Factor a batch, render it back (and its mirror) and score the reconstructions.

        Args:
            image: ``B×3×S×S`` in [−1, 1].
            lam_perc, lam_flip: weights of the perceptual term and of the mirrored terms.
            lam_depth_sm: weight of the released code's optional depth smoothness (mean
                |first difference| of the canonical depth over its range; 0 for faces,
                0.1 in its synthetic-car configuration).

        Returns:
            dict with ``total`` (what training lowers), the terms ``l1``, ``perc`` (and
            ``l1_flip``, ``perc_flip`` with symmetry), ``reconstruction`` ``B×3×S×S`` (and
            ``mirrored``), ``mask`` ``B×1×S×S`` (pixels both reconstructions cover) and
            ``sigma`` ``B×4×S×S`` (None without C).
        """
        b = image.shape[0]
        depth, albedo = self.nets.depth(image), self.nets.albedo(image)
        span = self.nets.depth.max_depth - self.nets.depth.min_depth
        depth_sm = ((depth[:, 1:] - depth[:, :-1]).abs().mean()
                    + (depth[:, :, 1:] - depth[:, :, :-1]).abs().mean()) / span
        view, light = self.nets.view(image), self.nets.light(image)
        copies = 1
        if self.symmetric:
            depth = torch.cat([depth, depth.flip(2)])
            albedo = torch.cat([albedo, albedo.flip(3)])
            view, light, copies = view.repeat(2, 1), light.repeat(2, 1), 2
        recon, valid = self.renderer.render(depth, albedo, light, view)
        # The released code compares only pixels both reconstructions cover, as a constant:
        # a net must not win by warping the face out of the picture.
        mask = valid.view(copies, b, *valid.shape[1:]).prod(0).detach()
        sigma = self.confidence(image) if self.confidence is not None else None
        pick = (lambda k: sigma[:, k:k + 1]) if sigma is not None else (lambda k: None)
        out = {"reconstruction": recon[:b], "mask": mask, "sigma": sigma, "depth_sm": depth_sm,
               "l1": confident_l1(recon[:b], image, pick(0), mask),
               "perc": confident_perceptual(recon[:b], image, pick(2), mask)}
        out["total"] = out["l1"] + lam_perc * out["perc"] + lam_depth_sm * depth_sm
        if self.symmetric:
            out["mirrored"] = recon[b:]
            out["l1_flip"] = confident_l1(recon[b:], image, pick(1), mask)
            out["perc_flip"] = confident_perceptual(recon[b:], image, pick(3), mask)
            out["total"] = out["total"] + lam_flip * (out["l1_flip"]
                                                      + lam_perc * out["perc_flip"])
        return out

    @torch.no_grad()
    def predict(self, image: Tensor) -> dict[str, Tensor]:
        """Depth in the image's own view, feed-forward (what the benchmark measures).

        Args:
            image: ``B×3×S×S`` in [−1, 1].

        Returns:
            dict with ``depth`` ``B×S×S`` (the canonical depth warped by the predicted view;
            ``invalid_depth`` where no surface lands), ``valid`` ``B×1×S×S``,
            ``depth_canon`` ``B×S×S`` and ``view`` ``B×6``.
        """
        self.nets.depth.eval(), self.nets.view.eval()
        canon, view = self.nets.depth(image), self.nets.view(image)
        depth = self.renderer.warp_depth(canon, view)
        return {"depth": depth, "valid": self.renderer.valid_mask(depth),
                "depth_canon": canon, "view": view}

    # ---- files -------------------------------------------------------------------------
    def save(self, path: str | Path, parts: tuple[str, ...] = SHIPPED, half: bool = True
             ) -> None:
        """Write the nets named in ``parts`` (default :data:`SHIPPED`) and ``meta``, at half
        precision unless ``half`` is False (buffers such as V's ranges stay exact), atomically."""
        modules = self.modules()
        unknown = set(parts) - set(modules)
        if unknown:
            raise ValueError(f"no net named {sorted(unknown)}; choose from {list(modules)}")
        state = {}
        for name in parts:
            params = {n for n, _ in modules[name].named_parameters()}
            state[name] = {n: t.half() if half and n in params else t
                           for n, t in modules[name].state_dict().items()}
        config = {"symmetric": self.symmetric, "confidence": self.confidence is not None,
                  "light_dy": self.light_dy,
                  "image_size": self.renderer.height,
                  "nf": self.nets.view.net.features[0].out_channels}
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        torch.save({"state": state, "config": config, "meta": self.meta}, partial)
        os.replace(partial, path)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "Unsup3d":
        """Read a file written by :meth:`save`. Nets the file does not hold stay fresh (the
        shipped files hold D and V only: enough for :meth:`predict`)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; train one with "
                                    "python -m g2s_lite.unsup3d --out FILE")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or not {"state", "config"} <= set(blob):
            raise ValueError(f"{path} is not an Unsup3d file (no 'state' and 'config'); "
                             "write one with Unsup3d.save")
        c = blob["config"]
        model = cls.create(c["image_size"], c["nf"], c["symmetric"], c["confidence"],
                           device=device, light_dy=c.get("light_dy", 0.0))
        modules = model.modules()
        for name, state in blob["state"].items():
            modules[name].load_state_dict({k: v.float() if v.is_floating_point() else v
                                           for k, v in state.items()})
        model.meta = dict(blob.get("meta", {}), loaded=sorted(blob["state"]))
        return model.eval()


# ----------------------------------------------------------------------------- training
def collection(n: int, seed: int = UNSUP3D_SEED, image_size: int = 64,
               cache: str | Path | None = None, progress: bool = True) -> Tensor:
    """The training collection: ``n`` SynFace images ``n×3×S×S`` (half precision), drawn
    with ``seed`` — images only, no depth. ``cache``: a file to keep them in (made once)."""
    from tqdm.auto import trange

    from .synth import SynFaces

    if cache is not None and Path(cache).exists():
        blob = torch.load(cache, weights_only=True)
        if blob["seed"] == seed and blob["images"].shape[0] >= n \
                and blob["images"].shape[-1] == image_size:
            return blob["images"][:n]
    world, chunk = SynFaces(image_size), 50
    images = torch.cat([world.sample(min(chunk, n - s), seed=seed, start=s)["image"].half()
                        for s in trange(0, n, chunk, desc="SynFaces", disable=not progress)])
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"seed": seed, "images": images}, cache)
    return images


def batch_indices(step: int, batch: int, n: int, seed: int = 0) -> Tensor:
    """The images of training step ``step``: epochs of ``n`` images, each in its own seeded
    order, taken ``batch`` at a time (so a resumed run draws what it would have drawn).

    >>> torch.equal(torch.cat([batch_indices(s, 4, 8) for s in range(2)]).sort().values,
    ...             torch.arange(8))
    True
    """
    flat = torch.arange(step * batch, (step + 1) * batch)
    epochs = flat // n
    out = torch.empty(batch, dtype=torch.long)
    for e in epochs.unique().tolist():
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + e))
        here = epochs == e
        out[here] = order[flat[here] % n]
    return out


def train(model: Unsup3d, images: Tensor, config: Unsup3dConfig = Unsup3dConfig(),
          checkpoint: str | Path | None = None, log: str | Path | None = None,
          every: int = 100, progress: bool = True) -> list[float]:
    """Train ``model`` on ``images`` (``N×3×S×S``) for ``config.steps`` Adam steps.

    Adam's rate falls from ``config.lr`` to 0 along a cosine. With ``checkpoint``, the
    nets, the optimiser and the history are written every ``every`` steps and at the end,
    and a run finds its place there when started again (with another ``config.steps``, the
    cosine is stretched to end there). ``log`` gets one line per ``every``
    steps (step, mean loss, seconds).

    Returns:
        The total loss of every step (of this run and the ones it resumed).
    """
    from tqdm.auto import tqdm

    from .nets import adam

    device = next(model.nets.depth.parameters()).device
    opt = adam(model.parameters(), config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, config.steps))
    history: list[float] = []
    start, seconds = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        blob = torch.load(checkpoint, map_location=device, weights_only=True)
        for name, module in model.modules().items():
            module.load_state_dict(blob["nets"][name])
        opt.load_state_dict(blob["opt"])
        schedule.load_state_dict(blob["schedule"])
        # a run resumed with another length keeps its place and still ends at rate 0
        schedule.T_max = max(1, config.steps)
        start, history, seconds = blob["step"], blob["history"], blob["seconds"]

    def save(step: int) -> None:
        if checkpoint is None:
            return
        blob = {"nets": {k: m.state_dict() for k, m in model.modules().items()},
                "opt": opt.state_dict(), "schedule": schedule.state_dict(), "step": step,
                "history": history, "seconds": seconds + time.perf_counter() - t0}
        partial = Path(str(checkpoint) + ".partial")
        torch.save(blob, partial)
        os.replace(partial, checkpoint)

    model.train()
    t0 = time.perf_counter()
    for step in tqdm(range(start, config.steps), initial=start, total=config.steps,
                     desc="Unsup3d", disable=not progress):
        idx = batch_indices(step, config.batch, images.shape[0], UNSUP3D_SEED)
        out = model.losses(images[idx].to(device).float(), config.lam_perc, config.lam_flip,
                           config.lam_depth_sm)
        opt.zero_grad()
        out["total"].backward()
        opt.step()
        schedule.step()
        history.append(out["total"].item())
        if (step + 1) % every == 0 or step + 1 == config.steps:
            save(step + 1)
            if log is not None:
                recent = history[-every:]
                with open(log, "a") as f:
                    f.write(f"step {step + 1} loss {sum(recent) / len(recent):.4f} "
                            f"seconds {seconds + time.perf_counter() - t0:.0f}\n")
    model.meta["train_seconds"] = seconds + time.perf_counter() - t0
    return history


def main(argv: list[str] | None = None) -> int:
    """``python -m g2s_lite.unsup3d --out FILE``: train Unsup3d on SynFaces and ship D, V."""
    from . import __version__
    from .results import command_parser
    from .runtime import add_run_options, command_text, pick_device, run_options

    prog = "python -m g2s_lite.unsup3d"
    parser = command_parser(prog, "Train Unsup3d on a collection of SynFaces (Chapter 10).")
    parser.add_argument("--out", type=Path, required=True, help="weights file to write")
    parser.add_argument("--no-symmetry", action="store_true", help="train without the mirror")
    parser.add_argument("--steps", type=int, default=Unsup3dConfig.steps)
    parser.add_argument("--batch", type=int, default=Unsup3dConfig.batch)
    parser.add_argument("--collection", type=int, default=Unsup3dConfig.collection,
                        help="number of training SynFaces")
    parser.add_argument("--cache", type=Path, default=None, help="file to keep the images in")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="resumable training state (default OUT.ckpt)")
    parser.add_argument("--log", type=Path, default=None, help="progress log (default OUT.log)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the nets")
    parser.add_argument("--light-dy", type=float, default=Unsup3dConfig.light_dy,
                        help="start L's light from above by this dy (0: frontal, as released)")
    parser.add_argument("--lam-depth-sm", type=float, default=Unsup3dConfig.lam_depth_sm,
                        help="weight of the depth smoothness (the released code: 0 for faces)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    quick = run_options(args)
    config = Unsup3dConfig(steps=args.steps, batch=args.batch, collection=args.collection,
                           symmetric=not args.no_symmetry, lam_depth_sm=args.lam_depth_sm,
                           light_dy=args.light_dy)
    if quick:
        config = config.quick()
    device = pick_device(args.device)
    checkpoint = args.checkpoint or args.out.with_name(args.out.name + ".ckpt")
    log = args.log or args.out.with_name(args.out.name + ".log")
    images = collection(config.collection, cache=args.cache, progress=not args.no_progress)
    model = Unsup3d.create(images.shape[-1], config.nf, config.symmetric, config.confidence,
                           args.seed, device, config.light_dy)
    history = train(model, images, config, checkpoint, log, progress=not args.no_progress)
    model.meta.update(config=asdict(config), seed=args.seed, collection_seed=UNSUP3D_SEED,
                      device=str(device), torch=str(torch.__version__), version=__version__,
                      command=command_text(prog, argv),
                      final_loss=sum(history[-100:]) / max(1, len(history[-100:])))
    model.save(args.out)
    print(f"wrote {args.out}: {config.steps} steps in {model.meta['train_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
