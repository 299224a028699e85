"""Pretraining on GAN samples: it trains the shared nets, its file round-trips exactly, a
reconstruction starts from a copy of it, and wrong files or presets are refused clearly."""
from dataclasses import replace

import pytest
import torch

from conftest import in_processes, tiny_preset
from g2s_lite.losses import PerceptualLoss
from g2s_lite.method import reconstruct
from g2s_lite.nets import Nets
from g2s_lite.paper import PRESETS, QUICK_DIVISOR, Step3Config
from g2s_lite.pretrain import (PretrainConfig, Pretrained, main, pretrain, round_path,
                               step3_joint, training_latents)
from g2s_lite.prior import starting_prior
from g2s_lite.refine import step3_loss
from g2s_lite.render import Renderer
from g2s_lite.synth import SynFaces

#: A few visits of a few steps: what is trained and written, not how well.
TINY = PretrainConfig(images=2, rounds=1, step1=3, step2=3, collect=1, step3=3)


@pytest.fixture(scope="module")
def pretrained(gan):
    G, D = gan
    return pretrain(G, D, "synface64", TINY, PerceptualLoss("ssim"), progress=False)


def _outputs(nets: Nets, image: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return [nets.depth(image), nets.albedo(image), nets.view(image), nets.light(image)]


def test_pretraining_trains_every_net_from_the_prior(gan, pretrained):
    G, _ = gan
    image = SynFaces(64).sample(1, seed=555)["image"]
    fresh = Nets.create(64, PRESETS["synface64"].nf, TINY.seed,
                        prior=starting_prior(PRESETS["synface64"]))
    for before, after in zip(_outputs(fresh, image), _outputs(pretrained.nets, image)):
        assert not torch.allclose(before, after)  # every net has moved
    assert pretrained.meta["preset"] == "synface64" and pretrained.meta["config"]["images"] == 2
    # the training latents are typical samples: pulled towards the mean w by the truncation
    w = training_latents(G, 4, seed=1)
    free = G.mapping(torch.randn(4, G.style_dim, generator=torch.Generator().manual_seed(1)))
    assert (w - G.w_avg).norm(dim=1).mean() < (free - G.w_avg).norm(dim=1).mean()


def test_joint_step3_explains_each_sample_by_the_shape_of_its_own_image():
    faces = SynFaces(64).sample(6, seed=555)
    a, b, samples = faces["image"][:1], faces["image"][1:2], faces["image"][2:]
    nets = Nets.create(64, 16, 0)  # D not at a prior: its output differs between a and b
    config, perceptual, renderer = Step3Config(), PerceptualLoss("ssim"), Renderer(64)
    on = torch.ones(4, 1, 64, 64)
    with torch.no_grad():
        # the pair's losses are each image's own, with its own two samples
        paired = step3_loss(nets, torch.cat([a, b]), samples, on, config, perceptual, renderer)
        alone = [step3_loss(nets, x, samples[i:i + 2], on[:2], config, perceptual, renderer)
                 for x, i in ((a, 0), (b, 2))]
        swapped = step3_loss(nets, torch.cat([b, a]), samples, on, config, perceptual, renderer)
    for name, value in paired.items():
        assert value.shape == (2,)
        assert torch.allclose(value, torch.cat([alone[0][name], alone[1][name]]), atol=1e-6)
    assert abs(swapped["l1_projected"][0] - alone[0]["l1_projected"][0]) > 1e-3
    with pytest.raises(ValueError, match="shared equally"):
        step3_loss(nets, torch.cat([a, b]), samples[:3], on[:3], config, perceptual, renderer)
    # a few joint steps on two images lower their loss, and every step holds both images
    projected = samples.reshape(2, 2, 3, 64, 64)
    history = step3_joint(torch.cat([a, b]), projected, torch.ones(2, 2, 1, 64, 64), nets,
                          config, 8, 2, perceptual, renderer, seed=0)
    assert len(history) == 8 and history[-1]["loss"] < history[0]["loss"]


def test_pretraining_by_visits_trains_every_net_too_and_is_recorded(gan, pretrained):
    G, D = gan
    visits = pretrain(G, D, "synface64", replace(TINY, joint=False), PerceptualLoss("ssim"),
                      progress=False)
    image = SynFaces(64).sample(1, seed=555)["image"]
    fresh = Nets.create(64, PRESETS["synface64"].nf, TINY.seed,
                        prior=starting_prior(PRESETS["synface64"]))
    for before, after, joint in zip(_outputs(fresh, image), _outputs(visits.nets, image),
                                    _outputs(pretrained.nets, image)):
        assert not torch.allclose(before, after)
        assert not torch.allclose(after, joint)  # the two orders train differently
    assert not visits.meta["config"]["joint"] and pretrained.meta["config"]["joint"]


def test_the_file_round_trips_exactly_and_bad_files_are_refused(gan, pretrained, tmp_path):
    G, _ = gan
    path, half = tmp_path / "p.pt", tmp_path / "half.pt"
    pretrained.save(path, half=False)
    back = Pretrained.load(path, G)
    image = SynFaces(64).sample(1, seed=555)["image"]
    for a, b in zip(_outputs(pretrained.nets, image), _outputs(back.nets, image)):
        assert torch.equal(a, b)
    pretrained.save(half)  # half precision: half the bytes, nearly the same depth
    assert half.stat().st_size < 0.6 * path.stat().st_size
    near = Pretrained.load(half, G)
    assert (near.nets.depth(image) - back.nets.depth(image)).abs().max() < 2e-3
    assert torch.equal(near.nets.view.scale, back.nets.view.scale)  # buffers stay exact
    assert all(torch.equal(a, b) for a, b in zip(pretrained.encoder.state_dict().values(),
                                                   back.encoder.state_dict().values()))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a pretrained-nets file"):
        Pretrained.load(tmp_path / "other.pt", G)
    blob = torch.load(path, weights_only=True)
    assert blob["nets"]["layout"] == "book" and set(blob) == {"nets", "encoder", "meta"}
    blob["nets"]["state"]["view"] = {k: v[..., :1]
                                     for k, v in blob["nets"]["state"]["view"].items()}
    torch.save(blob, tmp_path / "cut.pt")
    with pytest.raises(ValueError, match="does not fit preset 'synface64'"):
        Pretrained.load(tmp_path / "cut.pt", G)
    # a file made when V could still move faces in depth would bring that range back
    blob = torch.load(path, weights_only=True)
    blob["nets"]["state"]["view"]["scale"][5] = 0.1
    torch.save(blob, tmp_path / "old_ranges.pt")
    with pytest.raises(ValueError, match="ranges .* Pretrain again"):
        Pretrained.load(tmp_path / "old_ranges.pt", G)


def test_files_in_the_earlier_layout_still_load(gan, pretrained, tmp_path):
    """Before the nets had one format a file was ``{"state": {D, A, V, L, encoder},
    "meta"}``, as the committed ``results/synface64_pretrained*.pt`` are."""
    from g2s_lite.nets import NET_NAMES
    from g2s_lite.results import committed

    G, _ = gan
    state = {name: getattr(pretrained.nets, name).state_dict() for name in NET_NAMES}
    state["encoder"] = pretrained.encoder.state_dict()
    torch.save({"state": state, "meta": pretrained.meta}, tmp_path / "old.pt")
    back = Pretrained.load(tmp_path / "old.pt", G)
    image = SynFaces(64).sample(1, seed=555)["image"]
    for a, b in zip(_outputs(pretrained.nets, image), _outputs(back.nets, image)):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(pretrained.encoder.state_dict().values(),
                                                   back.encoder.state_dict().values()))
    joint = Pretrained.load(committed("synface64_pretrained_joint.pt"), G)
    assert joint.meta["preset"] == "synface64" and joint.meta["config"]["joint"]
    assert not torch.allclose(joint.nets.view(image), torch.zeros(1, 6))  # trained weights


def test_quick_pretraining_follows_the_one_rule():
    full, quick = PretrainConfig(), PretrainConfig().quick()
    assert quick.step1 == full.step1 // QUICK_DIVISOR and quick.images == full.images // 10
    assert quick.rounds == 1 and quick.collect == 1  # never below one


def test_reconstruct_starts_from_a_copy_and_checks_the_preset(gan, pretrained):
    G, D = gan
    image = SynFaces(64).sample(1, seed=555)["image"]
    before = _outputs(pretrained.nets, image)
    w = training_latents(G, 1, seed=3)
    preset = tiny_preset()
    nets = pretrained.starting_nets(preset)
    rec = reconstruct(image, G, D, w=w, preset=preset, progress=False, nets=nets,
                      encoder=pretrained.encoder)
    assert all(torch.equal(a, b) for a, b in zip(before, _outputs(pretrained.nets, image)))
    assert not torch.equal(rec.view, before[2])  # the copy went on training
    # with no steps to take, the result is what the starting nets say: D at the prior, A, V
    # and L pretrained
    idle = replace(preset, step1=tuple(replace(c, steps=0) for c in preset.step1),
                   step2=tuple(replace(c, steps=0, collect=0) for c in preset.step2),
                   step3=tuple(replace(c, steps=0) for c in preset.step3))
    rec = reconstruct(image, G, D, w=w, preset=idle, progress=False, nets=nets,
                      encoder=pretrained.encoder)
    assert torch.allclose(rec.depth_canon[0], starting_prior(preset), atol=1e-5)
    assert torch.equal(rec.view, before[2]) and torch.equal(rec.albedo, before[1])
    alien = Pretrained(pretrained.nets, pretrained.encoder, {"preset": "face128"})
    with pytest.raises(ValueError, match="made for preset 'face128'"):
        alien.starting_nets(preset)


def test_the_cli_writes_what_it_was_told(gan, tmp_path):
    path = tmp_path / "p.pt"
    assert main(["--out", str(path), "--images", "1", "--rounds", "1", "--step1", "2",
                 "--step2", "2", "--collect", "1", "--step3", "2", "--no-joint",
                 "--no-quick"]) == 0
    made = Pretrained.load(path, gan[0])
    assert made.meta["config"]["images"] == 1 and "--images 1" in made.meta["command"]
    assert not made.meta["config"]["joint"]
    assert not (tmp_path / "p.pt.partial").exists()  # written whole, then moved in place
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "no" / "p.pt")])
    assert stop.value.code == 2


def test_every_round_can_be_kept_and_the_last_is_the_result(gan, tmp_path):
    path = tmp_path / "p.pt"
    assert main(["--out", str(path), "--images", "1", "--rounds", "2", "--step1", "2",
                 "--step2", "2", "--collect", "1", "--step3", "2", "--save-rounds",
                 "--no-quick"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pt", "p.round1.pt", "p.round2.pt"]
    G = gan[0]
    final, first, last = (Pretrained.load(p, G) for p in
                          (path, round_path(path, 1), round_path(path, 2)))
    assert [first.meta["config"]["rounds"], last.meta["config"]["rounds"]] == [1, 2]
    image = SynFaces(64).sample(1, seed=555)["image"]
    assert all(torch.equal(a, b) for a, b in zip(_outputs(last.nets, image),
                                                  _outputs(final.nets, image)))
    # the first round's nets went on training: the second round moved them
    assert not torch.equal(_outputs(first.nets, image)[0], _outputs(last.nets, image)[0])
    assert first.meta["seconds"] < last.meta["seconds"] and "--save-rounds" in first.meta["command"]


# ----------------------------------------------------------------------------- torchrun
def _gradient_of_own_data(world):
    net = torch.nn.Linear(3, 1)
    torch.nn.init.ones_(net.weight)
    x = torch.tensor([[1.0, 2.0, 3.0]]) * (world.rank + 1)  # each process its own data
    with world.averaging(net.parameters()):
        net(x).sum().backward()
    return net.weight.grad.clone()


def test_gradients_are_averaged_over_the_processes(tmp_path):
    got = in_processes(_gradient_of_own_data, 2, tmp_path)
    # d(w·x)/dw = x: the average of (1, 2, 3) and (2, 4, 6) on both processes
    for g in got:
        assert torch.equal(g, torch.tensor([[1.5, 3.0, 4.5]]))


def _tiny_pretraining(world):
    from g2s_lite import hub

    G, D = hub.load("synface64")
    G.mean_latent()
    result = pretrain(G, D, "synface64", TINY, PerceptualLoss("ssim"), progress=False,
                      world=world)
    return {"weights": [p.detach().clone() for p in result.nets.parameters()
                        + list(result.encoder.parameters())], "meta": result.meta}


def test_data_parallel_pretraining_keeps_every_copy_equal(gan, pretrained, tmp_path):
    """Two processes, each visiting one of the two images: their copies end the same
    (without averaged gradients they would each follow their own image) and differ from the
    one-process nets, which saw both images one after the other."""
    a, b = in_processes(_tiny_pretraining, 2, tmp_path)
    assert all(torch.equal(x, y) for x, y in zip(a["weights"], b["weights"], strict=True))
    one = list(pretrained.nets.parameters()) + list(pretrained.encoder.parameters())
    assert not all(torch.equal(x, y) for x, y in zip(a["weights"], one, strict=True))
    assert (a["meta"]["world_size"], pretrained.meta["world_size"]) == (2, 1)
    with pytest.raises(ValueError, match="multiple of 2"):
        from g2s_lite.runtime import World
        pretrain(*gan, "synface64", replace(TINY, images=3), world=World(0, 2))
