"""StyleGAN2 in pure PyTorch — Chapter 3, the GAN image manifold.

GAN2Shape asks a pre-trained StyleGAN2 for images of one object under many views and
lights. This module is that StyleGAN2, one readable file with no compiled operators, and it
reads the checkpoint format in which the paper's models are published (the community
``rosinality/stylegan2-pytorch`` layout: ``{"g_ema": generator, "d": discriminator}``).
Read top to bottom, it builds the model in the order the chapter does:

1. equalized learning rate: layers store N(0, 1) weights and scale them at run time;
2. the mapping network z → w: a pixel norm, then ``n_mlp`` fully connected layers;
3. FIR resampling (``upfirdn2d``): zero-insertion upsampling, a [1, 3, 3, 1] blur, striding;
4. the modulated convolution: w scales the input channels of the kernel (modulation), the
   result is renormalised per output channel (demodulation), one grouped conv per batch;
5. synthesis: a learned 4×4 constant, two styled convolutions per resolution with noise,
   and a skip architecture that sums the RGB output of every resolution;
6. the discriminator: residual blocks with blurred downsampling, minibatch standard
   deviation, and a small head; its block outputs serve the discriminator-feature loss;
7. loading and saving checkpoints, with the architecture read off the tensors' shapes.

Shapes: ``z`` and ``w`` are ``B×style_dim``; a per-layer latent ("w+") is
``B×n_latent×style_dim``; images are ``B×3×size×size``, roughly in [-1, 1].

The numbers are those of the reference implementation (``rosinality/stylegan2-pytorch``,
``model.py``, with its CPU fallbacks for ``fused_leaky_relu`` and ``upfirdn2d``):
``tests/test_gan.py`` compares with outputs it produced, to 1e-5 of their scale.

>>> G = Generator(16, style_dim=8, n_mlp=2, channels={4: 6, 8: 5, 16: 4})
>>> G(torch.randn(2, 8)).shape
torch.Size([2, 3, 16, 16])
>>> D = Discriminator(16, channels={4: 6, 8: 5, 16: 4})
>>> D(torch.randn(2, 3, 16, 16)).shape
torch.Size([2, 1])
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Generator", "Discriminator", "StyleGAN2ShapeError", "load_stylegan2",
           "save_stylegan2"]

# The low-pass filter of every resampling step, as 1D taps (the 2D filter is their outer
# product, normalised to sum 1).
BLUR_KERNEL = (1, 3, 3, 1)
LRELU_SLOPE = 0.2
# Leaky ReLU halves (roughly) the second moment of a unit Gaussian; sqrt(2) restores it, so
# activations keep unit scale through the network without any normalisation layer.
LRELU_GAIN = math.sqrt(2.0)
# The mapping network learns 100× slower than the rest (StyleGAN's lr_mul = 0.01).
MAPPING_LR_MUL = 0.01
# Guards every rsqrt/sqrt against a zero argument.
EPS = 1e-8
# Minibatch standard deviation: statistics over groups of up to 4 samples, 1 feature map.
STDDEV_GROUP = 4
STDDEV_FEATURES = 1

NoiseMode = Literal["const", "random", "none"]


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """Feature widths per resolution of the standard StyleGAN2 configurations.

    The paper's 128-px models use ``channel_multiplier=1``; the reference default is 2.

    >>> default_channels(1)[128]
    128
    """
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier,
            128: 128 * channel_multiplier, 256: 64 * channel_multiplier,
            512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}


def _log2_size(size: int, who: str) -> int:
    """log2(size), with an error unless size is a power of two ≥ 4."""
    if not (isinstance(size, int) and size >= 4 and size & (size - 1) == 0):
        raise ValueError(f"{who}: size must be a power of two ≥ 4 (4, 8, 16, …), got {size!r}")
    return size.bit_length() - 1


def _widths(channels: Mapping[int, int] | None, size: int, who: str) -> dict[int, int]:
    """The widths of resolutions 4, 8, …, size from ``channels``, checked."""
    channels = default_channels() if channels is None else channels
    needed = [2 ** i for i in range(2, _log2_size(size, who) + 1)]
    missing = [r for r in needed if r not in channels]
    if missing:
        raise ValueError(f"{who}: channels has no width for resolution(s) {missing}; give one "
                         f"for each of {needed}, e.g. {{{', '.join(f'{r}: 32' for r in needed)}}}")
    bad = {r: channels[r] for r in needed if int(channels[r]) < 1}
    if bad:
        raise ValueError(f"{who}: channel widths must be positive integers, got {bad}")
    return {r: int(channels[r]) for r in needed}


# ============================================================ 1. equalized learning rate
def leaky_relu_gain(x: Tensor) -> Tensor:
    """Leaky ReLU (slope 0.2) times sqrt(2): the activation of every StyleGAN2 layer."""
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


class BiasLeakyReLU(nn.Module):
    """Add a per-channel bias (dim 1), then :func:`leaky_relu_gain`.

    The reference fuses both into one CUDA kernel ("FusedLeakyReLU"); the bias is stored as
    ``<name>.bias``, so the layer keeps the name ``activate`` where the checkpoint expects it.
    """

    def __init__(self, channels: int, bias: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """``B×C×…`` → same shape."""
        if self.bias is not None:
            x = x + self.bias.view(1, -1, *([1] * (x.ndim - 2)))
        return leaky_relu_gain(x)


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate.

    The parameter is stored as ``N(0, 1) / lr_mul`` and used as ``weight · lr_mul/sqrt(in)``:
    every layer then starts with unit-variance outputs, and Adam's per-parameter step size
    moves all layers at the same relative speed (scaled by ``lr_mul``). The bias is used as
    ``bias · lr_mul`` for the same reason. With ``activation=True`` the bias is added
    before :func:`leaky_relu_gain`.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        """``…×in_dim`` → ``…×out_dim``."""
        bias = None if self.bias is None else self.bias * self.lr_mul
        if not self.activation:
            return F.linear(x, self.weight * self.scale, bias)
        out = F.linear(x, self.weight * self.scale)
        return leaky_relu_gain(out if bias is None else out + bias)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, "
                f"activation={self.activation}")


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate: weight ``N(0, 1)`` used as ``w/sqrt(fan_in)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor, gain: float = 1.0, bias: Tensor | None = None) -> Tensor:
        """``B×in×H×W`` → ``B×out×H'×W'``, times ``gain``.

        ``bias`` (``out``) is added instead of the layer's own: a following activation's
        bias, added by the convolution itself (see :class:`ConvLayer`)."""
        bias = self.bias if bias is None else bias
        return F.conv2d(x, self.weight * (self.scale * gain),
                        None if bias is None else bias * gain, stride=self.stride,
                        padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


# ============================================================ 2. the mapping network
class PixelNorm(nn.Module):
    """Normalise each latent to unit root-mean-square: ``z / sqrt(mean(z²) + 1e-8)``.

    Over the last dimension (the reference normalises dim 1, the same for ``B×style_dim``).
    """

    def forward(self, z: Tensor) -> Tensor:
        return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + EPS)


def mapping_network(style_dim: int, n_mlp: int, lr_mul: float = MAPPING_LR_MUL) -> nn.Sequential:
    """``[PixelNorm, EqualLinear+lrelu × n_mlp]``: z → w. Module i ≥ 1 is the i-th layer."""
    layers = [EqualLinear(style_dim, style_dim, lr_mul=lr_mul, activation=True)
              for _ in range(n_mlp)]
    return nn.Sequential(PixelNorm(), *layers)


# ============================================================ 3. FIR resampling
def fir_kernel(taps: Sequence[float], gain: float = 1.0) -> Tensor:
    """The 2D filter ``outer(taps, taps) / sum · gain`` (``K×K``).

    After upsampling by zero insertion only one sample in factor² is non-zero, so an
    upsampling filter carries ``gain = factor²`` to keep the image's mean.
    """
    k = torch.as_tensor(taps, dtype=torch.float32)
    k = k[:, None] * k[None, :] if k.ndim == 1 else k
    return k / k.sum() * gain


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample, FIR-filter, downsample, every channel on its own (both axes alike).

    1. upsample by zero insertion: input sample i lands at position ``i·up``, zeros between;
    2. pad ``pad[0]`` zeros before and ``pad[1]`` after (negative values crop);
    3. filter with ``kernel`` as a true convolution — the kernel is flipped before
       ``F.conv2d``, which correlates; this matters for asymmetric kernels only;
    4. keep every ``down``-th sample.

    Every channel on its own is a depthwise (grouped) convolution; folding the channels into
    the batch instead computes the same thing but is ~20× slower backwards on CPUs. Neither
    the zeros of step 1 nor those of step 2 are written out where the convolution can do
    without them (:func:`_upfirdn2d_steps` does all four steps literally, the reference the
    tests hold this to): a symmetric padding is the convolution's own, and an upsampling
    is a transposed convolution with stride ``up``, which skips the products with inserted
    zeros (three in four for ``up=2``).

    Args:
        x: ``B×C×H×W``.
        kernel: ``K×K``.

    Returns:
        ``B×C×H'×W'``, ``H' = (H·up + pad[0] + pad[1] − K) // down + 1``.

    >>> upfirdn2d(torch.ones(1, 1, 4, 4), fir_kernel([1, 3, 3, 1], 4), up=2, pad=(2, 1)).shape
    torch.Size([1, 1, 8, 8])
    """
    c, k = x.shape[1], kernel.shape[0]
    if up > 1 and down == 1:
        # Output n sums x[i]·kernel[n + pad[0] − up·i]; conv_transpose2d sums
        # x[i]·weight[n + p − up·i], so weight = kernel (unflipped), p = K − 1 − pad[0], and
        # output_padding makes up the samples the transposed convolution stops short of.
        p, extra = k - 1 - pad[0], pad[1] - pad[0] + up - 1
        if p >= 0 and 0 <= extra < up:
            weight = kernel.to(x.dtype)[None, None].expand(c, 1, k, k)
            return F.conv_transpose2d(x, weight, stride=up, padding=p, output_padding=extra,
                                      groups=c)
    if up == 1 and pad[0] == pad[1] >= 0:
        weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, k, k)
        return F.conv2d(x, weight, stride=down, padding=pad[0], groups=c)
    return _upfirdn2d_steps(x, kernel, up, down, pad)


def _upfirdn2d_steps(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1,
                     pad: tuple[int, int] = (0, 0)) -> Tensor:
    """:func:`upfirdn2d` step by step: zeros inserted, padded copy, convolution, striding."""
    b, c, h, w = x.shape
    if up > 1:
        x_up = x.new_zeros(b, c, h * up, w * up)
        x_up[:, :, ::up, ::up] = x
        x = x_up
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


class FIRFilter(nn.Module):
    """:func:`upfirdn2d` with a stored kernel (the buffer ``kernel``, part of checkpoints)."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], up: int = 1,
                 gain: float = 1.0, down: int = 1):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps, gain))
        self.pad, self.up, self.down = pad, up, down

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.up, down=self.down, pad=self.pad)

    def extra_repr(self) -> str:
        return (f"size={self.kernel.shape[0]}, pad={self.pad}, up={self.up}"
                + (f", down={self.down}" if self.down > 1 else ""))


def upsample_2x(taps: Sequence[float] = BLUR_KERNEL) -> FIRFilter:
    """Upsample by 2: zero insertion, then the blur (gain 4).

    The zero-inserted signal has 2H samples; padding K−1 in total keeps 2H after the K-tap
    filter, split (K/2, K/2 − 1) so that the filter centres on the new grid.
    """
    p = len(taps) - 2
    return FIRFilter(taps, pad=((p + 1) // 2 + 1, p // 2), up=2, gain=4.0)


def blur_after_transposed_conv(taps: Sequence[float], kernel_size: int) -> FIRFilter:
    """Blur the ``2H + k − 2`` samples a stride-2 transposed conv (kernel k) makes back to 2H."""
    p = (len(taps) - 2) - (kernel_size - 1)
    return FIRFilter(taps, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)


def blur_before_strided_conv(taps: Sequence[float], kernel_size: int, down: int = 1
                             ) -> FIRFilter:
    """Blur before a stride-2 conv (kernel k, no padding) so that it outputs H/2 samples;
    ``down=2`` keeps only the samples a 1×1 conv with stride 2 would read (the conv then
    takes stride 1)."""
    p = (len(taps) - 2) + (kernel_size - 1)
    return FIRFilter(taps, pad=((p + 1) // 2, p // 2), down=down)


# ============================================================ 4. the modulated convolution
class ModulatedConv2d(nn.Module):
    """Convolution whose kernel is scaled, per sample, by a style computed from w.

    For sample b with style ``s = modulation(w_b)`` (one scale per *input* channel, affine
    with bias initialised to 1), the kernel is ``w'[o, i] = scale · weight[o, i] · s[i]``;
    with ``demodulate`` each output channel is renormalised,
    ``w''[o] = w'[o] / sqrt(Σ_{i,kh,kw} w'[o]² + 1e-8)``, so outputs have unit variance again
    (this replaces StyleGAN1's AdaIN without its "droplet" artefacts). With ``upsample`` the
    conv is a stride-2 transposed conv followed by the blur.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        # Parameter/child order fixes the checkpoint's key order: weight, blur, modulation.
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size,
                                               kernel_size))
        if upsample:
            self.blur = blur_after_transposed_conv(blur_kernel, kernel_size)
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.demodulate, self.upsample = demodulate, upsample

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """``x``: ``B×in×H×W``, ``w``: ``B×style_dim`` → ``B×out×H×W`` (2H×2W upsampling)."""
        out, demodulation = self.convolve(x, w)
        return out if demodulation is None else out * demodulation

    def convolve(self, x: Tensor, w: Tensor) -> tuple[Tensor, Tensor | None]:
        """The convolution before demodulation, and the demodulation factors ``B×out×1×1``
        (None without demodulation): ``forward`` is their product, which
        :class:`StyledConv` folds into the next steps.

        Computed without per-sample kernels: scaling the kernel's input channels by s is the
        same as scaling the input by s, and demodulation is a per-sample, per-output-channel
        factor, Σ_{i,kh,kw} (weight[o,i]·s[i])² = Σ_i s[i]²·‖weight[o,i]‖², applied to the
        output (after the blur of an upsampling conv: both act on each channel linearly, so
        they commute). One shared convolution for the whole batch is much faster than a
        grouped one. A 1×1 kernel is the exception: its per-sample kernels are just
        ``B×out×in`` matrices, one batched product that needs no scaled copy of the input.
        """
        b, c_in = x.shape[:2]
        c_out = self.out_channels
        style = self.modulation(w)                                       # B×in
        weight = self.scale * self.weight[0]                             # out×in×k×k
        demodulation = None
        if self.demodulate:
            energy = style.pow(2) @ weight.pow(2).sum([2, 3]).t()        # B×out
            demodulation = torch.rsqrt(energy + EPS).view(b, c_out, 1, 1)
        if self.kernel_size == 1 and not self.upsample:
            per_sample = weight[None, :, :, 0, 0] * style[:, None, :]   # B×out×in
            out = torch.bmm(per_sample, x.reshape(b, c_in, -1))
            return out.view(b, c_out, *x.shape[2:]), demodulation
        x = x * style.view(b, c_in, 1, 1)
        if self.upsample:
            # transposed convolutions take in×out weights
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.kernel_size // 2)
        return out, demodulation

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, {self.kernel_size}, "
                f"demodulate={self.demodulate}, upsample={self.upsample}")


class NoiseInjection(nn.Module):
    """``x + weight · noise``: one noise map shared by all channels, with a learned strength."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None) -> Tensor:
        """``noise``: ``B×1×H×W`` or ``1×1×H×W``; ``None`` adds nothing."""
        return x if noise is None else x + self.weight * noise


class StyledConv(nn.Module):
    """Modulated conv → noise → bias + leaky ReLU: one synthesis layer."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = BiasLeakyReLU(out_channels)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None = None) -> Tensor:
        """``B×in×H×W`` → ``B×out×H×W`` (2H×2W if upsampling).

        The three modules in two passes over the output instead of six: leaky ReLU commutes
        with positive factors, so ``lrelu(out·d + s·noise + bias)·√2`` is
        ``lrelu(out·(d·√2) + (s·noise + bias)·√2)``, one multiply-add and one in-place
        activation (the same numbers up to rounding).
        """
        out, demodulation = self.conv.convolve(x, w)
        shift = self.activate.bias.view(1, -1, 1, 1)
        if noise is not None:
            shift = shift + self.noise.weight * noise
        out = torch.addcmul(shift * LRELU_GAIN, out, demodulation * LRELU_GAIN)
        return F.leaky_relu_(out, LRELU_SLOPE)


class ToRGB(nn.Module):
    """Modulated 1×1 conv to 3 channels (no demodulation) + bias, plus the upsampled skip image."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = upsample_2x(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        """``x``: ``B×C×H×W``; ``skip``: ``B×3×H/2×W/2`` or None → ``B×3×H×W``."""
        out = self.conv(x, w) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ConstantInput(nn.Module):
    """The learned ``1×C×4×4`` tensor the synthesis starts from (stored as ``input.input``)."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.repeat(batch, 1, 1, 1)


# ============================================================ 5. synthesis: the generator
class Generator(nn.Module):
    """StyleGAN2 generator: ``G(z) = synthesis(mapping(z))``.

    Synthesis layers and the latent (w+) index each one reads, for ``log2(size) = L``
    (``n_latent = 2L − 2`` latents, ``num_layers = 2L − 3`` noise maps):

    ============================  ==========  =============  ===========
    layer                         resolution  latent index   noise map
    ============================  ==========  =============  ===========
    ``conv1``                     4           0              0
    ``to_rgb1``                   4           1              –
    ``convs[2k]`` (upsampling)    2^(k+3)     2k + 1         2k + 1
    ``convs[2k+1]``               2^(k+3)     2k + 2         2k + 2
    ``to_rgbs[k]``                2^(k+3)     2k + 3         –
    ============================  ==========  =============  ===========

    so each ToRGB shares its latent with the next block's upsampling conv (as in the
    official StyleGAN2). Style mixing = a w+ whose rows switch from one w to another.

    Args:
        size: output resolution, a power of two ≥ 4.
        style_dim: dimension of z and w.
        n_mlp: number of fully connected layers of the mapping network.
        channels: feature width per resolution ``{4: …, 8: …, …, size: …}`` (extra entries
            are ignored); default: the reference's widths with channel multiplier 2.
        lr_mlp: learning-rate multiplier of the mapping network.
        blur_kernel: 1D taps of the resampling filter.
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8,
                 channels: Mapping[int, int] | None = None, lr_mlp: float = MAPPING_LR_MUL,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        log_size = _log2_size(size, "Generator")
        if style_dim < 1 or n_mlp < 0:
            raise ValueError(f"Generator: need style_dim ≥ 1 and n_mlp ≥ 0, "
                             f"got {style_dim}, {n_mlp}")
        self.channels = _widths(channels, size, "Generator")
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.n_latent = 2 * log_size - 2
        self.num_layers = 2 * log_size - 3

        # Attribute names and their order are the checkpoint's key names and order.
        self.style = mapping_network(style_dim, n_mlp, lr_mlp)
        width = self.channels[4]
        self.input = ConstantInput(width)
        self.conv1 = StyledConv(width, width, 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(width, style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for res in (2 ** i for i in range(3, log_size + 1)):
            out = self.channels[res]
            self.convs.append(StyledConv(width, out, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out, out, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out, style_dim, blur_kernel=blur_kernel))
            width = out
        # Fixed noise maps for noise_mode="const" (checkpoints carry them).
        self.noises = nn.Module()
        for i, res in enumerate(self.noise_resolutions()):
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        # The mean w, once mean_latent() computed it: the default centre of truncation.
        # Not persistent, so state dicts keep exactly the checkpoint's keys.
        self.register_buffer("w_avg", None, persistent=False)

    @property
    def device(self) -> torch.device:
        """Where the generator's weights are (and so where its inputs must be)."""
        return self.input.input.device

    @property
    def dtype(self) -> torch.dtype:
        """The generator's floating-point type."""
        return self.input.input.dtype

    def noise_resolutions(self) -> list[int]:
        """Resolution of noise map i: 4, 8, 8, 16, 16, …, size, size."""
        return [2 ** ((i + 5) // 2) for i in range(self.num_layers)]

    # ------------------------------------------------------------------ mapping
    def mapping(self, x: Tensor, start: int = 0, stop: int | None = None) -> Tensor:
        """Apply modules ``start … stop−1`` of ``[PixelNorm, linear_1, …, linear_n_mlp]``.

        ``mapping(mapping(z, 0, k), k) == mapping(z)``: GAN2Shape adds its latent offsets
        at a hidden layer k and lets the last layers carry them back onto the W manifold.

        Args:
            x: ``…×style_dim`` (z when ``start == 0``, a hidden activation otherwise).
        """
        n = len(self.style)
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise ValueError(f"mapping(start={start}, stop={stop}): need "
                             f"0 ≤ start ≤ stop ≤ {n} (module 0 is the pixel norm, "
                             f"1…{n - 1} the linear layers)")
        if x.shape[-1] != self.style_dim:
            raise ValueError(f"mapping: input must end in style_dim={self.style_dim}, "
                             f"got shape {tuple(x.shape)}")
        for layer in self.style[start:stop]:
            x = layer(x)
        return x

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> Tensor:
        """Mean w of ``n`` random z (same seed, same result); stored as the truncation centre.

        Returns:
            ``1×style_dim``.
        """
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen)
        self.w_avg = self.mapping(z.to(self.device, self.dtype)).mean(0, keepdim=True)
        return self.w_avg

    # ------------------------------------------------------------------ synthesis
    def _noise_maps(self, mode: str, batch: int, like: Tensor) -> list[Tensor | None]:
        if mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if mode == "random":
            return [torch.randn(batch, 1, r, r, device=like.device, dtype=like.dtype)
                    for r in self.noise_resolutions()]
        if mode == "none":
            return [None] * self.num_layers
        raise ValueError(f"noise_mode must be 'const' (stored noise maps), 'random' (fresh "
                         f"noise) or 'none' (no noise), got {mode!r}")

    def synthesis(self, w: Tensor, noise_mode: NoiseMode = "const") -> Tensor:
        """w (or w+) → image.

        Args:
            w: ``B×style_dim`` (one w for all layers) or ``B×n_latent×style_dim`` (w+).
            noise_mode: ``"const"`` the stored maps ``noises.noise_i`` (deterministic),
                ``"random"`` fresh N(0, 1) maps per sample, ``"none"`` no noise.

        Returns:
            ``B×3×size×size``.
        """
        if w.ndim == 2 and w.shape[1] == self.style_dim:
            w = w.unsqueeze(1).expand(-1, self.n_latent, -1)
        elif w.ndim != 3 or tuple(w.shape[1:]) != (self.n_latent, self.style_dim):
            raise ValueError(f"synthesis: w must be B×{self.style_dim} or "
                             f"B×{self.n_latent}×{self.style_dim} (w+), got {tuple(w.shape)}")
        noise = self._noise_maps(noise_mode, w.shape[0], w)
        out = self.input(w.shape[0])
        out = self.conv1(out, w[:, 0], noise[0])
        image = self.to_rgb1(out, w[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs):
            i = 2 * k + 1
            out = self.convs[i - 1](out, w[:, i], noise[i])
            out = self.convs[i](out, w[:, i + 1], noise[i + 1])
            image = to_rgb(out, w[:, i + 2], image)
        return image

    def forward(self, z: Tensor, truncation: float = 1.0, truncation_latent: Tensor | None = None,
                noise_mode: NoiseMode = "const") -> Tensor:
        """``synthesis(mapping(z))``, optionally truncated: ``w ← c + ψ·(w − c)``.

        Args:
            z: ``B×style_dim`` (or ``B×n_latent×style_dim``, one z per layer).
            truncation: ψ; 1 leaves w alone, 0 gives the image of c, ψ > 1 exaggerates
                (the reference silently ignores ψ > 1; here the formula holds for every ψ).
            truncation_latent: c, ``1×style_dim``; default the stored :meth:`mean_latent`.
        """
        w = self.mapping(z)
        if truncation != 1.0:
            center = self.w_avg if truncation_latent is None else truncation_latent
            if center is None:
                raise ValueError("truncation needs a centre: pass truncation_latent, or call "
                                 "G.mean_latent() once to store the mean w")
            w = center + truncation * (w - center)
        return self.synthesis(w, noise_mode)

    def extra_repr(self) -> str:
        return (f"size={self.size}, style_dim={self.style_dim}, n_mlp={self.n_mlp}, "
                f"channels={self.channels}")


# ============================================================ 6. the discriminator
class ConvLayer(nn.Sequential):
    """[blur] → equalized conv → [bias + leaky ReLU], as a Sequential (checkpoint keys
    ``<name>.0``, ``.1``, …). With ``downsample`` the conv has stride 2, preceded by the blur
    (a 1×1 conv leaves the striding to the blur). The bias lives in the activation when
    there is one."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 downsample: bool = False, bias: bool = True, activate: bool = True,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        layers: list[nn.Module] = []
        stride, padding = (2, 0) if downsample else (1, kernel_size // 2)
        if downsample:
            # A 1×1 conv reads one sample of each 2×2 block: the blur strides in its place
            # and computes a quarter of the samples (the same numbers).
            down = 2 if kernel_size == 1 else 1
            layers.append(blur_before_strided_conv(blur_kernel, kernel_size, down))
            stride //= down
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=stride,
                                  padding=padding, bias=bias and not activate))
        if activate:
            layers.append(BiasLeakyReLU(out_channels, bias=bias))
        super().__init__(*layers)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        """``B×in×H×W`` → ``B×out×H'×W'``, times ``gain``.

        The activation's bias, its √2 and ``gain`` go into the convolution's weight and
        bias (leaky ReLU commutes with positive factors), so one in-place activation is all
        that follows the convolution: the same numbers as the layers in turn, up to rounding.
        """
        layers = list(self)
        activation = layers.pop() if isinstance(layers[-1], BiasLeakyReLU) else None
        conv = layers.pop()
        for blur in layers:
            x = blur(x)
        if activation is None:
            return conv(x, gain)
        return F.leaky_relu_(conv(x, gain * LRELU_GAIN, activation.bias), LRELU_SLOPE)


class ResBlock(nn.Module):
    """Two 3×3 convs (the second halves the resolution) plus a 1×1 downsampling skip
    without bias or activation; the sum is divided by sqrt(2) to keep unit variance."""

    def __init__(self, in_channels: int, out_channels: int,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True,
                               blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False,
                              bias=False, blur_kernel=blur_kernel)

    def forward(self, x: Tensor) -> Tensor:
        """``B×in×H×W`` → ``B×out×H/2×W/2`` (the division folded into both branches)."""
        return self.conv2(self.conv1(x), 1 / math.sqrt(2)) + self.skip(x, 1 / math.sqrt(2))


def channels_last_on_cpu(x: Tensor) -> Tensor:
    """``x`` in the channels-last (NHWC) memory layout on a CPU, unchanged elsewhere.

    The CPU's convolutions (oneDNN) work in that layout natively; given the usual NCHW they
    convert every input and output, which makes the discriminator about 1.5× slower. Only
    the layout changes: the values and shape are the same.
    """
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def minibatch_stddev(x: Tensor, group_size: int = STDDEV_GROUP,
                     n_features: int = STDDEV_FEATURES) -> Tensor:
    """Append the within-group standard deviation as extra feature maps.

    Sample b belongs to group ``b mod (B/G)`` (G = min(group_size, B)): groups are strided,
    not contiguous. For each group: the population std over its G members of every feature
    (+1e-8 under the root), averaged over channels (per feature slice) and pixels. This lets
    D see the variety of a batch, which discourages mode collapse.

    Args:
        x: ``B×C×H×W``, B a multiple of min(group_size, B), C a multiple of n_features.

    Returns:
        ``B×(C + n_features)×H×W``.
    """
    b, c, h, w = x.shape
    g = min(group_size, b)
    if b % g or c % n_features:
        raise ValueError(f"minibatch stddev: batch {b} must be a multiple of the group size "
                         f"{g} (use a batch < {group_size} or a multiple of {group_size}), and "
                         f"channels {c} a multiple of {n_features}")
    y = x.view(g, b // g, n_features, c // n_features, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + EPS)               # B/G×F×C/F×H×W
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)                 # B/G×F×1×1
    return torch.cat([x, y.repeat(g, 1, h, w)], 1)


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: image → one realism score per sample.

    ``convs[0]`` turns RGB into features (1×1 conv); ``convs[1 … L−2]`` are residual blocks,
    each halving the resolution from ``size`` down to 4; then the minibatch standard
    deviation, a 3×3 conv and two fully connected layers.

    Args:
        size: input resolution, a power of two ≥ 4.
        channels: width per resolution, as for :class:`Generator`.
        blur_kernel: 1D taps of the downsampling filter.
    """

    def __init__(self, size: int, channels: Mapping[int, int] | None = None,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        log_size = _log2_size(size, "Discriminator")
        self.channels = _widths(channels, size, "Discriminator")
        self.size = size
        ch = self.channels
        blocks: list[nn.Module] = [ConvLayer(3, ch[size], 1)]
        for i in range(log_size, 2, -1):
            blocks.append(ResBlock(ch[2 ** i], ch[2 ** (i - 1)], blur_kernel))
        self.convs = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(ch[4] + STDDEV_FEATURES, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation=True),
            EqualLinear(ch[4], 1))

    @property
    def n_blocks(self) -> int:
        """Number of residual blocks (``log2(size) − 2``)."""
        return len(self.convs) - 1

    def _check(self, image: Tensor) -> None:
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, self.size, self.size):
            raise ValueError(f"Discriminator: image must be B×3×{self.size}×{self.size}, got "
                             f"{tuple(image.shape)}; resize it (F.interpolate) to the GAN's size")

    def forward(self, image: Tensor) -> Tensor:
        """``B×3×size×size`` → ``B×1`` scores (B < 4 or a multiple of 4)."""
        self._check(image)
        out = minibatch_stddev(self.convs(channels_last_on_cpu(image)))
        out = self.final_conv(out)
        return self.final_linear(out.flatten(1))

    def features(self, image: Tensor, n: int) -> list[Tensor]:
        """Outputs of the first ``n`` residual blocks (after the from-RGB layer).

        The discriminator-feature loss of GAN2Shape's step 2 compares these (n = 4). The
        blocks are convolutions, so ``image`` may be smaller than ``size``, as the official
        code feeds its 256-px D the 128-px images: ``B×3×H×W``, H and W multiples of 2^n.

        Returns:
            n tensors, the j-th ``B×channels[size/2^j]×H/2^j×W/2^j`` (j = 1 … n).
        """
        if not 0 <= n <= self.n_blocks:
            raise ValueError(f"features: n must be in 0…{self.n_blocks}, the number of residual "
                             f"blocks of a {self.size}-px discriminator, got {n}")
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[-1] % 2 ** n \
                or image.shape[-2] % 2 ** n:
            raise ValueError(f"Discriminator.features: image must be B×3×H×W with H and W "
                             f"multiples of 2^{n}, got {tuple(image.shape)}")
        out = self.convs[0](channels_last_on_cpu(image))
        feats = []
        for block in self.convs[1:n + 1]:
            out = block(out)
            feats.append(out)
        return feats

    def extra_repr(self) -> str:
        return f"size={self.size}, channels={self.channels}"


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Within the block the modules' parameters take no gradient (we optimise latents or an
    encoder, never the GAN); their ``requires_grad`` flags are restored afterwards."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


# ============================================================ 7. checkpoints
class StyleGAN2ShapeError(ValueError):
    """A checkpoint tensor whose shape does not fit the network built for it."""


def _count(state: Mapping[str, Tensor], pattern: str, first: int) -> int:
    """How many consecutive indices i = first, first+1, … have ``pattern.format(i)`` in state."""
    i = first
    while pattern.format(i) in state:
        i += 1
    return i - first


def _dim(state: Mapping[str, Tensor], key: str, axis: int, where: str) -> int:
    """``state[key].shape[axis]``, with clear errors for a missing key or too few dims."""
    if key not in state:
        some = ", ".join(list(state)[:5])
        raise ValueError(f"{where} has no tensor {key!r}; it is not a StyleGAN2 state dict in "
                         f"the rosinality/stylegan2-pytorch format (its first keys: {some}). "
                         f"Convert official NVIDIA .pkl files first (that repo's "
                         f"convert_weight.py)")
    shape = tuple(state[key].shape)
    if len(shape) <= axis:
        raise StyleGAN2ShapeError(f"{key}: expected at least {axis + 1} dimensions, found shape "
                                  f"{shape} in {where}")
    return int(shape[axis])


def _generator_config(state: Mapping[str, Tensor], where: str) -> dict:
    """size, style_dim, n_mlp and widths of a generator state dict, from its shapes.

    Widths come from the ToRGB layers (their input width is the resolution's width) and the
    constant input; every other tensor is then checked against the model they imply.
    """
    n_blocks = _count(state, "to_rgbs.{}.conv.weight", 0)
    channels = {4: _dim(state, "input.input", 1, where)}
    for k in range(n_blocks):
        channels[2 ** (k + 3)] = _dim(state, f"to_rgbs.{k}.conv.weight", 2, where)
    return dict(size=4 * 2 ** n_blocks, channels=channels,
                style_dim=_dim(state, "conv1.conv.modulation.weight", 1, where),
                n_mlp=_count(state, "style.{}.weight", 1))


def _discriminator_config(state: Mapping[str, Tensor], where: str) -> dict:
    """size and widths of a discriminator state dict: from-RGB width, then each block's output."""
    n_blocks = _count(state, "convs.{}.conv2.1.weight", 1)
    size = 4 * 2 ** n_blocks
    channels = {size: _dim(state, "convs.0.0.weight", 0, where)}
    for j in range(1, n_blocks + 1):
        channels[size >> j] = _dim(state, f"convs.{j}.conv2.1.weight", 0, where)
    return dict(size=size, channels=channels)


def _pattern(key: str) -> str:
    """A state-dict key with its indices blanked: ``convs.3.conv.blur.kernel`` →
    ``convs.#.conv.blur.kernel``, ``noises.noise_11`` → ``noises.noise_#``."""
    return re.sub(r"\d+", "#", key)


def _build(cls: type[nn.Module], config: dict, state: Mapping[str, Tensor], where: str
           ) -> tuple[nn.Module, list[str]]:
    """Build ``cls(**config)``, check names and shapes against ``state``, load it (a copy).

    Weights (parameters) must match one for one. Buffers are forgiven as the official
    GAN2Shape code forgives them (it loads with ``strict=False``): a missing buffer keeps the
    model's own (checkpoints made before January 2020 carry no ``noises.noise_*``; the blur
    kernels are fixed anyway), and a key shaped like one of the model's buffers (an extra
    noise map) is ignored. Returns the model and notes on what was forgiven (none: ``[]``).
    """
    model = cls(**config)
    expected = model.state_dict()
    buffers = {_pattern(k) for k, _ in model.named_buffers()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    desc = ", ".join(f"{k}={v}" for k, v in config.items())
    kept = [k for k in missing if _pattern(k) in buffers]
    ignored = [k for k in unexpected if _pattern(k) in buffers]
    missing = [k for k in missing if k not in kept]
    unexpected = [k for k in unexpected if k not in ignored]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {missing[:6]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s): {unexpected[:6]}")
        raise ValueError(f"{where} does not match a {cls.__name__}({desc}) inferred from its "
                         f"shapes: {'; '.join(parts)}. Every weight must be there (only "
                         f"buffers, the noise maps and blur kernels, may be missing or extra): "
                         f"the file is incomplete or not in the rosinality/stylegan2-pytorch "
                         f"format")
    wrong = [k for k in expected if k in state
             and tuple(state[k].shape) != tuple(expected[k].shape)]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more: {wrong[1:6]})" if len(wrong) > 1 else ""
        raise StyleGAN2ShapeError(
            f"{k}: expected {tuple(expected[k].shape)}, found {tuple(state[k].shape)} in "
            f"{where}{more}. The other tensors imply {cls.__name__}({desc}); the checkpoint is "
            f"corrupt or mixes models — re-download it or check which model it holds")
    # Copies (and casts to float32): the caller's tensors are never shared with the model.
    model.load_state_dict({k: state[k] for k in expected if k in state}, strict=not kept)
    notes = []
    if kept:
        notes.append(f"{where} has no {', '.join(sorted({_pattern(k) for k in kept}))} "
                     f"({len(kept)} buffer(s)): the {cls.__name__} keeps its own")
    if ignored:
        notes.append(f"{where} has {len(ignored)} unexpected buffer(s), ignored: {ignored[:6]}")
    return model.eval(), notes


def _read(path_or_state: str | os.PathLike | Mapping) -> tuple[Mapping, str]:
    """(checkpoint dict, a name for messages)."""
    if isinstance(path_or_state, Mapping):
        return path_or_state, "the given checkpoint dict"
    path = os.fspath(path_or_state)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no StyleGAN2 checkpoint at {path!r}")
    try:
        # Training checkpoints of the reference carry their argparse options; a Namespace
        # holds plain values, so allowing it keeps weights_only loading safe.
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)  # moved later
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds Python objects other than tensors, which are not "
                         f"unpickled for safety; re-save just its state dicts "
                         f"({{'g_ema': …, 'd': …}}) in a trusted environment. ({err})") from err
    if not isinstance(ckpt, Mapping):
        raise ValueError(f"{path} holds a {type(ckpt).__name__}, expected a dict with 'g_ema'")
    return ckpt, path


def load_stylegan2(path_or_state: str | os.PathLike | Mapping, device: torch.device | str = "cpu"
                   ) -> tuple[Generator, Discriminator | None]:
    """Load a rosinality-format checkpoint ``{"g_ema": …, "d": …}`` (other entries ignored).

    The architecture (size, style_dim, n_mlp, widths per resolution) is read from the
    tensors' shapes, so any channel multiplier or custom widths load. The file is read with
    ``torch.load(..., weights_only=True)``: no arbitrary code is unpickled.

    Every weight must be there, but buffers are loaded as the official GAN2Shape code loads
    them (``strict=False``): a file without noise maps (rosinality's checkpoints before
    January 2020) keeps G's own ``noises.noise_*``, and extra buffer-shaped keys are ignored;
    one warning line says what was forgiven.

    Args:
        path_or_state: a ``.pt`` path, or the already loaded dict.
        device: where the modules go.

    Returns:
        (G, D) in eval mode; D is None when the checkpoint has no ``"d"``.

    Raises:
        StyleGAN2ShapeError: a tensor's shape does not fit (names it, expected vs found).
        ValueError: missing or unexpected weights, or not a StyleGAN2 checkpoint.
    """
    ckpt, name = _read(path_or_state)
    if "g_ema" not in ckpt:
        raise ValueError(f"{name} has no 'g_ema' entry (found {sorted(map(str, ckpt))[:8]}); "
                         f"expected a rosinality/stylegan2-pytorch checkpoint")
    where = f"{name} ['g_ema']"
    g_state = ckpt["g_ema"]
    G, notes = _build(Generator, _generator_config(g_state, where), g_state, where)
    D = None
    if ckpt.get("d") is not None:
        where = f"{name} ['d']"
        d_state = ckpt["d"]
        D, d_notes = _build(Discriminator, _discriminator_config(d_state, where), d_state, where)
        D, notes = D.to(device), notes + d_notes
    if notes:  # one line for the whole file
        warnings.warn("; ".join(notes) + " (loaded as the official GAN2Shape code loads it)",
                      stacklevel=2)
    return G.to(device), D


def save_stylegan2(path: str | os.PathLike, G: Generator, D: Discriminator | None = None) -> None:
    """Write ``{"g_ema": G, "d": D}`` (CPU state dicts), the format :func:`load_stylegan2` reads."""
    ckpt = {"g_ema": {k: v.detach().cpu() for k, v in G.state_dict().items()}}
    if D is not None:
        ckpt["d"] = {k: v.detach().cpu() for k, v in D.state_dict().items()}
    torch.save(ckpt, os.fspath(path))
