"""The training script on a tiny model: it trains, writes its files, resumes, refuses a
changed configuration, and mixes styles."""
import json

import pytest
import torch

from g2s_lite import hub
from g2s_lite.gan import load_stylegan2
from g2s_lite.train_gan import TrainConfig, build, mixed_latents, synface_channels, train

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw):
    base = dict(size=16, style_dim=16, n_mlp=2, channels={4: 16, 8: 8, 16: 8}, batch=4,
                iters=4, sample_every=2, checkpoint_every=2)
    return TrainConfig(**{**base, **kw})


def test_train_writes_samples_checkpoint_and_export_then_resumes(tmp_path):
    summary = train(tiny(), tmp_path, progress=False, device="cpu")
    assert summary["iters"] == 4 and summary["images"] == 16
    assert {p.name for p in (tmp_path / "samples").iterdir()} >= {"000002.png", "000004.png", "final.png"}
    G, D = load_stylegan2(tmp_path / "synface16.pt")
    assert G.size == 16 and D is not None
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["iter"] == 4 and len(ckpt["history"]) == 4
    assert any("r1" in row for row in ckpt["history"])  # lazy R1 ran at step 0
    # resume for two more steps: history continues, wall time accumulates
    more = train(tiny(iters=6), tmp_path, resume=True, progress=False, device="cpu")
    assert more["iters"] == 6
    assert json.loads((tmp_path / "summary.json").read_text())["images"] == 24
    with pytest.raises(ValueError, match="different configuration"):
        train(tiny(iters=8, lr=0.01), tmp_path, resume=True, progress=False, device="cpu")


def test_mixed_latents_switch_at_one_layer():
    G, _ = build(tiny())
    g = torch.Generator().manual_seed(0)
    w = mixed_latents(G, 3, mixing=1.0, generator=g)
    assert w.shape == (3, G.n_latent, 16)
    changes = (w[:, 1:] != w[:, :-1]).any(-1).any(0)
    assert changes.sum() == 1  # exactly one crossover
    same = mixed_latents(G, 3, mixing=0.0, generator=g)
    assert (same == same[:, :1]).all()


def test_synface_channels_is_the_bundled_gans_plan():
    G, _ = hub.load("synface64")
    assert synface_channels(64) == G.channels
    assert TrainConfig(size=64).widths() == G.channels  # the default config rebuilds it
    assert synface_channels(16) == {r: c for r, c in G.channels.items() if r <= 16}
