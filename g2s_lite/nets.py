"""The small networks of the method — Chapters 2 and 5.

Four networks factor an image into the renderer's inputs, as in the paper (which takes them
from Unsup3d): the depth net D and the albedo net A are encoder–decoders, the view net V and
the light net L are encoders. Each wrapper turns raw outputs into the renderer's units:

- depth: d = min + (max − min)·(tanh(raw − mean(raw)) + 1)/2, with a thin border held at a
  fixed background depth (the paper does both: the mean removal lets tanh use its whole
  range, the border stops the surface from curling at the image edge);
- albedo: tanh, in [−1, 1];
- view: tanh scaled to ±60° rotations and ±0.1 sideways/vertical translations, none in
  depth (the paper's configurations; :mod:`~g2s_lite.paper`);
- light: ambient and diffuse strengths in [0, 1] (tanh/2 + 1/2), direction (dx, dy) in [−1, 1].

The latent encoder E (step 2) is a residual encoder that maps an image to a vector of the
GAN's ``style_dim``.

Widths: the paper uses ``nf = max(4096 // image_size, 16)`` channels at the first layer (64 for
64-pixel images); every constructor takes ``nf`` to trade quality for speed on a CPU.
GroupNorm uses 4 channels per group at every width, as the paper's networks do.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .paper import (LR, MAX_DEPTH, MIN_DEPTH, ROTATION_RANGE_DEG, WEIGHT_DECAY,
                    XY_TRANSLATION_RANGE, Z_TRANSLATION_RANGE, paper_width)
from .runtime import seeded


def adam(params, lr: float = LR) -> torch.optim.Adam:
    """The optimiser of all the method's networks: Adam (0.9, 0.999) with the paper's
    weight decay.

    ``params``: parameters, or parameter groups (dicts with ``"params"``). The update runs
    fused — one kernel over all the tensors — on the devices torch has that kernel for (the
    CPU, CUDA): three to seven times faster on a CPU than its loop over the tensors, and the
    same update up to rounding.
    """
    groups = [dict(g, params=list(g["params"])) if isinstance(g, dict) else g for g in params]
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = bool(tensors) and all(p.device.type in _FUSED_ADAM_DEVICES and
                                  p.is_floating_point() for p in tensors)
    return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY,
                            fused=fused or None)


#: Where torch's Adam has a fused kernel that :func:`adam` uses.
_FUSED_ADAM_DEVICES = ("cpu", "cuda")


def size_levels(image_size: int) -> int:
    """How many resolution levels an ``S×S`` image has above 64 px (S = 64·2^levels); other
    sizes are refused."""
    extra = math.log2(image_size) - 6
    if image_size < 64 or extra != int(extra):
        raise ValueError(f"the networks take square images of 64, 128, 256, … pixels, got "
                         f"{image_size}; resize the image first")
    return int(extra)


class CoveringConv2d(nn.Conv2d):
    """A convolution whose kernel covers its whole unpadded input (4×4 on a 4×4 map, 1×1 on
    a 1×1 map: the bottlenecks), computed as the matrix product it is.

    The same layer, parameters and state dict as ``nn.Conv2d``, and the same numbers up to
    rounding; a CPU's convolution routines take several times longer on it (18 ms of the
    latent encoder's 53 ms forward and backward, as a convolution). Other input sizes take
    the convolution.
    """

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.kernel_size or self.padding != (0, 0) or self.groups != 1:
            return super().forward(x)
        return F.linear(x.flatten(1), self.weight.flatten(1), self.bias)[..., None, None]


class CoveringConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution of a 1×1 map (the decoders' first layer), computed as the
    matrix product it is: each input vector times the ``in × (out·k·k)`` kernel. The same
    layer and numbers (up to rounding) as ``nn.ConvTranspose2d``; other inputs take it."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if (tuple(x.shape[-2:]) != (1, 1) or output_size is not None or self.groups != 1
                or self.padding != (0, 0) or self.output_padding != (0, 0)):
            return super().forward(x, output_size)
        out = (x.flatten(1) @ self.weight.flatten(1)).view(-1, *self.weight.shape[1:])
        return out if self.bias is None else out + self.bias[:, None, None]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 4), channels)


def _down(cin: int, cout: int, norm: bool = True) -> list[nn.Module]:
    """4×4 stride-2 convolution: halves the resolution."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False)]
    return layers + ([_norm(cout)] if norm else []) + [nn.LeakyReLU(0.2, inplace=True)]


def _up(cin: int, cout: int) -> list[nn.Module]:
    """4×4 stride-2 transposed convolution and a 3×3 convolution: doubles the resolution."""
    return [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False), _norm(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), _norm(cout), nn.ReLU(inplace=True)]


class EncoderDecoder(nn.Module):
    """Image ``B×cin×S×S`` → map ``B×cout×S×S`` through a ``zdim`` bottleneck.

    Encoder: stride-2 convolutions S → 4, then 4×4 → 1×1. Decoder: 1×1 → 4×4, transposed
    convolutions up to S/2, nearest upsampling to S and 5×5 convolutions to smooth it.
    """

    def __init__(self, cin: int, cout: int, image_size: int = 64, nf: int | None = None,
                 zdim: int = 256) -> None:
        super().__init__()
        extra = size_levels(image_size)
        nf = paper_width(image_size) if nf is None else nf
        widths = [nf * 2**i for i in range(4 + extra)]  # channels at S/2, S/4, …, 4
        enc: list[nn.Module] = _down(cin, widths[0])
        for a, b in zip(widths[:-1], widths[1:]):
            enc += _down(a, b)
        enc += [CoveringConv2d(widths[-1], zdim, 4, bias=False), nn.ReLU(inplace=True)]
        dec: list[nn.Module] = [
            CoveringConvTranspose2d(zdim, widths[-1], 4, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(widths[-1], widths[-1], 3, padding=1, bias=False), nn.ReLU(inplace=True)]
        for a, b in zip(widths[::-1][:-1], widths[::-1][1:]):
            dec += _up(a, b)
        dec += [nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(nf, nf, 3, padding=1, bias=False), _norm(nf), nn.ReLU(inplace=True),
                nn.Conv2d(nf, nf, 5, padding=2, bias=False), _norm(nf), nn.ReLU(inplace=True),
                nn.Conv2d(nf, cout, 5, padding=2, bias=False)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    def forward(self, image: Tensor) -> Tensor:
        return self.decoder(self.encoder(image))


class Encoder(nn.Module):
    """Image ``B×cin×S×S`` → vector ``B×cout`` (stride-2 convolutions, no normalisation)."""

    def __init__(self, cin: int, cout: int, image_size: int = 64, nf: int | None = None) -> None:
        super().__init__()
        extra = size_levels(image_size)
        nf = paper_width(image_size) if nf is None else nf
        widths = [nf * 2**i for i in range(4 + extra)]
        layers: list[nn.Module] = _down(cin, widths[0], norm=False)
        for a, b in zip(widths[:-1], widths[1:]):
            layers += _down(a, b, norm=False)
        layers += [CoveringConv2d(widths[-1], widths[-1], 4, bias=False), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = CoveringConv2d(widths[-1], cout, 1, bias=False)

    def forward(self, image: Tensor) -> Tensor:
        return self.head(self.features(image)).flatten(1)


class _ResBlockDown(nn.Module):
    """Pre-activation residual block that halves the resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        return self.skip(F.avg_pool2d(x, 2)) + h


# ----------------------------------------------------------------------------- the factors
class DepthNet(nn.Module):
    """D: image ``B×3×S×S`` → canonical depth ``B×S×S`` in [min_depth, max_depth]."""

    def __init__(self, image_size: int = 64, nf: int | None = None, min_depth: float = MIN_DEPTH,
                 max_depth: float = MAX_DEPTH, border: int = 2) -> None:
        super().__init__()
        self.net = EncoderDecoder(3, 1, image_size, nf)
        self.min_depth, self.max_depth, self.border = min_depth, max_depth, border
        # the paper's border depth: 70% of the way to max_depth
        self.border_depth = 0.7 * max_depth + 0.3 * min_depth
        self.register_buffer("base", None)  # the prior in tanh space, see start_at
        self.register_buffer("border_map", None)  # the border's depth after start_at

    def start_at(self, prior: Tensor) -> "DepthNet":
        """Make D output ``prior`` (``S×S``) exactly, for every image, before any training.

        The prior joins the net's raw output in tanh space (``raw − mean(raw) + base``,
        base = atanh of the prior's place in [min, max]) and the last layer is zeroed, so
        the raw output starts at 0. The paper instead fits D to the prior with 1000 Adam
        steps (:func:`init_depth_to_prior`); both start from the same shape, this one
        without the fitting error and its ripples, and at no cost.

        The border is then held at the prior's own depth there instead of the fixed 1.04:
        a frame standing in front of the prior's background would, once turned, cover the
        edge of the object. With the ellipsoid (background
        1.02) this lowered step 3's normal error with ideal samples on 3 of 4 tuning faces.
        """
        self.border_map = prior.detach().reshape(1, *prior.shape[-2:]).clone()
        unit = (prior.detach() - self.min_depth) / (self.max_depth - self.min_depth)
        self.base = torch.atanh((2 * unit - 1).clamp(-0.999, 0.999)).reshape(1, *prior.shape[-2:])
        nn.init.zeros_(self.net.decoder[-1].weight)
        return self

    def forward(self, image: Tensor) -> Tensor:
        raw = self.net(image)[:, 0]
        raw = raw - raw.mean((1, 2), keepdim=True)
        if self.base is not None:
            raw = raw + self.base.to(raw)
        depth = self.min_depth + (self.max_depth - self.min_depth) * (raw.tanh() + 1) / 2
        if self.border > 0:
            edge = torch.ones_like(depth, dtype=torch.bool)
            b = self.border
            edge[:, b:-b, b:-b] = False
            held = (torch.full_like(depth, self.border_depth) if self.border_map is None
                    else self.border_map.to(depth).expand_as(depth))
            depth = torch.where(edge, held, depth)
        return depth


class AlbedoNet(nn.Module):
    """A: image ``B×3×S×S`` → canonical albedo ``B×3×S×S`` in [−1, 1]."""

    def __init__(self, image_size: int = 64, nf: int | None = None) -> None:
        super().__init__()
        self.net = EncoderDecoder(3, 3, image_size, nf)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image).tanh()


class ViewNet(nn.Module):
    """V: image → view ``B×6`` (radians, world units). Starts at the identity view: its last
    layer is zero-initialised, so a fresh net predicts (0, …, 0)."""

    def __init__(self, image_size: int = 64, nf: int | None = None,
                 rotation_range_deg: float = ROTATION_RANGE_DEG,
                 xy_range: float = XY_TRANSLATION_RANGE,
                 z_range: float = Z_TRANSLATION_RANGE) -> None:
        super().__init__()
        self.net = Encoder(3, 6, image_size, nf)
        nn.init.zeros_(self.net.head.weight)
        r = math.radians(rotation_range_deg)
        self.register_buffer("scale", torch.tensor([r, r, r, xy_range, xy_range, z_range]))

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image).tanh() * self.scale


class LightNet(nn.Module):
    """L: image → light ``B×4`` (ambient, diffuse, dx, dy). Starts at the canonical light
    (0.5, 0.5, 0, 0) — frontal — because its last layer is zero-initialised."""

    def __init__(self, image_size: int = 64, nf: int | None = None) -> None:
        super().__init__()
        self.net = Encoder(3, 4, image_size, nf)
        nn.init.zeros_(self.net.head.weight)

    def forward(self, image: Tensor) -> Tensor:
        out = self.net(image).tanh()
        return torch.cat([out[:, :2] / 2 + 0.5, out[:, 2:]], 1)


class LatentEncoder(nn.Module):
    """E: image ``B×3×S×S`` → latent vector ``B×style_dim`` (residual encoder, linear output)
    used by step 2 to predict latent offsets."""

    def __init__(self, style_dim: int, image_size: int = 64, nf: int = 32) -> None:
        super().__init__()
        extra = size_levels(image_size)
        widths = [nf * 2**i for i in range(4 + extra)]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 4, stride=2, padding=1, bias=False)]
        layers += [_ResBlockDown(a, b) for a, b in zip(widths[:-1], widths[1:])]
        layers += [nn.ReLU(), CoveringConv2d(widths[-1], 2 * widths[-1], 4, bias=False),
                   nn.ReLU(), CoveringConv2d(2 * widths[-1], style_dim, 1, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image).flatten(1)


def init_depth_to_prior(depth_net: DepthNet, image: Tensor, prior: Tensor, steps: int = 1000,
                        lr: float = LR, progress: bool = True) -> list[float]:
    """Train D so that D(image) ≈ prior (mean squared error), as the paper does before step 1.

    Args:
        depth_net: the depth net to train (in place).
        image: ``1×3×S×S`` (or ``B×3×S×S`` sharing one prior).
        prior: ``S×S`` (or ``B×S×S``) target depth.
        steps, lr: Adam schedule (the paper: 1000 steps at 1e-4).
        progress: show a progress bar.

    Returns:
        The loss after each step.

    The depth net centres its raw output before the tanh, so it cannot match every prior
    exactly: the error it settles at is mostly a constant depth offset (about 0.01 for the
    ellipsoid), which changes neither the shape nor its SIDE.
    """
    from tqdm.auto import trange

    target = prior.to(image).expand(image.shape[0], *prior.shape[-2:])
    opt = adam(depth_net.parameters(), lr)
    history = []
    for _ in trange(steps, desc="fit D to the prior", disable=not progress, leave=False):
        loss = F.mse_loss(depth_net(image), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


# ----------------------------------------------------------------------------- the four nets
@dataclass
class Nets:
    """The four networks that factor an image (Chapter 2): depth D, albedo A, view V, light L."""

    depth: DepthNet
    albedo: AlbedoNet
    view: ViewNet
    light: LightNet

    @classmethod
    def create(cls, image_size: int, nf: int | None, seed: int = 0,
               device: torch.device | str = "cpu", prior: Tensor | None = None) -> "Nets":
        """Fresh nets, seeded; with ``prior`` (``S×S``) D starts exactly at it
        (:meth:`DepthNet.start_at`)."""
        with seeded(seed):
            nets = cls(DepthNet(image_size, nf).to(device), AlbedoNet(image_size, nf).to(device),
                       ViewNet(image_size, nf).to(device), LightNet(image_size, nf).to(device))
        if prior is not None:
            nets.depth.start_at(prior.to(device))
        return nets

    def parameters(self) -> list[nn.Parameter]:
        return [p for name in NET_NAMES for p in getattr(self, name).parameters()]

    def to(self, device: torch.device | str) -> "Nets":
        """Move the four nets to ``device`` (in place, as ``nn.Module.to``); returns self."""
        for name in NET_NAMES:
            getattr(self, name).to(device)
        return self

    # ---- on disk: one format, read by every file that holds nets ----------------------
    def state_dict(self, half: bool = False) -> dict:
        """The four nets as one self-describing dict: ``{"image_size", "nf", "layout",
        "state": {name: state dict}}`` (names from :data:`NET_NAMES`; ``layout`` "book" for
        these nets, "released" for :func:`~g2s_lite.released.paper_nets`), everything
        :meth:`from_state` needs to build them again. ``half``: weights at half precision
        (:func:`module_state`).

        The size and width are read off V's layers: its first convolution has ``nf``
        channels, and its stride-2 convolutions take the image down to 4 pixels.

        >>> state = Nets.create(64, 16).state_dict()
        >>> state["image_size"], state["nf"], state["layout"], list(state["state"])
        (64, 16, 'book', ['depth', 'albedo', 'view', 'light'])
        """
        convs = [m for m in self.view.modules() if isinstance(m, nn.Conv2d)]
        halvings = sum(m.stride == (2, 2) for m in convs)
        return {"image_size": 4 * 2**halvings, "nf": convs[0].out_channels,
                "layout": "book" if isinstance(self.view.net, Encoder) else "released",
                "state": {name: module_state(getattr(self, name), half) for name in NET_NAMES}}

    @classmethod
    def from_state(cls, state: dict, device: torch.device | str = "cpu",
                   build=None) -> "Nets":
        """The nets of a :meth:`state_dict` (at full precision, on ``device``). D's prior,
        when it was started at one, comes back with its weights. ``build(image_size, nf)``
        makes the empty nets of another layout than the book's (the released one:
        :func:`g2s_lite.released.load_nets` passes it, since that module builds on this one).

        >>> nets = Nets.create(64, 16, seed=1)
        >>> back = Nets.from_state(nets.state_dict())
        >>> image = torch.zeros(1, 3, 64, 64)
        >>> torch.equal(back.depth(image), nets.depth(image))
        True
        """
        size, layout, nets_state = state["image_size"], state["layout"], state["state"]
        if layout == "book":
            nets = cls.create(size, state["nf"], 0, device)
        elif build is not None:
            nets = build(size, state["nf"]).to(device)
        elif layout == "released":
            raise ValueError("these nets are in the paper's released layout: read them with "
                             "g2s_lite.released.load_nets(state)")
        else:
            raise ValueError(f"unknown nets layout {layout!r}: this file was written by another "
                             "version of g2s_lite (layouts known here: book, released)")
        prior = nets_state["depth"].get("border_map")
        if prior is not None:  # creates D's prior buffers, which the state then fills
            nets.depth.start_at(prior.to(device))
        for name in NET_NAMES:
            getattr(nets, name).load_state_dict(nets_state[name])
        return nets

    def save(self, path: str | Path, half: bool = False, **extra) -> Path:
        """Write ``{"nets": self.state_dict(half), **extra}`` to ``path`` atomically
        (:func:`save_file`): ``extra`` is what the file keeps beside the nets (tensors,
        numbers, strings, lists and dicts of them, so that it loads with
        ``weights_only=True``)."""
        if "nets" in extra:
            raise ValueError("'nets' is the nets' own entry; name the extra entry otherwise")
        return save_file({**extra, "nets": self.state_dict(half)}, path)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "Nets":
        """The nets of a file written by :meth:`save` (the rest of the file:
        ``torch.load(path, weights_only=True)``).

        >>> import tempfile
        >>> path = Nets.create(64, 16).save(Path(tempfile.mkdtemp()) / "nets.pt", note="x")
        >>> Nets.load(path).state_dict()["nf"], torch.load(path, weights_only=True)["note"]
        (16, 'x')
        """
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or "nets" not in blob:
            raise ValueError(f"{path} holds no nets (no 'nets' entry): write one with "
                             "Nets.save")
        return cls.from_state(blob["nets"], device)


def module_state(module: nn.Module, half: bool = False) -> dict[str, Tensor]:
    """``module``'s state dict, with its weights at half precision when ``half`` (half the
    bytes; loading copies them back into full-precision weights). Buffers stay exact: V's
    ranges and D's prior are constants (60° would come back as 59.98°)."""
    state = module.state_dict()
    if not half:
        return state
    weights = {n for n, _ in module.named_parameters()}
    return {n: t.half() if n in weights else t for n, t in state.items()}


def save_file(blob: dict, path: str | Path) -> Path:
    """``torch.save(blob)`` to ``path`` (its folder made if need be) by way of a ``.partial``
    file renamed over it: a run stopped while writing leaves the previous file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(blob, partial)
    os.replace(partial, path)
    return path


#: The four nets' names, in the order of :class:`Nets`' fields: the one list every module
#: (files on disk, stacking, the released files' keys) reads.
NET_NAMES = tuple(f.name for f in fields(Nets))


# ----------------------------------------------------------------------------- several images
class Stacked(nn.Module):
    """K copies of one kind of net (one per image, each with its own weights) used as one:
    input ``(K·B)×…`` (image k's B rows together) → output ``(K·B)×…``, row block k through
    copy k. One optimiser over :meth:`parameters` then trains every copy as its own (Adam
    works element by element), given a loss that sums the images' own losses.

    ``vectorize``: one call for all copies (``torch.func.vmap`` over the stacked weights:
    fewer, larger kernels, what a GPU wants; a grouped convolution underneath, equal to the
    copies' own outputs up to rounding); otherwise each copy in turn on its rows (exactly
    the copies' own numbers; on a CPU no slower).
    """

    def __init__(self, nets: list[nn.Module], vectorize: bool = False) -> None:
        super().__init__()
        self.copies = nn.ModuleList(nets)
        self.vectorize = vectorize

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.copies)
        if len(x) % k:
            raise ValueError(f"{len(x)} rows cannot be shared by {k} nets: give each image's "
                             "net the same number of rows, image by image")
        if not self.vectorize:
            return torch.cat([net(part) for net, part in zip(self.copies, x.chunk(k))])
        # stacked in the graph, so that the gradients reach every copy's own weights
        params = {name: torch.stack([dict(c.named_parameters())[name] for c in self.copies])
                  for name, _ in self.copies[0].named_parameters()}
        buffers = {name: torch.stack([dict(c.named_buffers())[name] for c in self.copies])
                   for name, _ in self.copies[0].named_buffers()}
        base = self.copies[0]

        def one(p, b, rows):
            return torch.func.functional_call(base, (p, b), (rows,))

        out = torch.func.vmap(one)(params, buffers, x.reshape(k, -1, *x.shape[1:]))
        return out.flatten(0, 1)
