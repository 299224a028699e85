"""The fast paths compute the same mathematics: each against a brute-force or literal
reference on random inputs, forward and gradients (float64, so that only a changed order of
operations separates them); and the profile command's figures add up."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import smooth_depth, tiny_preset
from g2s_lite import bench, paper
from g2s_lite.gan import (LRELU_GAIN, LRELU_SLOPE, ConvLayer, Discriminator, Generator,
                          ResBlock, _upfirdn2d_steps, minibatch_stddev, upfirdn2d)
from g2s_lite.nets import CoveringConv2d, CoveringConvTranspose2d, adam
from g2s_lite.paper import WEIGHT_DECAY
from g2s_lite.render import Renderer

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-10  # relative, in float64


def assert_same(ours, theirs, tol=TOL):
    scale = max(1.0, theirs.abs().max().item())
    assert (ours - theirs).abs().max().item() <= tol * scale


def grads(out, *tensors):
    """Gradients of a random projection of ``out`` (the same projection for every call)."""
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(out.shape, generator=g, dtype=out.dtype)
    return torch.autograd.grad((out * weight).sum(), tensors, retain_graph=True)


def with_random_blur(module: nn.Module) -> nn.Module:
    """Float64, noise strengths switched on, and every FIR kernel random and asymmetric
    (same sum), so that flips, paddings and the order of blur and demodulation matter."""
    g = torch.Generator().manual_seed(0)
    module = module.double()
    for name, buf in module.named_buffers():
        if name.endswith("kernel"):
            buf.copy_((torch.rand(buf.shape, generator=g, dtype=buf.dtype) + 0.2)
                      * buf.sum() / buf.numel() * 2)
    for name, p in module.named_parameters():
        if "noise" in name or "bias" in name:
            p.data.normal_(0, 0.3, generator=g)
    return module


# ----------------------------------------------------------------------------- FIR filtering
@pytest.mark.parametrize("up,down,pad", [(1, 1, (2, 2)), (1, 2, (1, 1)), (1, 1, (2, 1)),
                                         (2, 1, (2, 1)), (2, 1, (1, 1)), (2, 1, (3, 0)),
                                         (2, 2, (2, 1)), (3, 1, (2, 2)), (1, 1, (-1, -1))])
def test_upfirdn2d_equals_its_steps(up, down, pad):
    g = torch.Generator().manual_seed(up * 10 + down)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64, generator=g).requires_grad_()
    kernel = torch.rand(4, 4, dtype=torch.float64, generator=g)  # asymmetric
    fast, steps = upfirdn2d(x, kernel, up, down, pad), _upfirdn2d_steps(x, kernel, up, down, pad)
    assert fast.shape == steps.shape
    assert_same(fast, steps)
    assert_same(grads(fast, x)[0], grads(steps, x)[0])


# ----------------------------------------------------------------------------- the generator
def modulated_conv_reference(conv, x, w):
    """The modulated convolution as StyleGAN2 writes it: one modulated (and demodulated)
    kernel per sample, a grouped convolution, the blur after an upsampling one."""
    b, c_in, h, width = x.shape
    style = conv.modulation(w)
    weight = conv.scale * conv.weight * style[:, None, :, None, None]      # B×out×in×k×k
    if conv.demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)[..., None, None, None]
    k = conv.kernel_size
    x = x.reshape(1, b * c_in, h, width)
    if conv.upsample:
        weight = weight.transpose(1, 2).reshape(b * c_in, conv.out_channels, k, k)
        out = F.conv_transpose2d(x, weight, stride=2, groups=b)
        out = out.view(b, conv.out_channels, *out.shape[2:])
        return _upfirdn2d_steps(out, conv.blur.kernel, pad=conv.blur.pad)
    out = F.conv2d(x, weight.reshape(b * conv.out_channels, c_in, k, k), padding=k // 2, groups=b)
    return out.view(b, conv.out_channels, h, width)


def test_generator_layers_equal_stylegan2s_per_sample_kernels():
    torch.manual_seed(0)
    G = with_random_blur(Generator(16, style_dim=8, n_mlp=2, channels={4: 6, 8: 5, 16: 4}))
    w = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    for layer, res in [(G.conv1, 4), (G.convs[0], 4), (G.convs[1], 8)]:
        x = torch.randn(3, layer.conv.in_channels, res, res, dtype=torch.float64,
                        requires_grad=True)
        out_res = 2 * res if layer.conv.upsample else res
        noise = torch.randn(1, 1, out_res, out_res, dtype=torch.float64)
        ours = layer(x, w, noise)
        pre = (modulated_conv_reference(layer.conv, x, w) + layer.noise.weight * noise
               + layer.activate.bias.view(1, -1, 1, 1))
        theirs = F.leaky_relu(pre, LRELU_SLOPE) * LRELU_GAIN
        assert_same(ours, theirs)
        params = (x, w, layer.conv.weight, layer.noise.weight, layer.activate.bias)
        for a, b in zip(grads(ours, *params), grads(theirs, *params)):
            assert_same(a, b)
        assert_same(layer.conv(x, w), modulated_conv_reference(layer.conv, x, w))
    rgb = G.to_rgbs[0]  # 1×1 modulated conv without demodulation, and the upsampled skip
    x = torch.randn(3, 5, 8, 8, dtype=torch.float64, requires_grad=True)
    skip = torch.randn(3, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    ours = rgb(x, w, skip)
    theirs = (modulated_conv_reference(rgb.conv, x, w) + rgb.bias
              + _upfirdn2d_steps(skip, rgb.upsample.kernel, up=2, pad=rgb.upsample.pad))
    assert_same(ours, theirs)
    for a, b in zip(grads(ours, x, w, skip, rgb.conv.weight), grads(theirs, x, w, skip,
                                                                    rgb.conv.weight)):
        assert_same(a, b)


# ----------------------------------------------------------------------------- the discriminator
def literal(layer: ConvLayer, x):
    """A ConvLayer as the plain sequence of its modules."""
    return nn.Sequential.forward(layer, x)


@pytest.mark.parametrize("options", [dict(), dict(downsample=True),
                                     dict(downsample=True, activate=False, bias=False),
                                     dict(bias=False), dict(activate=False)])
def test_conv_layer_folds_to_the_same_numbers(options):
    torch.manual_seed(0)
    layer = with_random_blur(ConvLayer(4, 5, 3, **options))
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64, requires_grad=True)
    params = (x, *layer.parameters())
    for gain in (1.0, 0.7):
        ours, theirs = layer(x, gain), literal(layer, x) * gain
        assert_same(ours, theirs)
        for a, b in zip(grads(ours, *params), grads(theirs, *params)):
            assert_same(a, b)


def test_discriminator_equals_its_layers_in_turn_in_the_usual_layout():
    torch.manual_seed(0)
    D = with_random_blur(Discriminator(16, channels={4: 6, 8: 5, 16: 4}))
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64, requires_grad=True)

    def block(b: ResBlock, h):
        return (literal(b.conv2, literal(b.conv1, h)) + literal(b.skip, h)) / math.sqrt(2)

    h = literal(D.convs[0], x)
    theirs = []
    for b in D.convs[1:]:
        h = block(b, h)
        theirs.append(h)
    ours = D.features(x, D.n_blocks)
    assert ours[0].is_contiguous(memory_format=torch.channels_last)  # on a CPU
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    assert_same(grads(ours[-1], x)[0], grads(theirs[-1], x)[0])
    score = D(x)
    theirs = D.final_linear(literal(D.final_conv, minibatch_stddev(h)).reshape(4, -1))
    assert_same(score, theirs)
    params = (x, *D.parameters())
    for a, b in zip(grads(score, *params), grads(theirs, *params)):
        assert_same(a, b)


# ----------------------------------------------------------------------------- optimiser, renderer
def test_fused_adam_takes_the_loop_adams_steps():
    g = torch.Generator().manual_seed(0)
    ours = [torch.randn(5, 3, generator=g, requires_grad=True), torch.randn(7, generator=g,
                                                                          requires_grad=True)]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    opt = adam([{"params": ours[:1]}, {"params": iter(ours[1:]), "lr": 1e-3}], lr=1e-2)
    ref = torch.optim.Adam([{"params": theirs[:1]}, {"params": theirs[1:], "lr": 1e-3}],
                           lr=1e-2, betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY,
                           foreach=False)
    assert opt.defaults["fused"]
    for _ in range(50):
        for p, q in zip(ours, theirs):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs):
        assert (p - q).abs().max() < 1e-6


def test_render_of_one_depth_from_many_views_equals_the_repeated_depth():
    r = Renderer(24)
    depth = smooth_depth(1, 24).double().requires_grad_()
    albedo = torch.rand(1, 3, 24, 24, dtype=torch.float64) * 1.6 - 0.8
    light = torch.tensor([[0.3, 0.5, 0.3, 0.2], [0.4, 0.4, -0.5, 0.1]], dtype=torch.float64)
    view = torch.tensor([[0.1, 0.3, 0.05, 0.002, -0.001, 0.0],
                         [-0.2, -0.4, 0.0, 0.0, 0.003, 0.0]], dtype=torch.float64)
    shared, _ = r.render(depth, albedo, light, view)
    repeated, _ = r.render(depth.repeat(2, 1, 1), albedo, light, view)
    assert torch.equal(shared, repeated)
    assert_same(grads(shared, depth)[0], grads(repeated, depth)[0])


# ----------------------------------------------------------------------------- the profile
def test_profile_parts_add_up_and_the_json_has_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(paper.PRESETS, "tiny", tiny_preset())
    out = tmp_path / "profile.json"
    bench.main(["profile", "--preset", "tiny", "--no-quick", "--top", "5",
                "--json", str(out)])
    p = json.loads(out.read_text())
    assert {"preset", "threads", "torch", "steps", "wall", "parts", "top_ops", "profiled"} <= set(p)
    # the full schedule's steps run unprofiled; the parts come from the quick schedule
    assert p["profiled"] == paper.get_preset("tiny", quick=True).name
    assert set(p["steps"]) == {"project", "step1", "step2", "step3", "total"}
    assert p["steps"]["total"] >= sum(v for k, v in p["steps"].items() if k != "total") > 0
    parts = p["parts"]
    for part in ("G", "D", "renderer", "nets D/A/V/L", "offset encoder", "losses"):
        assert parts[f"{part} forward"] > 0 and parts[f"{part} backward"] > 0, part
    assert parts["optimizer"] > 0
    # what the profiler measured fits in the wall time: "python" is the rest, not a debt
    assert -0.02 * p["wall"] <= parts["python"] <= 0.5 * p["wall"]
    assert sum(parts.values()) == pytest.approx(p["wall"], rel=1e-6)
    assert len(p["top_ops"]) == 5 and p["top_ops"][0]["seconds"] >= p["top_ops"][-1]["seconds"]
    printed = capsys.readouterr().out
    assert "seconds by part" in printed and "G forward" in printed


# ----------------------------------------------------------------------------- the small nets
@pytest.mark.parametrize("kernel,size,padding", [(4, 4, 0), (1, 1, 0), (4, 6, 0), (4, 4, 1)])
def test_covering_convolutions_are_the_convolutions(kernel, size, padding):
    torch.manual_seed(0)
    conv = CoveringConv2d(5, 7, kernel, padding=padding, bias=True).double()
    x = torch.randn(3, 5, size, size, dtype=torch.float64, requires_grad=True)
    ours, theirs = conv(x), nn.Conv2d.forward(conv, x)
    assert ours.shape == theirs.shape
    assert_same(ours, theirs)
    for a, b in zip(grads(ours, x, *conv.parameters()), grads(theirs, x, *conv.parameters())):
        assert_same(a, b)
    up = CoveringConvTranspose2d(5, 7, kernel, bias=True).double()
    x = torch.randn(3, 5, 1 if size == kernel else 2, 1 if size == kernel else 2,
                    dtype=torch.float64, requires_grad=True)
    ours, theirs = up(x), nn.ConvTranspose2d.forward(up, x)
    assert ours.shape == theirs.shape
    assert_same(ours, theirs)
    for a, b in zip(grads(ours, x, *up.parameters()), grads(theirs, x, *up.parameters())):
        assert_same(a, b)
