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

**Framing.** A preset's images may show only the centre of G's (cats, the released
synthetic faces): :class:`FramedGAN` is G with that crop, built once from the preset, and
everything here that draws from G frames its images the same way.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor, nn

from .gan import Discriminator, Generator, frozen
from .losses import (PerceptualLoss, discriminator_feature_loss, feature_l1, per_image,
                     photometric_l1)
from .images import centre_fraction, check_images, to_size
from .nets import LatentEncoder, Stacked, adam
from .paper import D_BLOCKS, ProjectConfig, Step2Config
from .pseudo import sample_pseudo
from .refine import check_batch, seeds_of, summed
from .render import Renderer
from .runtime import seeded


# ----------------------------------------------------------------------------- the GAN
def generate(G: Generator, w: Tensor, size: int | None = None, gan_crop: float = 1.0) -> Tensor:
    """G's image of ``w`` (``B×style_dim`` or ``B×n_latent×style_dim``) with the stored
    noise maps, clamped to [−1, 1], its centre ``gan_crop`` kept (the data's framing, see
    :attr:`~g2s_lite.paper.Preset.gan_crop`) and resized to ``size`` (None: G's size):
    ``B×3×size×size``."""
    image = centre_fraction(G.synthesis(w, noise_mode="const").clamp(-1, 1), gan_crop)
    return to_size(image, size or G.size)


@dataclass(frozen=True)
class FramedGAN:
    """The generator ``G`` framed as the data it stands for: its images keep their centre
    ``gan_crop`` (:attr:`~g2s_lite.paper.Preset.gan_crop`: 170/256 for cats and the released
    synthetic faces, else 1), wherever they meet an image or a pseudo sample (projection,
    step 2). Built once where the preset is known (``FramedGAN(G, preset.gan_crop)``); the
    functions below take it, or a plain generator, framed whole."""

    G: Generator
    gan_crop: float = 1.0

    @property
    def device(self) -> torch.device:
        return self.G.device

    @property
    def size(self) -> int:
        """G's own image size (before the crop)."""
        return self.G.size

    def mapping(self, *args) -> Tensor:
        """G's mapping network (:meth:`~g2s_lite.gan.Generator.mapping`)."""
        return self.G.mapping(*args)

    def generate(self, w: Tensor, size: int | None = None) -> Tensor:
        """The framed image of ``w`` at ``size`` (:func:`generate`): ``B×3×size×size``."""
        return generate(self.G, w, size, self.gan_crop)


def framed(G: Generator | FramedGAN) -> FramedGAN:
    """``G`` as a :class:`FramedGAN`; a plain generator shows its whole image."""
    return G if isinstance(G, FramedGAN) else FramedGAN(G)


def add_offset(w: Tensor, offset: Tensor) -> Tensor:
    """``w + Δw`` for w in W (``1×style_dim``) or W+ (``1×n_latent×style_dim``), ``Δw``
    ``B×style_dim`` (the same offset for every layer): ``B×…``. K latents ``K×…`` take
    ``B/K`` offsets each, in order."""
    if len(w) > 1:
        w = w.repeat_interleave(len(offset) // len(w), 0)
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

    def forward(self, pseudo: Tensor, image: Tensor, G: Generator | FramedGAN) -> Tensor:
        """``B×3×S×S`` pseudo samples, the ``1×3×S×S`` image → Δw ``B×style_dim``. With K
        images ``K×3×S×S`` side by side (and E a :class:`~g2s_lite.nets.Stacked` of K copies),
        image k's B/K pseudo samples are encoded relative to image k."""
        e = self.encoder(pseudo)
        if self.relative:
            own = self.encoder(image)
            e = e - (own if len(image) == 1 else own.repeat_interleave(len(e) // len(image), 0))
        tail = lambda h: G.mapping(h, self.start)  # noqa: E731
        return tail(self.center_h + e) - tail(self.center_h)


def invert_pseudo(encoder: LatentOffsetEncoder, G: Generator | FramedGAN, w: Tensor,
                  pseudo: Tensor, gan_image: Tensor) -> tuple[Tensor, Tensor]:
    """Projected samples G(w + E-offset) of ``pseudo`` (``B×3×S×S``) for the image whose
    latent is ``w`` and whose GAN image is ``gan_image`` (``1×3×S×S``), framed as ``G``
    frames them (:class:`FramedGAN`; K images side by side: ``K×…`` latents and GAN images,
    B/K samples each).

    Returns:
        (projected ``B×3×S×S`` in [−1, 1], offsets ``B×style_dim``).
    """
    gan = framed(G)
    offset = encoder(pseudo, gan_image, gan)
    return gan.generate(add_offset(w, offset), pseudo.shape[-1]), offset


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


def fresh_encoder(G: Generator, config: Step2Config, image_size: int,
                  device: torch.device | str, seeds: Sequence[int], vectorize: bool = False
                  ) -> LatentOffsetEncoder:
    """A fresh encoder (:func:`make_encoder`) per seed, each seeded as a one-image step 2
    seeds its own; several images' E are one :class:`~g2s_lite.nets.Stacked` (``vectorize``:
    one vectorised call) behind the shared mapping tail."""
    made = []
    for seed in seeds:
        with seeded(seed):
            made.append(make_encoder(G, config, image_size, device))
    if len(made) > 1:
        made[0].encoder = Stacked([e.encoder for e in made], vectorize)
    return made[0]


def step2(image: Tensor, w: Tensor, G: Generator | FramedGAN, D: Discriminator | None,
          depth: Tensor, albedo: Tensor, light: Tensor, config: Step2Config = Step2Config(),
          renderer: Renderer | None = None, seed: int | Sequence[int] = 0,
          progress: bool = True, encoder: LatentOffsetEncoder | None = None,
          object_mask: Tensor | None = None) -> Step2Result:
    """Step 2: train the latent-offset encoder on pseudo samples, then collect projected
    samples for step 3.

    Args:
        image: ``1×3×S×S`` in [−1, 1], the image being reconstructed (sets S); or
            ``K×3×S×S``, K images side by side, each with its own latent, factors, encoder,
            random draws and loss (:func:`step2_loss`), every tensor below with K rows.
        w: its latent, ``1×style_dim`` (W) or ``1×n_latent×style_dim`` (W+) — a GAN sample's
            own w, or :func:`project`'s.
        G, D: the GAN (frozen); G framed as the image (a :class:`FramedGAN`; a plain
            generator: its whole image). Without D the loss is the masked L1 alone.
        depth, albedo, light: the current factors (``1×S×S``, ``1×3×S×S``, ``1×4``), e.g.
            from :func:`~g2s_lite.refine.step1`.
        config: schedule, loss weights and sampling ranges.
        renderer: default ``Renderer(S)``.
        seed: seeds E's initialisation and the random views and lights (the global random
            state is left as it was); K images: one seed each, or the same for all.
        progress: show progress bars.
        encoder: an encoder to go on training in place (pretrained nets, see
            :mod:`~g2s_lite.pretrain`; K images: :func:`fresh_encoder`'s); a fresh one by
            default.
        object_mask: the object on the canonical surface (``1×1×S×S``): pseudo samples
            count only there (:func:`~g2s_lite.pseudo.sample_pseudo`).

    With K images the collected samples hold image k's N samples together, then image
    k+1's, and the history sums the images' losses.
    """
    from tqdm.auto import tqdm, trange

    image = check_batch(image)
    k, size, device = len(image), image.shape[-1], image.device
    gan = framed(G)
    renderer = renderer or Renderer(size)
    depth = depth.reshape(k, size, size).detach()
    albedo, light = albedo.detach(), light.detach()
    seeds = seeds_of(seed, k)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    if encoder is None:
        encoder = fresh_encoder(gan.G, config, size, device, seeds)
    opt = adam(encoder.encoder.parameters(), config.lr)
    history: list[dict[str, float]] = []
    start = time.perf_counter()

    def draw():  # each image's pseudo samples, from its own random stream
        drawn = [sample_pseudo(renderer, depth[i:i + 1], albedo[i:i + 1], light[i:i + 1],
                               config.batch, config.views, config.lights, gen,
                               None if object_mask is None else object_mask[i:i + 1])
                 for i, gen in enumerate(gens)]
        return drawn[0] if k == 1 else [torch.cat(parts) for parts in zip(*drawn)]

    with frozen(gan.G, D):
        gan_image = gan.generate(w, size).detach()
        for _ in trange(config.steps, desc="step 2: latent offsets", disable=not progress):
            pseudo, masks, _, _ = draw()
            projected, offset = invert_pseudo(encoder, gan, w, pseudo, gan_image)
            terms = step2_loss(projected, pseudo, masks, offset, D, config, k)
            opt.zero_grad()
            terms["loss"].sum().backward()
            opt.step()
            history.append(summed(terms))
        out: dict[str, list[Tensor]] = {k: [] for k in
                                        ("projected", "pseudo", "masks", "views", "lights",
                                         "offsets")}
        with torch.no_grad():
            for _ in tqdm(range(config.collect), desc="step 2: collecting projected samples",
                          disable=not progress):
                pseudo, masks, v, l = draw()
                projected, offset = invert_pseudo(encoder, gan, w, pseudo, gan_image)
                for name, x in zip(out, (projected, pseudo, masks, v, l, offset)):
                    out[name].append(x)
    # image by image: image i's rows of every batch, then image i+1's
    return Step2Result(encoder=encoder, history=history,
                       seconds=time.perf_counter() - start,
                       **{name: torch.cat([p.chunk(k)[i] for i in range(k) for p in x])
                          if x else torch.empty(0) for name, x in out.items()})


def step2_loss(projected: Tensor, pseudo: Tensor, masks: Tensor, offsets: Tensor,
               D: Discriminator | None, config: Step2Config, k: int = 1) -> dict[str, Tensor]:
    """Step 2's loss of each of ``k`` images whose projected samples, pseudo samples
    (``(k·B)×3×S×S``), masks (``(k·B)×1×S×S``) and offsets (``(k·B)×style_dim``) lie side by
    side, image by image: ``loss`` and its terms ``l1``, ``feature`` (D's features, when D is
    given) and ``offset``, each a ``k`` vector.

    D sees the samples at their own size S, whatever its own: as the official code feeds its
    256-px (synthetic faces: 128-px) discriminator the 128-px (64-px) samples, and so the
    feature maps the loss compares are S/2, S/4, … across.
    """
    fake = real = None
    if D is not None:
        fake = D.features(projected, config.d_blocks)
        with torch.no_grad():
            real = D.features(pseudo, config.d_blocks)

    def one(projected, pseudo, masks, offset, fake, real):
        l1 = photometric_l1(projected, pseudo, masks)
        feat = feature_l1(fake, real, masks) if fake is not None else l1.new_zeros(())
        reg = offset.pow(2).mean()
        return {"loss": l1 + feat + config.lam_offset * reg, "l1": l1, "feature": feat,
                "offset": reg}

    return per_image(k, one, projected, pseudo, masks, offsets, fake, real)


# ----------------------------------------------------------------------------- projection
def latent_lr(t: float, lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """The StyleGAN2 projector's learning rate at fraction ``t`` of the steps: a linear ramp
    up over the first ``rampup``, a cosine ramp down over the last ``rampdown``."""
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / rampdown))
    up = min(1.0, t / rampup) if rampup > 0 else 1.0
    return lr * down * up


def project(image: Tensor, G: Generator | FramedGAN, D: Discriminator | None = None,
            config: ProjectConfig = ProjectConfig(), mask: Tensor | None = None,
            perceptual: PerceptualLoss | None = None, seed: int = 0,
            progress: bool = True) -> tuple[Tensor, Tensor]:
    """Find w whose GAN image matches ``image``.

    Loss: masked L1 + λ·(discriminator-feature L1 over four blocks when ``D`` is given,
    else ``perceptual``, default :class:`~g2s_lite.losses.PerceptualLoss`). The stored noise
    maps stay fixed, as steps 2 and 3 generate with them; rather than optimising noise
    maps (which then need their own regulariser to keep them from encoding the image), w
    itself is perturbed by a decaying noise early on.

    Args:
        image: ``B×3×S×S`` (or ``3×S×S``) in [−1, 1]; resized to the GAN's size if needed.
        G: the generator (frozen), framed as the image (a :class:`FramedGAN`: only the
            centre it keeps is compared; a plain generator: its whole image); ``G.w_avg``
            (or a fresh :meth:`mean_latent`) is the start.
        D: its discriminator, for the feature loss.
        mask: ``B×1×S×S``, where the image counts (default everywhere).
        config: schedule (``config.steps``; a preset's is ``preset.project``);
            ``config.w_plus`` for one w per layer.
        perceptual: used when ``D`` is None (default ``PerceptualLoss()``).
        seed: seeds the w-noise.
        progress: show a progress bar.

    Returns:
        (w ``B×style_dim`` or ``B×n_latent×style_dim``, its image ``B×3×S×S``).
    """
    from tqdm.auto import trange

    if isinstance(image, Tensor) and image.dim() == 3:
        image = image[None]
    image = check_images(image)
    gan = framed(G)
    G = gan.G
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
            if gan.gan_crop < 1:  # compare what the data show of G's image
                fake = to_size(centre_fraction(fake, gan.gan_crop), G.size)
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
            reconstruction = gan.generate(w, size)
    return w.detach(), reconstruction
