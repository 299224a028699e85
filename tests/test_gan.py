"""StyleGAN2 (g2s_lite.gan) against the reference implementation and the paper's checkpoints.

Reference outputs — ``tests/fixtures/stylegan2_reference_small.pt``
-------------------------------------------------------------------
The fixture holds outputs of the reference implementation, rosinality/stylegan2-pytorch
``model.py`` at commit bef283a1c24087da704d16c30abc8e36e63efa0e (the code the paper's
checkpoints were made for), computed once on the CPU in float32 by a throwaway script that
is deliberately not in this repository (it contained scaffolding derived from the reference
code). What that script did:

* imported the reference ``model.py`` with its ``op`` package replaced by a stub that
  exposes the reference's own CPU code paths — ``upfirdn2d_native`` and the CPU branch of
  ``fused_leaky_relu`` (``leaky_relu(x + bias, 0.2) · sqrt(2)``), taken verbatim from its
  ``op/*.py`` — instead of compiling the CUDA extensions (on a CPU the reference runs exactly
  these paths);
* patched the channel-width table of a copy of ``model.py`` so that it builds a 32-px
  generator (style_dim 32, 3 mapping layers) with unusual widths {4: 24, 8: 20, 16: 12,
  32: 10} and a 32-px discriminator with widths {4: 18, 8: 14, 16: 11, 32: 7};
* recorded the freshly built blur/upsampling kernels (``default_kernels``), then set every
  parameter and noise map to seeded random values (N(0, 1) weights, mapping weights and
  biases scaled by 1/lr_mul as the reference stores them, modulation biases near 1, small
  biases, non-zero noise strengths) and every FIR kernel to a random *asymmetric* one with
  the same sum, so that kernel flipping and padding are tested too;
* ran: the mapping on ``z``; the generator on ``z`` with the stored noise
  (``randomize_noise=False``); style mixing of ``z``/``z2`` at ``inject_index``; truncation
  0.6 towards a given latent; a random w+ (``input_is_latent=True``); the discriminator on an
  8-image batch and on its first 2 images; and the outputs of its residual blocks;
* saved those tensors with both state dicts and a ``provenance`` string (< 1 MB).

``stylegan2_rosinality_128_keys.json`` lists the tensor names and shapes of the paper's
128-px checkpoints (size 128, style_dim 512, n_mlp 8, channel multiplier 1).
"""
import argparse
import json
from pathlib import Path

import pytest
import torch

from g2s_lite.gan import (Discriminator, Generator, StyleGAN2ShapeError, load_stylegan2,
                          save_stylegan2)

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-5
WIDTHS_128 = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128}  # channel multiplier 1
SMALL = {4: 24, 8: 20, 16: 12, 32: 10}


@pytest.fixture(scope="module")
def ref() -> dict:
    return torch.load(FIXTURES / "stylegan2_reference_small.pt", weights_only=True)


@pytest.fixture(scope="module")
def paper_keys() -> dict:
    return json.loads((FIXTURES / "stylegan2_rosinality_128_keys.json").read_text())


@pytest.fixture(scope="module")
def nets(ref):
    """The reference-fixture networks (random weights, non-zero noise strengths)."""
    return load_stylegan2(ref)


pytestmark = pytest.mark.usefixtures("one_thread")


def _paper_checkpoint(keys: dict) -> dict:
    """A checkpoint with the paper's names and shapes (uninitialised values, ~190 MB)."""
    return {part: {k: torch.empty(s) for k, s in keys[part].items()} for part in ("g_ema", "d")}


def _wplus(G: Generator, w1: torch.Tensor, w2: torch.Tensor, k: int) -> torch.Tensor:
    """Style mixing: w1 for latents 0 … k−1, w2 for the rest."""
    return torch.cat([w1[:, None].expand(-1, k, -1),
                      w2[:, None].expand(-1, G.n_latent - k, -1)], 1)


# ----------------------------------------------------------------------------- reference
def test_fixture_is_the_reference(ref):
    assert "rosinality/stylegan2-pytorch model.py at commit" in ref["provenance"]
    assert sum(t.numel() for t in ref["g_ema"].values()) < 100_000


def test_loading_infers_the_small_architecture(ref, nets):
    G, D = nets
    assert (G.size, G.style_dim, G.n_mlp, G.n_latent) == (32, 32, 3, 8)
    assert G.channels == ref["widths"]["g_ema"]
    assert (D.size, D.channels) == (32, ref["widths"]["d"])
    assert not G.training and not D.training


def _close(ours, theirs) -> bool:
    """Equal up to float32 round-off: TOL relative to the reference's scale."""
    return bool((ours - theirs).abs().max() <= TOL * max(1.0, theirs.abs().max().item()))


@torch.no_grad()
def test_generator_matches_reference(ref, nets):
    G, _ = nets
    assert _close(G.mapping(ref["z"]), ref["w"])
    assert _close(G(ref["z"]), ref["image_g"])
    mix = _wplus(G, G.mapping(ref["z"]), G.mapping(ref["z2"]), ref["inject_index"])
    assert _close(G.synthesis(mix), ref["image_mix"])
    trunc = G(ref["z"], truncation=ref["truncation"], truncation_latent=ref["truncation_latent"])
    assert _close(trunc, ref["image_trunc"])
    assert _close(G.synthesis(ref["wplus"]), ref["image_wplus"])


@torch.no_grad()
def test_discriminator_matches_reference(ref, nets):
    _, D = nets
    assert _close(D(ref["d_image"]), ref["d_out"])
    assert _close(D(ref["d_image"][:2]), ref["d_out_small"])  # stddev group 2
    feats = D.features(ref["d_image"], D.n_blocks)
    assert len(feats) == len(ref["d_features"]) == 3
    for ours, theirs in zip(feats, ref["d_features"]):
        assert ours.shape == theirs.shape
        assert _close(ours, theirs)


def test_fresh_kernels_match_reference(ref):
    G = Generator(32, 32, 3, channels=ref["widths"]["g_ema"])
    D = Discriminator(32, channels=ref["widths"]["d"])
    ours = {**{f"g_ema.{k}": v for k, v in G.state_dict().items()},
            **{f"d.{k}": v for k, v in D.state_dict().items()}}
    assert {k for k in ours if k.endswith("kernel")} == set(ref["default_kernels"])
    for k, v in ref["default_kernels"].items():
        assert torch.equal(ours[k], v), k


# ------------------------------------------------------------------- the paper's checkpoints
def test_names_and_shapes_match_paper_checkpoints(paper_keys):
    cfg = paper_keys["config"]
    assert cfg == {"size": 128, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 1}
    G = Generator(128, 512, 8, channels=WIDTHS_128)
    D = Discriminator(128, channels=WIDTHS_128)
    for net, part in ((G, "g_ema"), (D, "d")):  # same names, shapes and order
        ours = [(k, list(v.shape)) for k, v in net.state_dict().items()]
        assert ours == list(paper_keys[part].items())
    assert G.n_latent == 12


def test_paper_checkpoint_layout_loads_and_infers_config(paper_keys):
    G, D = load_stylegan2(_paper_checkpoint(paper_keys))
    assert (G.size, G.style_dim, G.n_mlp, G.channels) == (128, 512, 8, WIDTHS_128)
    assert (D.size, D.channels) == (128, WIDTHS_128)


def test_wrong_shape_in_paper_layout_names_parameter_and_shapes(paper_keys):
    ckpt = _paper_checkpoint(paper_keys)
    ckpt["g_ema"]["conv1.conv.weight"] = torch.empty(1, 256, 512, 3, 3)
    with pytest.raises(StyleGAN2ShapeError, match=r"conv1\.conv\.weight: expected "
                       r"\(1, 512, 512, 3, 3\), found \(1, 256, 512, 3, 3\) in"):
        load_stylegan2(ckpt)


# ----------------------------------------------------------------------------- files and errors
def _small_nets(seed: int = 0) -> tuple[Generator, Discriminator]:
    torch.manual_seed(seed)
    G = Generator(16, style_dim=32, n_mlp=2, channels={4: 24, 8: 20, 16: 12}).eval()
    D = Discriminator(16, channels={4: 13, 8: 11, 16: 9}).eval()
    with torch.no_grad():  # make biases and noise strengths non-trivial
        for name, p in list(G.named_parameters()) + list(D.named_parameters()):
            if "bias" in name or "noise" in name:
                p.normal_(0.0, 0.2)
    return G, D


@torch.no_grad()
def test_save_load_round_trip(tmp_path):
    G, D = _small_nets()
    path = tmp_path / "small.pt"
    save_stylegan2(path, G, D)
    G2, D2 = load_stylegan2(path)
    z, img = torch.randn(3, 32), torch.randn(4, 3, 16, 16)
    assert torch.equal(G(z), G2(z))
    assert torch.equal(D(img), D2(img))
    # Strict state-dict round trip into freshly built modules.
    Generator(16, 32, 2, channels=G.channels).load_state_dict(G2.state_dict(), strict=True)
    Discriminator(16, channels=D.channels).load_state_dict(D2.state_dict(), strict=True)


@torch.no_grad()
def test_extras_are_ignored_and_d_is_optional(tmp_path):
    G, D = _small_nets()
    ckpt = {"g_ema": G.state_dict(), "g": G.state_dict(), "latent_avg": torch.zeros(32),
            "args": argparse.Namespace(size=16), "ada_aug_p": 0.0}
    torch.save(ckpt, tmp_path / "train.pt")
    G2, D2 = load_stylegan2(tmp_path / "train.pt")
    assert D2 is None
    z = torch.randn(2, 32)
    assert torch.equal(G(z), G2(z))


def test_loading_from_a_dict_does_not_share_its_tensors(ref):
    G, _ = load_stylegan2(ref)
    with torch.no_grad():
        G.input.input.add_(1.0)
    assert not torch.equal(G.input.input, ref["g_ema"]["input.input"])


def test_wrong_shape_names_parameter_file_and_shapes(ref, tmp_path):
    bad = {"g_ema": dict(ref["g_ema"]), "d": ref["d"]}
    bad["g_ema"]["conv1.conv.weight"] = torch.zeros(1, 23, 24, 3, 3)
    path = tmp_path / "ckpt.pt"
    torch.save(bad, path)
    with pytest.raises(StyleGAN2ShapeError) as err:
        load_stylegan2(path)
    assert isinstance(err.value, ValueError)
    assert (f"conv1.conv.weight: expected (1, 24, 24, 3, 3), found (1, 23, 24, 3, 3) in {path}"
            in str(err.value))
    bad = {"g_ema": ref["g_ema"], "d": dict(ref["d"])}
    bad["d"]["final_linear.0.weight"] = torch.zeros(18, 100)
    with pytest.raises(StyleGAN2ShapeError, match=r"final_linear\.0\.weight: expected "
                       r"\(18, 288\), found \(18, 100\)"):
        load_stylegan2(bad)


def test_missing_and_unexpected_keys_are_named(ref, tmp_path):
    missing = {"g_ema": {k: v for k, v in ref["g_ema"].items() if k != "convs.1.noise.weight"}}
    with pytest.raises(ValueError, match=r"missing 1 tensor.*convs\.1\.noise\.weight"):
        load_stylegan2(missing)
    extra = {"g_ema": {**ref["g_ema"], "mystery.weight": torch.zeros(3)}}
    with pytest.raises(ValueError, match=r"unexpected tensor.*mystery\.weight"):
        load_stylegan2(extra)
    no_input = {"g_ema": {k: v for k, v in ref["g_ema"].items() if k != "input.input"}}
    with pytest.raises(ValueError, match=r"no tensor 'input\.input'.*rosinality"):
        load_stylegan2(no_input)
    with pytest.raises(ValueError, match=r"no 'g_ema'"):
        load_stylegan2({"generator": ref["g_ema"]})
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_stylegan2(tmp_path / "nothing.pt")


# ----------------------------------------------------------------------------- generator behaviour
@torch.no_grad()
def test_mapping_start_stop_compose(nets):
    G, _ = nets
    z = torch.randn(4, G.style_dim)
    full = G.mapping(z)
    for k in range(G.n_mlp + 2):
        assert torch.equal(G.mapping(G.mapping(z, 0, k), k), full)
    assert torch.equal(G.mapping(z, 2, 2), z)
    with pytest.raises(ValueError, match="start ≤ stop"):
        G.mapping(z, 3, 1)
    with pytest.raises(ValueError, match="stop"):
        G.mapping(z, 0, G.n_mlp + 2)


@torch.no_grad()
def test_truncation(nets):
    G, _ = nets
    z, center = torch.randn(2, G.style_dim), torch.randn(1, G.style_dim)
    assert torch.equal(G(z, truncation=1.0, truncation_latent=center), G(z))
    at_center = G(z, truncation=0.0, truncation_latent=center)
    assert torch.allclose(at_center, G.synthesis(center.expand(2, -1)), atol=TOL)
    fresh = Generator(16, 8, 2, channels={4: 5, 8: 4, 16: 3})
    with pytest.raises(ValueError, match="mean_latent"):
        fresh(torch.randn(1, 8), truncation=0.5)
    w_avg = fresh.mean_latent(256, seed=1)
    assert w_avg.shape == (1, 8)
    assert torch.equal(w_avg, fresh.mean_latent(256, seed=1))
    assert not torch.equal(w_avg, fresh.mean_latent(256, seed=2))
    assert torch.allclose(fresh(torch.randn(2, 8), truncation=0.0),
                          fresh.synthesis(fresh.w_avg.expand(2, -1)), atol=TOL)
    assert "w_avg" not in fresh.state_dict()


@torch.no_grad()
def test_noise_modes(ref):
    G, _ = load_stylegan2(ref)
    z = torch.randn(2, G.style_dim)
    const = G(z, noise_mode="const")
    assert torch.equal(const, G(z))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    none = G(z, noise_mode="none")
    assert not torch.equal(none, const)
    for buf in G.noises.buffers():
        buf.zero_()
    assert torch.equal(G(z, noise_mode="const"), none)  # "const" reads the buffers
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="fixed")


def test_shapes_and_latent_validation():
    G = Generator(16, 8, 2, channels={4: 5, 8: 4, 16: 3, 64: 7})
    assert (G.n_latent, G.num_layers) == (6, 5)
    assert [tuple(b.shape) for b in G.noises.buffers()] == [
        (1, 1, 4, 4), (1, 1, 8, 8), (1, 1, 8, 8), (1, 1, 16, 16), (1, 1, 16, 16)]
    assert G.synthesis(torch.randn(3, 6, 8)).shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match=r"B×6×8"):
        G.synthesis(torch.randn(3, 5, 8))
    with pytest.raises(ValueError, match="resolution"):
        Generator(16, 8, 2, channels={4: 5, 16: 3})
    with pytest.raises(ValueError, match="power of two"):
        Generator(24, 8, 2)


# ------------------------------------------------------------------- discriminator behaviour
@torch.no_grad()
def test_discriminator_outputs_and_features():
    _, D = _small_nets()
    img = torch.randn(4, 3, 16, 16)
    assert D(img).shape == (4, 1)
    assert D(img[:3]).shape == (3, 1)  # group size min(4, B)
    feats = D.features(img, 2)
    assert [tuple(f.shape) for f in feats] == [(4, 11, 8, 8), (4, 13, 4, 4)]
    assert D.features(img, 0) == []
    with pytest.raises(ValueError, match=r"0…2"):
        D.features(img, 3)
    with pytest.raises(ValueError, match="multiple of"):
        D(torch.randn(6, 3, 16, 16))
    with pytest.raises(ValueError, match=r"B×3×16×16"):
        D(torch.randn(2, 3, 32, 32))


def test_gradients_reach_latents_and_weights():
    G, D = _small_nets()
    z = torch.randn(2, 32, requires_grad=True)
    D(G(z, noise_mode="random")).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
