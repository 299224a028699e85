"""The released GAN2Shape nets and StyleGAN2 models through hub.

The expectation is an independent transcription of the released code: its layer lists
(``networks.py``: EDDeconv, Encoder, ResEncoder) written as lists of operations, which give
both the exact parameter names and shapes of a released checkpoint (random weights here)
and a functional forward pass that follows the released ``forward_step1`` and
``latent_project``, in-place ReLUs included. The package's modules must load those state
dicts unchanged and agree with that forward pass.
"""
import json
import math
import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from g2s_lite import hub
from g2s_lite.gan import (Discriminator, Generator, default_channels, load_stylegan2,
                          save_stylegan2)

MIN_D, MAX_D = 0.9, 1.1


# ----------------------------------------------------------------------------- the released layer lists
def ed_ops(cin, cout, size, nf, gn_base, zdim=256):
    """EDDeconv's list, in the released order (the final Tanh has no weights and is left to
    the caller)."""
    extra = int(math.log2(size) - 6)
    ops = [("conv", cin, nf, 4, 2, 1), ("gn", gn_base, nf), ("lrelu",),
           ("conv", nf, nf * 2, 4, 2, 1), ("gn", gn_base * 2, nf * 2), ("lrelu",),
           ("conv", nf * 2, nf * 4, 4, 2, 1), ("gn", gn_base * 4, nf * 4), ("lrelu",),
           ("conv", nf * 4, nf * 8, 4, 2, 1)]
    for _ in range(extra):
        nf, gn_base = nf * 2, gn_base * 2
        ops += [("gn", gn_base * 4, nf * 4), ("lrelu",), ("conv", nf * 4, nf * 8, 4, 2, 1)]
    ops += [("lrelu",), ("conv", nf * 8, zdim, 4, 1, 0), ("relu",),
            ("convT", zdim, nf * 8, 4, 1, 0), ("relu",), ("conv", nf * 8, nf * 8, 3, 1, 1),
            ("relu",)]
    for k in (4, 2, 1):
        ops += [("convT", nf * 2 * k, nf * k, 4, 2, 1), ("gn", gn_base * k, nf * k), ("relu",),
                ("conv", nf * k, nf * k, 3, 1, 1), ("gn", gn_base * k, nf * k), ("relu",)]
    for _ in range(extra):
        nf, gn_base = nf // 2, gn_base // 2
        ops += [("convT", nf * 2, nf, 4, 2, 1), ("gn", gn_base, nf), ("relu",),
                ("conv", nf, nf, 3, 1, 1), ("gn", gn_base, nf), ("relu",)]
    ops += [("up",), ("conv", nf, nf, 3, 1, 1), ("gn", gn_base, nf), ("relu",),
            ("conv", nf, nf, 5, 1, 2), ("gn", gn_base, nf), ("relu",),
            ("conv", nf, cout, 5, 1, 2)]
    return ops


def enc_ops(cin, cout, size, nf):
    extra = int(math.log2(size) - 6)
    ops = [("conv", cin, nf, 4, 2, 1), ("relu",), ("conv", nf, nf * 2, 4, 2, 1), ("relu",),
           ("conv", nf * 2, nf * 4, 4, 2, 1), ("relu",), ("conv", nf * 4, nf * 8, 4, 2, 1),
           ("relu",)]
    for _ in range(extra):
        nf *= 2
        ops += [("conv", nf * 4, nf * 8, 4, 2, 1), ("relu",)]
    return ops + [("conv", nf * 8, nf * 8, 4, 1, 0), ("relu",), ("conv", nf * 8, cout, 1, 1, 0)]


def res_ops(cin, cout, size, nf=32):
    ops = [("conv", cin, nf, 4, 2, 1), ("res", nf, nf * 2), ("res", nf * 2, nf * 4),
           ("res", nf * 4, nf * 8)]
    for _ in range(int(math.log2(size) - 6)):
        nf *= 2
        ops += [("res", nf * 4, nf * 8)]
    return ops + [("relu",), ("conv", nf * 8, nf * 16, 4, 1, 0), ("relu",),
                  ("conv", nf * 16, cout, 1, 1, 0)]


def random_state(ops, gen):
    """Random weights under the released names ``network.<i>.…``, scaled to keep activations
    in a useful range (so tanh does not saturate and the comparison means something)."""
    state = {}
    for i, op in enumerate(ops):
        key = f"network.{i}"
        if op[0] in ("conv", "convT"):
            _, a, b, k = op[:4]
            shape = (b, a, k, k) if op[0] == "conv" else (a, b, k, k)
            state[f"{key}.weight"] = torch.randn(shape, generator=gen) / math.sqrt(a * k * k)
        elif op[0] == "gn":
            state[f"{key}.weight"] = 1 + 0.2 * torch.randn(op[2], generator=gen)
            state[f"{key}.bias"] = 0.2 * torch.randn(op[2], generator=gen)
        elif op[0] == "res":
            _, a, b = op
            state[f"{key}.conv1.weight"] = torch.randn(b, a, 3, 3, generator=gen) / math.sqrt(9 * a)
            state[f"{key}.conv2.weight"] = torch.randn(b, b, 3, 3, generator=gen) / math.sqrt(9 * b)
            state[f"{key}.conv_sc.weight"] = torch.randn(b, a, 1, 1, generator=gen) / math.sqrt(a)
            state[f"{key}.conv_sc.bias"] = 0.1 * torch.randn(b, generator=gen)
    return state


def run(ops, state, x):
    """The released nn.Sequential's forward, op by op."""
    for i, op in enumerate(ops):
        key = f"network.{i}"
        if op[0] == "conv":
            x = F.conv2d(x, state[f"{key}.weight"], stride=op[4], padding=op[5])
        elif op[0] == "convT":
            x = F.conv_transpose2d(x, state[f"{key}.weight"], stride=op[4], padding=op[5])
        elif op[0] == "gn":
            x = F.group_norm(x, op[1], state[f"{key}.weight"], state[f"{key}.bias"], 1e-5)
        elif op[0] == "lrelu":
            x = F.leaky_relu(x, 0.2)
        elif op[0] == "relu":
            x = F.relu(x)
        elif op[0] == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        elif op[0] == "res":
            # ResBlockDown: the in-place ReLU rectifies x for the shortcut as well
            x = F.relu(x)
            h = F.conv2d(F.relu(F.conv2d(x, state[f"{key}.conv1.weight"], stride=2, padding=1)),
                         state[f"{key}.conv2.weight"], padding=1)
            skip = F.avg_pool2d(x, 2, 2)
            if op[1] != op[2]:
                skip = F.conv2d(skip, state[f"{key}.conv_sc.weight"], state[f"{key}.conv_sc.bias"])
            x = skip + h
    return x


def released_checkpoint(size, seed=0):
    """(state dicts as released, the layer lists): nf and gn_base as the released model
    sets them for this image size."""
    gen = torch.Generator().manual_seed(seed)
    nf, gn = max(4096 // size, 16), (8 if size >= 128 else 16)
    ops = {"netD": ed_ops(3, 1, size, nf, gn), "netA": ed_ops(3, 3, size, nf, gn),
           "netV": enc_ops(3, 6, size, nf), "netL": enc_ops(3, 4, size, nf),
           "netEnc": res_ops(3, 512, size)}
    return {k: random_state(v, gen) for k, v in ops.items()}, ops


def official_forward(blob, ops, image, view_mean, light_mean):
    """forward_step1's factors (interior depth) and netEnc's output."""
    raw = run(ops["netD"], blob["netD"], image)[:, 0]
    d = (raw - raw.reshape(len(raw), -1).mean(1)[:, None, None]).tanh()
    depth = (1 + d) / 2 * MAX_D + (1 - d) / 2 * MIN_D
    albedo = run(ops["netA"], blob["netA"], image).tanh()
    v = run(ops["netV"], blob["netV"], image).reshape(len(image), -1).tanh() + view_mean
    view = torch.cat([v[:, :3] * math.pi / 180 * 60, v[:, 3:5] * 0.1, v[:, 5:] * 0], 1)
    lt = run(ops["netL"], blob["netL"], image).reshape(len(image), -1).tanh() + light_mean
    light = torch.cat([lt[:, :1] / 2 + 0.5, lt[:, 1:2] / 2 + 0.5, lt[:, 2:]], 1)
    enc = run(ops["netEnc"], blob["netEnc"], image).reshape(len(image), -1)
    return dict(depth=depth[:, 2:-2, 2:-2], albedo=albedo, view=view, light=light, encoder=enc)


def rel_diff(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


@pytest.fixture(scope="module")
def _threads(one_thread):
    yield


@pytest.mark.parametrize("size", [64, 128])
def test_released_nets_load_unchanged_and_agree_with_the_released_forward(size, tmp_path,
                                                                          _threads):
    blob, ops = released_checkpoint(size)
    path = tmp_path / "celeba_pretrain.pth"
    torch.save({**blob, "epoch": 3}, path)
    gen = torch.Generator().manual_seed(1)
    vm = {"mean": 0.1 * torch.randn(6, generator=gen), "cov": torch.eye(6)}
    lm = {"mean": 0.1 * torch.randn(4, generator=gen), "cov": torch.eye(4)}
    torch.save(vm, tmp_path / "view.pth")
    torch.save(lm, tmp_path / "light.pth")
    nets, encoder = hub.load_gan2shape_nets(path, size, tmp_path / "view.pth",
                                            tmp_path / "light.pth")
    image = torch.rand(2, 3, size, size, generator=gen) * 2 - 1
    want = official_forward(blob, ops, image, vm["mean"], lm["mean"])
    with torch.no_grad():
        got = dict(depth=nets.depth(image)[:, 2:-2, 2:-2], albedo=nets.albedo(image),
                   view=nets.view(image), light=nets.light(image), encoder=encoder(image))
    for name in want:
        assert got[name].shape == want[name].shape, name
        assert rel_diff(got[name], want[name]) < 1e-4, name
    # the comparison is not vacuous: the outputs vary across the batch and are not saturated
    assert (want["albedo"][0] - want["albedo"][1]).abs().max() > 1e-3
    assert want["albedo"].abs().max() < 0.999 and (want["depth"].std() > 1e-4)


def test_a_checkpoint_of_another_size_is_refused_naming_file_and_shapes(tmp_path, _threads):
    blob, _ = released_checkpoint(64)
    path = tmp_path / "synface_pretrain.pth"
    torch.save(blob, path)
    with pytest.raises(ValueError, match=r"synface_pretrain\.pth.*expected.*found.*64-px"):
        hub.load_gan2shape_nets(path, 128)
    torch.save({"netA": blob["netA"]}, path)
    with pytest.raises(ValueError, match="not a released GAN2Shape checkpoint.*found"):
        hub.load_gan2shape_nets(path, 64)


def test_released_encoder_as_offset_encoder_follows_latent_project(tmp_path, _threads):
    """Δw = f_tail(h_c + E(Ĩ) − E(I)) − f_tail(h_c) with the tail the mapping's modules from
    8 − F1_d on (of PixelNorm + 8 linears), as the released latent_project computes."""
    blob, ops = released_checkpoint(64)
    torch.save(blob, tmp_path / "n.pth")
    G = Generator(16, 512, 8, {4: 8, 8: 8, 16: 8}).eval()
    _, enc = hub.load_gan2shape_nets(tmp_path / "n.pth", 64, G=G, f1_d=2)
    pseudo, image = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    e = (run(ops["netEnc"], blob["netEnc"], pseudo) - run(ops["netEnc"], blob["netEnc"], image))
    style = list(G.style)
    h_c = torch.zeros(1, 512)
    for layer in style[:6]:
        h_c = layer(h_c)

    def tail(h):
        for layer in style[6:]:
            h = layer(h)
        return h
    with torch.no_grad():
        want = tail(h_c + e.flatten(1)) - tail(h_c)
        got = enc(pseudo, image, G)
    assert rel_diff(got, want) < 1e-4


# ----------------------------------------------------------------------------- the released GANs
GANS = [name for name, e in hub.REGISTRY.items() if e.kind == "stylegan2" and e.urls]


def test_the_registry_has_the_papers_five_gans_with_their_presets():
    from g2s_lite.paper import PRESETS

    assert sorted(GANS) == ["car512", "cat256", "celeba128", "church256", "synface128"]
    for name in GANS:
        assert hub.preset_of(name) in PRESETS
    assert PRESETS[hub.preset_of("celeba128")].image_size == 128
    assert PRESETS[hub.preset_of("car512")].use_mask and PRESETS["car128"].flip == (False,)


@pytest.mark.parametrize("name", GANS)
def test_random_weights_of_each_released_gans_shapes_load_through_hub(name, tmp_path,
                                                                     _threads):
    """A checkpoint with the released model's exact shapes (random weights), served from a
    local file as its download would be: cached, hash recorded, then checked."""
    entry = hub.REGISTRY[name]
    widths = default_channels(entry.channel_multiplier)
    G, D = Generator(entry.size, 512, 8, widths), Discriminator(entry.size, widths)
    path = tmp_path / "release.pt"
    save_stylegan2(path, G, D)
    del D
    cache = tmp_path / "cache"
    reg = {name: hub.Weights(entry.description, urls=(path.as_uri(),), preset=entry.preset)}
    G2, D2 = hub.load(name, registry=reg, progress=False, cache=cache)
    assert (G2.size, G2.channels[entry.size]) == (entry.size, widths[entry.size])
    assert sum(p.numel() for p in G2.parameters()) == sum(p.numel() for p in G.parameters())
    assert D2 is not None and D2.size == entry.size
    assert hub.recorded_hashes(cache)[name] == hub.sha256(path)
    # a file loads by path too
    assert hub.load(path)[0].size == entry.size


def test_a_recorded_hash_is_checked_on_every_later_load(tmp_path):
    widths = {4: 8, 8: 8, 16: 4}
    path = tmp_path / "tiny.pt"
    save_stylegan2(path, Generator(16, 8, 2, widths), Discriminator(16, widths))
    cache = tmp_path / "cache"
    reg = {"tiny": hub.Weights("tiny", urls=(path.as_uri(),))}
    cached = hub.fetch("tiny", registry=reg, progress=False, cache=cache)
    cached.write_bytes(cached.read_bytes() + b"tampered")
    with pytest.raises(ValueError, match="expected"):
        hub.fetch("tiny", registry=reg, progress=False, cache=cache)


def test_the_128_px_path_runs_one_quick_stage_on_a_real_photo(tmp_path, _threads):
    """The portrait framed like CelebA at 128 px, the released nets (random weights) with
    their offset encoder, one stage of face128 cut to a few steps, on a narrow 128-px GAN."""
    from dataclasses import replace

    from g2s_lite import photos
    from g2s_lite.method import reconstruct
    from g2s_lite.paper import get_preset

    blob, _ = released_checkpoint(128)
    torch.save(blob, tmp_path / "celeba_pretrain.pth")
    widths = {4: 32, 8: 32, 16: 32, 32: 16, 64: 16, 128: 8}
    G, D = Generator(128, 512, 8, widths).eval(), Discriminator(128, widths).eval()
    nets, encoder = hub.load_gan2shape_nets(tmp_path / "celeba_pretrain.pth", 128, G=G, f1_d=2)
    quick = get_preset("face128", quick=True)
    preset = replace(quick, stages=1,
                     step1=tuple(replace(c, steps=2) for c in quick.step1),
                     step2=tuple(replace(c, steps=2, collect=1, batch=2) for c in quick.step2),
                     step3=tuple(replace(c, steps=2, batch=2) for c in quick.step3),
                     project=replace(quick.project, steps=2))
    photo = photos.book_photo("astronaut.jpg")
    prep = photos.prepare(photo, 128, "face")
    rec = reconstruct(prep.image, G, D, preset=preset, nets=nets, encoder=encoder,
                      progress=False, crop=prep.crop)
    assert rec.depth.shape == (1, 128, 128) and torch.isfinite(rec.depth).all()
    assert rec.crop == prep.crop and len(rec.stages) == 1


def test_a_file_without_depth_net_starts_d_at_the_prior(tmp_path, _threads):
    """The released code fits D to its ellipsoid when the file has no netD; here D starts
    exactly at the given prior (or the paper's ellipsoid), whatever the image."""
    from g2s_lite.prior import make_prior

    blob, _ = released_checkpoint(64)
    del blob["netD"]
    torch.save(blob, tmp_path / "no_depth.pth")
    prior = make_prior("ellipsoid", 64, box=(10, 4, 54, 40))
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    for given, want in ((prior, prior), (None, make_prior("ellipsoid", 64))):
        nets, _ = hub.load_gan2shape_nets(tmp_path / "no_depth.pth", 64, prior=given)
        with torch.no_grad():
            depth = nets.depth(image)
        assert torch.allclose(depth, want.expand_as(depth), atol=1e-4)


def test_the_cat_chain_of_chapter_9_runs_on_random_weights_of_the_released_layouts(tmp_path,
                                                                                   _threads):
    """Chapter 9's GPU cell, on random weights: a 256-px GAN framed to its centre 170/256,
    the released nets with a prior placed on a mask, views from a released distribution,
    the mask keeping the pseudo samples to the cat. Every piece meets the next."""
    from dataclasses import replace

    from g2s_lite import photos
    from g2s_lite.method import reconstruct
    from g2s_lite.paper import get_preset
    from g2s_lite.prior import box_from_mask, starting_prior

    blob, _ = released_checkpoint(128)
    torch.save(blob, tmp_path / "cat_pretrain.pth")
    cov = torch.diag(torch.tensor([0.01, 0.04, 0.001, 0.01, 0.01, 0.0]))
    torch.save({"mean": torch.zeros(6), "cov": cov}, tmp_path / "cat_view_mvn.pth")
    widths = {4: 16, 8: 16, 16: 16, 32: 8, 64: 8, 128: 8, 256: 4}
    G, D = Generator(256, 512, 8, widths).eval(), Discriminator(256, widths).eval()
    quick = get_preset("cat128", quick=True)
    preset = replace(quick, stages=1,
                     step1=tuple(replace(c, steps=2) for c in quick.step1),
                     step2=tuple(replace(c, steps=2, collect=1, batch=2) for c in quick.step2),
                     step3=tuple(replace(c, steps=2, batch=2) for c in quick.step3),
                     project=replace(quick.project, steps=2), use_mask=True)
    photo = photos.book_photo("chelsea.jpg")
    cat = photos.prepare(photo, 128, "cat")
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 20:110, 16:112] = 1
    prior = starting_prior(preset, box=box_from_mask(mask))
    nets, encoder = hub.load_gan2shape_nets(tmp_path / "cat_pretrain.pth", 128, G=G, f1_d=2,
                                            prior=prior)
    views = hub.read_views(tmp_path / "cat_view_mvn.pth")
    rec = reconstruct(cat.image, G, D, preset=preset.with_views(views), nets=nets,
                      encoder=encoder, progress=False, crop=cat.crop, mask=mask)
    assert rec.gan_crop == 170 / 256 and rec.crop == cat.crop
    assert torch.isfinite(rec.depth).all() and rec.depth.shape == (1, 128, 128)
    kept = rec.stages[0].step2.masks
    assert kept[..., :, 124:].sum() == 0  # nothing of the pseudo samples far beyond the mask


# ----------------------------------------------------------------------------- files without noise maps
@pytest.fixture(scope="module")
def released_16(_threads):
    """The released config-E layout (style 512, 8 mapping layers, channel multiplier 1) at
    16 px, random weights with noise strengths that are not zero: (G, D, their state dicts)."""
    widths = default_channels(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G, D = Generator(16, 512, 8, widths).eval(), Discriminator(16, widths).eval()
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("noise.weight"):
                    p.uniform_(0.2, 0.5)
    paper = json.loads((Path(__file__).parent / "fixtures" /
                        "stylegan2_rosinality_128_keys.json").read_text())["g_ema"]
    for k, v in G.state_dict().items():  # the names and shapes of the paper's files
        assert paper[k] == list(v.shape) or k.startswith("noises."), k
    return G, D, dict(G.state_dict()), dict(D.state_dict())


def _load_warned(ckpt):
    """``load_stylegan2(ckpt)`` and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nets = load_stylegan2(ckpt)
    return nets, [str(w.message) for w in caught]


def test_a_file_without_noise_maps_loads_as_the_official_code_loads_it(released_16, tmp_path):
    """rosinality's checkpoints before January 2020 have no ``noises.noise_*``: the official
    code loads them with strict=False, so G keeps its own noise maps; one warning says so."""
    G, D, g_state, d_state = released_16
    old = {k: v for k, v in g_state.items() if not k.startswith("noises.")}
    assert len(old) == len(g_state) - G.num_layers
    path = tmp_path / "before_2020.pt"
    torch.save({"g_ema": old, "d": d_state}, path)
    with warnings.catch_warnings(record=True) as caught, torch.random.fork_rng(devices=[]):
        warnings.simplefilter("always")
        torch.manual_seed(5)
        G2, D2 = hub.load(path)
        torch.manual_seed(5)
        fresh = Generator(16, 512, 8, G.channels)
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert str(path) in message and "noises.noise_#" in message and "\n" not in message
    assert f"({G.num_layers} buffer(s))" in message
    # G2's noise maps are its own, those a Generator makes (the file has none)
    assert all(torch.equal(getattr(G2.noises, k), getattr(fresh.noises, k))
               for k, _ in fresh.noises.named_buffers())
    (G_full, _), quiet = _load_warned({"g_ema": g_state, "d": d_state})
    assert quiet == []  # the complete file says nothing
    w = G.mapping(torch.randn(2, 512, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        # without noise the file's weights alone make the image: the same bit for bit
        assert torch.equal(G2.synthesis(w, "none"), G.synthesis(w, "none"))
        assert torch.equal(G_full.synthesis(w, "const"), G.synthesis(w, "const"))
        x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
        assert torch.equal(D2(x), D(x))
    # with noise strengths of zero (a fresh generator's), "const" gives the same image too
    silent = {k: torch.zeros_like(v) if k.endswith("noise.weight") else v
              for k, v in old.items()}
    (G3, _), said = _load_warned({"g_ema": silent})
    ref = {**g_state, **silent}
    (G4, _), _ = _load_warned({"g_ema": ref})
    with torch.no_grad():
        assert torch.equal(G3.synthesis(w, "const"), G4.synthesis(w, "const"))
    assert len(said) == 1


def test_a_missing_or_unexpected_weight_is_still_refused(released_16):
    _, _, g_state, _ = released_16
    old = {k: v for k, v in g_state.items() if not k.startswith("noises.")}
    # a noise *strength* is a weight (a parameter), unlike the noise maps
    strength = {k: v for k, v in old.items() if k != "conv1.noise.weight"}
    with pytest.raises(ValueError, match=r"missing 1 tensor.*conv1\.noise\.weight.*weight"):
        load_stylegan2({"g_ema": strength})
    for extra in ("convs.9.conv.weight", "to_rgbs.5.bias", "mystery"):
        with pytest.raises(ValueError, match=rf"1 unexpected tensor.*{re.escape(extra)}"):
            load_stylegan2({"g_ema": {**old, extra: torch.zeros(3)}})


def test_unexpected_buffers_are_reported_in_the_one_warning(released_16):
    G, D, g_state, d_state = released_16
    extra_noise = {**g_state, f"noises.noise_{G.num_layers}": torch.zeros(1, 1, 32, 32)}
    no_kernels = {k: v for k, v in d_state.items() if not k.endswith("kernel")}
    assert len(no_kernels) < len(d_state)
    (G2, D2), said = _load_warned({"g_ema": extra_noise, "d": no_kernels})
    assert len(said) == 1 and "\n" not in said[0]
    assert f"1 unexpected buffer(s), ignored: ['noises.noise_{G.num_layers}']" in said[0]
    assert "['d'] has no" in said[0] and "kernel" in said[0]
    w = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(3)))
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(G2.synthesis(w, "const"), G.synthesis(w, "const"))
        assert torch.equal(D2(x), D(x))  # the blur kernels are fixed: D's own are the file's
    # a buffer of the wrong shape is still refused, naming it
    bad = {**g_state, "noises.noise_0": torch.zeros(1, 1, 8, 8)}
    with pytest.raises(ValueError, match=r"noises\.noise_0: expected \(1, 1, 4, 4\)"):
        load_stylegan2({"g_ema": bad})
