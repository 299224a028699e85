"""Projecting onto the GAN manifold — Chapter 5 (step 2, and projecting any image).

**Step 2.** Pseudo samples (Chapter 4) look wrong: stretched at silhouettes, holes where the
turned surface uncovers the background. The GAN knows what a face turned that way looks
like, so we ask it: a latent encoder E maps each pseudo sample Ĩᵢ to a latent offset Δwᵢ,
and the GAN draws G(w + Δwᵢ), a natural image of the *same* face under a nearby view and
light — a *projected sample*. E is trained so that the projected samples reproduce the
pseudo samples where these are defined (mask Mᵢ):

    L₂ = ‖Mᵢ ⊙ (G(w + Δwᵢ) − Ĩᵢ)‖₁ + Σ_{k≤4} ‖Mᵢ ⊙ (D_k(G(w + Δwᵢ)) − D_k(Ĩᵢ))‖₁ + λ‖Δwᵢ‖²

Two devices keep Δw small and on the manifold (the paper's choices):

* *relative encoding*: E predicts e = E(Ĩᵢ) − E(I), so the image itself maps to no change;
* the offset is added at a hidden layer h of the mapping network and carried through its
  last F1_d layers: Δw = f(h_c + e) − f(h_c), with f the last F1_d layers and h_c the hidden
  activation of z = 0. Offsets then move along directions the mapping network produces.

**Projection.** Every test image (a SynFace, a photograph) first needs its own w:
:func:`project` optimises w from the mean w so that G(w) matches the image.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gan import Discriminator, Generator, frozen
from .losses import PerceptualLoss, discriminator_feature_loss, photometric_l1
from .images import centre_fraction, check_image, check_images, to_size
from .nets import LatentEncoder, adam
from .paper import D_BLOCKS, ProjectConfig, Step2Config
from .pseudo import sample_pseudo
from .render import Renderer
from .runtime import seeded

# ----------------------------------------------------------------------------- helpers
def generate(G: Generator, w: Tensor, size: int | None = None, gan_crop: float = 1.0) -> Tensor:
    """G's image of ``w`` (``B×style_dim`` or ``B×n_latent×style_dim``) with the stored
    noise maps, clamped to [−1, 1], its centre ``gan_crop`` kept (the data's framing, see
    :attr:`~g2s_lite.paper.Preset.gan_crop`) and resized to ``size`` (None: G's size):
    ``B×3×size×size``."""
    image = centre_fraction(G.synthesis(w, noise_mode="const").clamp(-1, 1), gan_crop)
    return to_size(image, size or G.size)


def add_offset(w: Tensor, offset: Tensor) -> Tensor:
    """``w + Δw`` for w in W (``1×style_dim``) or W+ (``1×n_latent×style_dim``), ``Δw``
    ``B×style_dim`` (the same offset for every layer): ``B×…``."""
    return w + offset if w.dim() == 2 else w + offset[:, None]


# ----------------------------------------------------------------------------- the encoder
def offset_start(G: Generator, f1_d: int) -> int:
    """Index of the mapping module where the offset enters, so that the last
    ``min(f1_d, n_mlp)`` linear layers carry it (module 0 is the pixel norm).

    The paper's F1_d counts layers of an 8-layer mapping network (8 for synthetic faces,
    2 for real faces); a smaller network uses all its layers when F1_d exceeds them. The
    pixel norm is never part of the tail: it would blow a small e up to unit length.
    """
    if f1_d < 1:
        raise ValueError(f"f1_d must be ≥ 1 (mapping layers that carry the offset), got {f1_d}")
    return len(G.style) - min(f1_d, G.n_mlp)


class LatentOffsetEncoder(nn.Module):
    """E with the mapping tail: (pseudo samples, image) → latent offsets Δw ``B×style_dim``.

    Args:
        G: the generator whose mapping network carries the offsets (not stored: pass it to
            :meth:`forward`; E never trains it).
        f1_d: mapping layers that carry the offset (the paper: 8 synthetic, 2 real faces).
        nf: encoder width (the paper: 32).
        relative: encode E(Ĩ) − E(I) (the paper's choice) rather than E(Ĩ).
    """

    def __init__(self, G: Generator, f1_d: int = 8, nf: int = 32, relative: bool = True,
                 image_size: int | None = None) -> None:
        super().__init__()
        self.start, self.relative = offset_start(G, f1_d), relative
        self.encoder = LatentEncoder(G.style_dim, image_size or G.size, nf)
        with torch.no_grad():
            h = G.mapping(torch.zeros(1, G.style_dim, device=G.device, dtype=G.dtype),
                          0, self.start)
        self.register_buffer("center_h", h)

    def forward(self, pseudo: Tensor, image: Tensor, G: Generator) -> Tensor:
        """``B×3×S×S`` pseudo samples, the ``1×3×S×S`` image → Δw ``B×style_dim``."""
        e = self.encoder(pseudo)
        if self.relative:
            e = e - self.encoder(image)
        tail = lambda h: G.mapping(h, self.start)  # noqa: E731
        return tail(self.center_h + e) - tail(self.center_h)


def invert_pseudo(encoder: LatentOffsetEncoder, G: Generator, w: Tensor, pseudo: Tensor,
                  gan_image: Tensor, gan_crop: float = 1.0) -> tuple[Tensor, Tensor]:
    """Projected samples G(w + E-offset) of ``pseudo`` (``B×3×S×S``) for the image whose
    latent is ``w`` and whose GAN image is ``gan_image`` (``1×3×S×S``), framed by ``gan_crop``
    (:func:`generate`).

    Returns:
        (projected ``B×3×S×S`` in [−1, 1], offsets ``B×style_dim``).
    """
    offset = encoder(pseudo, gan_image, G)
    return generate(G, add_offset(w, offset), pseudo.shape[-1], gan_crop), offset


# ----------------------------------------------------------------------------- step 2
@dataclass
class Step2Result:
    """What step 2 made: the trained encoder, the ``history`` of its loss terms, and the
    collected samples for step 3 — ``projected`` and ``pseudo`` ``N×3×S×S``, ``masks``
    ``N×1×S×S`` (where the pseudo sample is defined), the ``views`` ``N×6`` and ``lights``
    ``N×4`` they were rendered with, the ``offsets`` ``N×style_dim``, and the wall time."""

    encoder: LatentOffsetEncoder
    projected: Tensor
    pseudo: Tensor
    masks: Tensor
    views: Tensor
    lights: Tensor
    offsets: Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def make_encoder(G: Generator, config: Step2Config, image_size: int,
                 device: torch.device | str = "cpu") -> LatentOffsetEncoder:
    """A fresh latent-offset encoder for ``G`` with ``config``'s F1_d, width and relativity."""
    return LatentOffsetEncoder(G, config.f1_d, config.nf, config.relative,
                               image_size=image_size).to(device)


def step2(image: Tensor, w: Tensor, G: Generator, D: Discriminator | None, depth: Tensor,
          albedo: Tensor, light: Tensor, config: Step2Config = Step2Config(),
          renderer: Renderer | None = None, seed: int = 0, progress: bool = True,
          encoder: LatentOffsetEncoder | None = None,
          object_mask: Tensor | None = None, gan_crop: float = 1.0) -> Step2Result:
    """Step 2: train the latent-offset encoder on pseudo samples, then collect projected
    samples for step 3.

    Args:
        image: ``1×3×S×S`` in [−1, 1], the image being reconstructed (sets S).
        w: its latent, ``1×style_dim`` (W) or ``1×n_latent×style_dim`` (W+) — a GAN sample's
            own w, or :func:`project`'s.
        G, D: the GAN (frozen). Without D the loss is the masked L1 alone.
        depth, albedo, light: the current factors (``1×S×S``, ``1×3×S×S``, ``1×4``), e.g.
            from :func:`~g2s_lite.refine.step1`.
        config: schedule, loss weights and sampling ranges.
        renderer: default ``Renderer(S)``.
        seed: seeds E's initialisation and the random views and lights (the global random
            state is left as it was).
        progress: show progress bars.
        encoder: an encoder to go on training in place (pretrained nets, see
            :mod:`~g2s_lite.pretrain`); a fresh one by default.
        object_mask: the object on the canonical surface (``1×1×S×S``): pseudo samples
            count only there (:func:`~g2s_lite.pseudo.sample_pseudo`).
        gan_crop: the centre fraction of G's images the image shows
            (:attr:`~g2s_lite.paper.Preset.gan_crop`).
    """
    from tqdm.auto import tqdm, trange

    image = check_image(image)
    size, device = image.shape[-1], image.device
    renderer = renderer or Renderer(size)
    depth = depth.reshape(1, size, size).detach()
    albedo, light = albedo.detach(), light.detach()
    gen = torch.Generator().manual_seed(seed)
    if encoder is None:
        with seeded(seed):
            encoder = make_encoder(G, config, size, device)
    opt = adam(encoder.encoder.parameters(), config.lr)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    with frozen(G, D):
        gan_image = generate(G, w, size, gan_crop).detach()
        for _ in trange(config.steps, desc="step 2: latent offsets", disable=not progress):
            pseudo, masks, _, _ = sample_pseudo(renderer, depth, albedo, light, config.batch,
                                                config.views, config.lights, gen, object_mask)
            projected, offset = invert_pseudo(encoder, G, w, pseudo, gan_image, gan_crop)
            l1 = photometric_l1(projected, pseudo, masks)
            feat = (discriminator_feature_loss(D.features, to_size(projected, D.size),
                                               to_size(pseudo, D.size), to_size(masks, D.size),
                                               config.d_blocks)
                    if D is not None else l1.new_zeros(()))
            reg = offset.pow(2).mean()
            loss = l1 + feat + config.lam_offset * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append({"loss": loss.item(), "l1": l1.item(), "feature": feat.item(),
                            "offset": reg.item()})
        out: dict[str, list[Tensor]] = {k: [] for k in
                                        ("projected", "pseudo", "masks", "views", "lights",
                                         "offsets")}
        with torch.no_grad():
            for _ in tqdm(range(config.collect), desc="step 2: collecting projected samples",
                          disable=not progress):
                pseudo, masks, v, l = sample_pseudo(renderer, depth, albedo, light,
                                                    config.batch, config.views, config.lights,
                                                    gen, object_mask)
                projected, offset = invert_pseudo(encoder, G, w, pseudo, gan_image, gan_crop)
                for k, x in zip(out, (projected, pseudo, masks, v, l, offset)):
                    out[k].append(x)
    return Step2Result(encoder=encoder, history=history,
                       seconds=time.perf_counter() - start,
                       **{k: torch.cat(x) if x else torch.empty(0) for k, x in out.items()})


# ----------------------------------------------------------------------------- projection
def latent_lr(t: float, lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """The StyleGAN2 projector's learning rate at fraction ``t`` of the steps: a linear ramp
    up over the first ``rampup``, a cosine ramp down over the last ``rampdown``."""
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / rampdown))
    up = min(1.0, t / rampup) if rampup > 0 else 1.0
    return lr * down * up


def project(image: Tensor, G: Generator, D: Discriminator | None = None,
            config: ProjectConfig = ProjectConfig(), mask: Tensor | None = None,
            perceptual: PerceptualLoss | None = None, seed: int = 0,
            progress: bool = True, gan_crop: float = 1.0) -> tuple[Tensor, Tensor]:
    """Find w whose GAN image matches ``image``.

    Loss: masked L1 + λ·(discriminator-feature L1 over four blocks when ``D`` is given,
    else ``perceptual``, default :class:`~g2s_lite.losses.PerceptualLoss`). The stored noise
    maps stay fixed, as steps 2 and 3 generate with them; rather than optimising noise
    maps (which then need their own regulariser to keep them from encoding the image), w
    itself is perturbed by a decaying noise early on.

    Args:
        image: ``B×3×S×S`` (or ``3×S×S``) in [−1, 1]; resized to the GAN's size if needed.
        G: the generator (frozen); ``G.w_avg`` (or a fresh :meth:`mean_latent`) is the start.
        D: its discriminator, for the feature loss.
        mask: ``B×1×S×S``, where the image counts (default everywhere).
        config: schedule (``config.steps``; a preset's is ``preset.project``);
            ``config.w_plus`` for one w per layer.
        perceptual: used when ``D`` is None (default ``PerceptualLoss()``).
        seed: seeds the w-noise.
        progress: show a progress bar.
        gan_crop: the centre fraction of G's images the image shows, the only part compared
            (:attr:`~g2s_lite.paper.Preset.gan_crop`).

    Returns:
        (w ``B×style_dim`` or ``B×n_latent×style_dim``, its image ``B×3×S×S``).
    """
    from tqdm.auto import trange

    if isinstance(image, Tensor) and image.dim() == 3:
        image = image[None]
    image = check_images(image)
    steps = config.steps
    size, device = image.shape[-1], image.device
    target = to_size(image, G.size)
    mask_g = None if mask is None else to_size(mask.to(image), G.size)
    if D is None:
        perceptual = perceptual or PerceptualLoss()
    with torch.no_grad():
        center = G.w_avg if getattr(G, "w_avg", None) is not None else G.mean_latent()
        spread = ((G.mapping(torch.randn(1000, G.style_dim,
                                         generator=torch.Generator().manual_seed(0)
                                         ).to(center)) - center) ** 2).sum(1).mean().sqrt()
    w = center.detach().clone().repeat(image.shape[0], 1)
    if config.w_plus:
        w = w[:, None].repeat(1, G.n_latent, 1)
    w.requires_grad_(True)
    opt = torch.optim.Adam([w], lr=config.lr, betas=(0.9, 0.999))
    gen = torch.Generator(device=device).manual_seed(seed)
    with frozen(G, D):
        for i in trange(steps, desc="projecting onto the GAN", disable=not progress):
            t = i / max(steps, 1)
            for group in opt.param_groups:
                group["lr"] = latent_lr(t, config.lr)
            strength = spread * config.noise * max(0.0, 1 - t / config.noise_ramp) ** 2
            w_in = w + strength * torch.randn(w.shape, generator=gen, device=device)
            fake = G.synthesis(w_in, noise_mode="const")
            if gan_crop < 1:  # compare what the data show of G's image
                fake = to_size(centre_fraction(fake, gan_crop), G.size)
            loss = photometric_l1(fake, target, mask_g)
            if D is not None:
                loss = loss + config.lam_perc * discriminator_feature_loss(
                    D.features, fake, target, mask_g, D_BLOCKS)
            else:
                loss = loss + config.lam_perc * perceptual(fake, target, mask_g)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            reconstruction = generate(G, w, size, gan_crop)
    return w.detach(), reconstruction
