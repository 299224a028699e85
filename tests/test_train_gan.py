"""The training script on a tiny model: it trains, writes its files, resumes, refuses a
changed configuration, and mixes styles."""
import json
from functools import partial

import pytest
import torch

from g2s_lite import hub
from g2s_lite.gan import load_stylegan2
from conftest import in_processes
from g2s_lite.runtime import World
from g2s_lite.train_gan import (TrainConfig, build, ema_update, mixed_latents, synface_channels,
                                  train)

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


def test_init_from_an_export_starts_where_it_ended(tmp_path):
    """A run started from an exported pair begins with its G_ema (as G and G_ema) and D; a
    pair of another architecture is refused with the options to pass."""
    train(tiny(), tmp_path / "a", progress=False, device="cpu")
    source = tmp_path / "a" / "synface16.pt"
    train(tiny(iters=0, init_from=str(source)), tmp_path / "b", progress=False, device="cpu")
    (G0, D0), (G1, D1) = load_stylegan2(source), load_stylegan2(tmp_path / "b" / "synface16.pt")
    for a, b in ((G0, G1), (D0, D1)):
        assert all(torch.equal(x, y) for x, y in
                   zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    # not the random nets of seed 0, which the run would otherwise start from
    assert not torch.equal(build(tiny())[0].mapping(torch.ones(1, 16)), G1.mapping(torch.ones(1, 16)))
    with pytest.raises(ValueError, match="another architecture.*--style-dim"):
        train(tiny(style_dim=8, iters=0, init_from=str(source)), tmp_path / "c", progress=False,
              device="cpu")


def _shared_batch(world, folder):
    """Two steps of a tiny run in this process; its raw G after the last step."""
    from g2s_lite import train_gan

    last = {}

    def recording(target, source, beta):
        last["G"] = source
        return ema_update(target, source, beta)

    train_gan.ema_update = recording
    summary = train(tiny(iters=2, data_start=100), folder, progress=False, device="cpu",
                    world=world)
    return {"summary": summary, "G": {k: v.clone() for k, v in last["G"].state_dict().items()}}


def test_processes_share_each_batch_and_keep_equal_nets(tmp_path):
    """Under torchrun each process draws its half of the faces and of the latents: with
    averaged gradients the two copies of G stay equal after their steps (each on its own
    data they would part), and rank 0 alone writes the run's files."""
    a, b = in_processes(partial(_shared_batch, folder=str(tmp_path)), 2, tmp_path)
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    start = build(tiny())[0].state_dict()  # the run's seed-0 nets: the steps moved them
    assert any(not torch.equal(a["G"][k], start[k]) for k in start)
    assert a["summary"]["processes"] == 2 and a["summary"]["images"] == 8
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["iter"] == 2
    with pytest.raises(ValueError, match="multiple of --nproc_per_node"):
        train(tiny(batch=3), tmp_path / "odd", progress=False, device="cpu", world=World(0, 2))


def test_command_line_names_a_missing_start_file(tmp_path, capsys):
    from g2s_lite.train_gan import main

    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path), "--init-from", str(tmp_path / "none.pt"), "--iters", "1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --init-from") and "synface64.pt" in err[0]
