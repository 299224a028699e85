"""The released GAN2Shape networks, in the paper's exact layout — Chapter 9.

The paper's authors published their nets pretrained on GAN samples (``celeba_pretrain.pth``,
``cat_pretrain.pth``, ``synface_pretrain.pth``: D, A, V, L and the latent encoder E). Our
nets of Chapters 2 and 5 are the same idea with small differences of layout (a group norm
after the last downsampling convolution, leaky ReLUs in V and L, E's shortcut taken before
its ReLU), so the released weights would not fit them. This module builds the released
layout module for module, with the same parameter names, so that the released state dicts
load unchanged; each factor net is then wrapped as the book's nets are, giving the factor in
the renderer's units.

What the released forward pass does, and so what the wrappers do:

* D: ``raw − mean(raw)``, tanh, scaled to [min_depth, max_depth] (the book's
  :class:`~g2s_lite.nets.DepthNet`; the border held at a fixed depth differs — the released
  code holds two columns left and right, the book a two-pixel frame — so only the interior
  is the same);
* A: tanh;
* V: tanh, plus the mean of the released view distribution (``*_view_mvn.pth``), then
  scaled to ±60° and ±0.1;
* L: tanh, plus the mean of the released light distribution (``*_light_mvn.pth``); then
  ambient and diffuse ``x/2 + 1/2``, direction as is;
* E: a residual encoder to ``style_dim`` with a linear output; its latent offsets enter the
  mapping network before its last ``F1_d + 1`` modules (the released code counts the pixel
  norm among the 9), see :func:`offset_encoder`.

Group norms use ``gn_base`` groups at the first width (16 below 128 px, 8 from 128 px) and
proportionally more at wider layers, as released.

>>> nets = paper_nets(64)
>>> nets.depth(torch.zeros(1, 3, 64, 64)).shape, nets.view(torch.zeros(2, 3, 64, 64)).shape
(torch.Size([1, 64, 64]), torch.Size([2, 6]))
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .nets import AlbedoNet, DepthNet, LightNet, Nets, ViewNet, size_levels
from .paper import paper_width

#: The released bottleneck width of D and A, and E's first width.
ZDIM, ENCODER_NF = 256, 32


def gn_base(size: int) -> int:
    """Groups of the first group norm in the released D and A: 16 below 128 px, else 8."""
    return 8 if size >= 128 else 16


def _widths(nf: int, size: int) -> list[int]:
    """Channels after each stride-2 convolution: S/2, S/4, …, 4."""
    return [nf * 2**i for i in range(4 + size_levels(size))]


# ----------------------------------------------------------------------------- the layouts
def ed_deconv(cin: int, cout: int, size: int, nf: int | None = None, zdim: int = ZDIM
              ) -> nn.Sequential:
    """The released encoder–decoder of D and A (without A's final tanh, which has no
    weights): image ``B×cin×S×S`` → ``B×cout×S×S``."""
    nf = paper_width(size) if nf is None else nf
    widths = _widths(nf, size)
    # groups grow with the width: gn_base at nf channels
    norm = lambda c: nn.GroupNorm(gn_base(size) * c // nf, c)  # noqa: E731
    down: list[nn.Module] = [nn.Conv2d(cin, widths[0], 4, 2, 1, bias=False)]
    for a, b in zip(widths[:-1], widths[1:]):
        down += [norm(a), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(a, b, 4, 2, 1, bias=False)]
    down += [nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(widths[-1], zdim, 4, 1, 0, bias=False),
             nn.ReLU(inplace=True)]
    top = widths[-1]
    up: list[nn.Module] = [nn.ConvTranspose2d(zdim, top, 4, 1, 0, bias=False),
                           nn.ReLU(inplace=True),
                           nn.Conv2d(top, top, 3, 1, 1, bias=False), nn.ReLU(inplace=True)]
    for a, b in zip(widths[::-1][:-1], widths[::-1][1:]):
        up += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), norm(b), nn.ReLU(inplace=True),
               nn.Conv2d(b, b, 3, 1, 1, bias=False), norm(b), nn.ReLU(inplace=True)]
    up += [nn.Upsample(scale_factor=2, mode="nearest"),
           nn.Conv2d(nf, nf, 3, 1, 1, bias=False), norm(nf), nn.ReLU(inplace=True),
           nn.Conv2d(nf, nf, 5, 1, 2, bias=False), norm(nf), nn.ReLU(inplace=True),
           nn.Conv2d(nf, cout, 5, 1, 2, bias=False)]
    return nn.Sequential(*down, *up)


def conv_encoder(cin: int, cout: int, size: int, nf: int | None = None) -> nn.Sequential:
    """The released encoder of V and L (without its final tanh): ``B×cin×S×S`` →
    ``B×cout×1×1``; ReLUs, no normalisation."""
    nf = paper_width(size) if nf is None else nf
    widths = _widths(nf, size)
    layers: list[nn.Module] = []
    for a, b in zip([cin] + widths[:-1], widths):
        layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.ReLU(inplace=True)]
    top = widths[-1]
    layers += [nn.Conv2d(top, top, 4, 1, 0, bias=False), nn.ReLU(inplace=True),
               nn.Conv2d(top, cout, 1, 1, 0, bias=False)]
    return nn.Sequential(*layers)


class ResBlockDown(nn.Module):
    """The released residual block that halves the resolution. Its ReLU acts in place on
    the input, so the shortcut sees the rectified input too: ``sc(pool(relu(x))) +
    conv2(relu(conv1(relu(x))))``. The shortcut convolution exists (and is stored) even
    where the widths agree, though it is then not applied."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.conv_sc = nn.Conv2d(cin, cout, 1)
        self.same = cin == cout

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        h = self.conv2(F.relu(self.conv1(x)))
        skip = F.avg_pool2d(x, 2)
        return (skip if self.same else self.conv_sc(skip)) + h


def res_encoder(cin: int, cout: int, size: int, nf: int = ENCODER_NF) -> nn.Sequential:
    """The released latent encoder E: ``B×cin×S×S`` → ``B×cout×1×1`` (linear output)."""
    widths = _widths(nf, size)
    top = widths[-1]
    return nn.Sequential(nn.Conv2d(cin, nf, 4, 2, 1, bias=False),
                         *[ResBlockDown(a, b) for a, b in zip(widths[:-1], widths[1:])],
                         nn.ReLU(inplace=True), nn.Conv2d(top, 2 * top, 4, 1, 0, bias=False),
                         nn.ReLU(inplace=True), nn.Conv2d(2 * top, cout, 1, 1, 0, bias=False))


class Released(nn.Module):
    """A released layout under the released name (``network.<i>.…``), so its state dict
    loads unchanged; encoders' ``B×C×1×1`` outputs are flattened to ``B×C``."""

    def __init__(self, network: nn.Sequential, flatten: bool = False) -> None:
        super().__init__()
        self.network, self.flatten = network, flatten

    @property
    def decoder(self) -> nn.Sequential:
        # DepthNet.start_at zeroes decoder[-1], the last convolution
        return self.network

    def forward(self, image: Tensor) -> Tensor:
        out = self.network(image)
        return out.flatten(1) if self.flatten else out


# ----------------------------------------------------------------------------- the factor nets
class ReleasedViewNet(ViewNet):
    """V in the released layout: ``(tanh(raw) + mean)`` scaled to the view ranges, ``B×6``."""

    def __init__(self, image_size: int, nf: int | None = None, mean: Tensor | None = None):
        super().__init__(image_size, nf)
        self.net = Released(conv_encoder(3, 6, image_size, nf), flatten=True)
        self.register_buffer("mean", torch.zeros(6) if mean is None else mean.float().clone())

    def forward(self, image: Tensor) -> Tensor:
        return (self.net(image).tanh() + self.mean) * self.scale


class ReleasedLightNet(LightNet):
    """L in the released layout: ``tanh(raw) + mean``, then (ambient, diffuse)/2 + 1/2 and
    the direction as is, ``B×4``."""

    def __init__(self, image_size: int, nf: int | None = None, mean: Tensor | None = None):
        super().__init__(image_size, nf)
        self.net = Released(conv_encoder(3, 4, image_size, nf), flatten=True)
        self.register_buffer("mean", torch.zeros(4) if mean is None else mean.float().clone())

    def forward(self, image: Tensor) -> Tensor:
        out = self.net(image).tanh() + self.mean
        return torch.cat([out[:, :2] / 2 + 0.5, out[:, 2:]], 1)


def paper_nets(image_size: int, view_mean: Tensor | None = None,
               light_mean: Tensor | None = None) -> Nets:
    """Fresh D, A, V, L in the released layout at the paper's width for ``image_size``."""
    depth, albedo = DepthNet(image_size), AlbedoNet(image_size)
    depth.net = Released(ed_deconv(3, 1, image_size))
    albedo.net = Released(ed_deconv(3, 3, image_size))
    return Nets(depth, albedo, ReleasedViewNet(image_size, mean=view_mean),
                ReleasedLightNet(image_size, mean=light_mean))


def load_nets(state: dict, device: torch.device | str = "cpu") -> Nets:
    """The nets of a :meth:`~g2s_lite.nets.Nets.state_dict` in either layout, the book's or
    the released one (:func:`paper_nets`)."""
    return Nets.from_state(state, device, build=lambda size, nf: paper_nets(size))


def paper_encoder(image_size: int, style_dim: int = 512) -> Released:
    """A fresh latent encoder E in the released layout: image → ``B×style_dim``."""
    return Released(res_encoder(3, style_dim, image_size), flatten=True)


def offset_encoder(encoder: Released, G, f1_d: int, relative: bool = True):
    """E as a :class:`~g2s_lite.invert.LatentOffsetEncoder` for ``G`` with the released
    tail: the offset enters before module ``n_mlp − F1_d`` of ``[PixelNorm, linear × n_mlp]``
    (so F1_d = 2 carries it through three linear layers, and F1_d = 8 through the pixel norm
    and all eight), as the released code counts. ``encoder`` is used, not copied."""
    from .invert import LatentOffsetEncoder

    if not 1 <= f1_d <= G.n_mlp:
        raise ValueError(f"f1_d must be in 1…{G.n_mlp} (this GAN's mapping layers), got {f1_d}")
    # built at the smallest size: its own encoder is replaced at once
    wrapped = LatentOffsetEncoder(G, f1_d, ENCODER_NF, relative, image_size=64)
    wrapped.encoder = encoder.to(G.device)
    wrapped.start = G.n_mlp - f1_d
    with torch.no_grad():
        zeros = torch.zeros(1, G.style_dim, device=G.device, dtype=G.dtype)
        wrapped.center_h = G.mapping(zeros, 0, wrapped.start)
    return wrapped
