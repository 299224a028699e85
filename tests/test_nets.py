"""The small networks: shapes, ranges, starting points, and fitting D to a prior."""
import pytest
import torch

from g2s_lite.nets import (AlbedoNet, DepthNet, LatentEncoder, LightNet, ViewNet,
                           init_depth_to_prior)
from g2s_lite.paper import paper_width
from g2s_lite.prior import make_prior


@pytest.mark.parametrize("size", [64, 128])
def test_outputs_have_the_renderers_shapes_and_ranges(size):
    x = torch.randn(2, 3, size, size)
    d = DepthNet(size, nf=8)(x)
    assert d.shape == (2, size, size) and d.min() >= 0.9 and d.max() <= 1.1
    assert torch.allclose(d[:, 0], torch.full_like(d[:, 0], 0.7 * 1.1 + 0.3 * 0.9))  # border
    a = AlbedoNet(size, nf=8)(x)
    assert a.shape == (2, 3, size, size) and a.abs().max() <= 1
    assert LatentEncoder(40, size, nf=8)(x).shape == (2, 40)


def test_view_and_light_nets_start_at_identity_and_canonical_light():
    x = torch.randn(3, 3, 64, 64)
    assert torch.equal(ViewNet(64, nf=8)(x), torch.zeros(3, 6))
    light = LightNet(64, nf=8)(x)
    assert torch.equal(light, torch.tensor([[0.5, 0.5, 0.0, 0.0]]).repeat(3, 1))
    # once trained away from zero, outputs stay in range: rotations ≤ 60°, strengths in [0, 1]
    v, l = ViewNet(64, nf=8), LightNet(64, nf=8)
    torch.nn.init.normal_(v.net.head.weight, std=10.0)
    torch.nn.init.normal_(l.net.head.weight, std=10.0)
    assert v(x)[:, :3].abs().max() <= torch.pi / 3 + 1e-6 and v(x)[:, 3:].abs().max() <= 0.1 + 1e-6
    assert v(x)[:, 3:5].abs().max() > 0.05  # x, y move …
    assert torch.equal(v(x)[:, 5], torch.zeros(3))  # … depth never: the paper's range 0
    out = l(x)
    assert out[:, :2].min() >= 0 and out[:, :2].max() <= 1 and out[:, 2:].abs().max() <= 1


def test_paper_widths_and_size_errors():
    assert paper_width(64) == 64 and paper_width(128) == 32 and paper_width(256) == 16
    with pytest.raises(ValueError, match="64, 128, 256"):
        DepthNet(48)


def test_init_depth_to_prior_reaches_the_prior():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    prior = make_prior("ellipsoid", 64)
    net = DepthNet(64, nf=16, border=0)
    # 300 steps: at 150 the end point still depends on the order of additions (one torch
    # thread or two), on either side of the bound below
    history = init_depth_to_prior(net, image, prior, steps=300, lr=1e-3, progress=False)
    err = (net(image)[0] - prior).detach()
    assert history[-1] < history[0] / 5
    # the shape is reached: what is left is mostly a constant offset (see the docstring)
    assert err.var().item() < 0.05 * prior.var().item()
    assert err.abs().mean().item() < 0.02


def test_stacked_nets_are_each_copy_on_its_own_rows():
    """K copies used as one: the outputs and the gradients each copy would have alone — bit
    for bit image by image; vectorised, to rounding. The vectorised check runs in float64:
    in float32 the grouped convolution adds in another order, and the gradients of the
    biases in front of a GroupNorm (nearly cancelled by its mean: 4 channels a group) come
    out with relative differences from 1e-5 to a few percent depending on the seed and
    torch's kernels, which says nothing about the stacking. In float64 they agree to ~1e-14.
    """
    from g2s_lite.nets import Stacked

    torch.manual_seed(0)
    for vectorize, dtype, tol, grad_tol in ((False, torch.float32, 0.0, 0.0),
                                            (True, torch.float64, 1e-12, 1e-10)):
        x = torch.randn(6, 3, 64, 64, dtype=dtype)
        copies = [AlbedoNet(64, 8).to(dtype) for _ in range(3)]
        alone = [AlbedoNet(64, 8).to(dtype) for _ in range(3)]
        for a, c in zip(alone, copies):
            a.load_state_dict(c.state_dict())
        out = Stacked(copies, vectorize)(x)
        out.square().sum().backward()
        for k, (a, c) in enumerate(zip(alone, copies)):
            own = a(x[2 * k:2 * k + 2])
            own.square().sum().backward()
            torch.testing.assert_close(out[2 * k:2 * k + 2], own, rtol=0, atol=tol)
            for pa, pc in zip(a.parameters(), c.parameters()):
                assert (pc.grad - pa.grad).norm() <= grad_tol * pa.grad.norm()
    with pytest.raises(ValueError, match="same number of rows"):
        Stacked(copies)(x[:5])


# ----------------------------------------------------------------------------- on disk
def _trained_away(nets, seed: int):
    """Nets whose every weight is moved from its start (so that a lost weight would show)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in nets.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return nets


@pytest.mark.parametrize("size, nf, prior", [(64, 16, True), (128, 8, False)])
def test_nets_come_back_from_their_file_as_they_were(tmp_path, size, nf, prior):
    """Size, width and D's prior are read off the nets and rebuilt from the file; at full
    precision every output is the same bit for bit, at half precision nearly, with V's
    ranges and D's prior exact."""
    from g2s_lite.nets import NET_NAMES, Nets

    start = make_prior("ellipsoid", size) if prior else None
    nets = _trained_away(Nets.create(size, nf, seed=3, prior=start), seed=4)
    path = nets.save(tmp_path / "sub" / "nets.pt", note="kept", step=7)
    back = Nets.load(path)
    state = back.state_dict()
    assert (state["image_size"], state["nf"], state["layout"]) == (size, nf, "book")
    assert torch.load(path, weights_only=True)["step"] == 7
    x = torch.randn(2, 3, size, size)
    for name in NET_NAMES:
        assert torch.equal(getattr(back, name)(x), getattr(nets, name)(x)), name
    assert (back.depth.base is None) == (not prior)
    half = Nets.load(nets.save(tmp_path / "half.pt", half=True))
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * path.stat().st_size
    assert (half.depth(x) - nets.depth(x)).abs().max() < 5e-3
    assert torch.equal(half.view.scale, nets.view.scale)
    if prior:
        assert torch.equal(half.depth.border_map, nets.depth.border_map)


def test_released_nets_round_trip_and_bad_states_are_refused(tmp_path):
    from g2s_lite.nets import Nets
    from g2s_lite.released import load_nets, paper_nets

    nets = _trained_away(paper_nets(64, light_mean=torch.full((4,), 0.2)), seed=5)
    state = nets.state_dict()
    assert state["layout"] == "released" and state["nf"] == paper_width(64)
    with pytest.raises(ValueError, match="released.load_nets"):
        Nets.from_state(state)  # nets.py does not build the released layout
    back = load_nets(state)
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(back.light(x), nets.light(x)) and torch.equal(back.depth(x), nets.depth(x))
    with pytest.raises(ValueError, match="unknown nets layout 'nerf'"):
        Nets.from_state({**state, "layout": "nerf"})
    with pytest.raises(ValueError, match="'nets' is the nets' own entry"):
        nets.save(tmp_path / "n.pt", nets={})
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="holds no nets"):
        Nets.load(tmp_path / "other.pt")
