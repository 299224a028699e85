"""Pretraining on GAN samples: it trains the shared nets, its file round-trips exactly, a
reconstruction starts from a copy of it, and wrong files or presets are refused clearly."""
import json
from dataclasses import replace

import pytest
import torch

from g2s_lite import benchmark as bm
from g2s_lite import hub, results
from g2s_lite.losses import PerceptualLoss
from g2s_lite.pretrain import (PretrainConfig, Pretrained, main, pretrain, round_path,
                               step3_joint, training_latents)
from g2s_lite.refine import PRESETS, Nets, Step3Config, get_preset, reconstruct, step3_loss
from g2s_lite.render import Renderer
from g2s_lite.synth import SynFaces

TINY = PretrainConfig().quick()


@pytest.fixture(scope="module")
def gan():
    return hub.load("synface64")


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
                        prior=PRESETS["synface64"].starting_prior())
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
    on, off = torch.ones(2, 1, 64, 64), torch.zeros(2, 1, 64, 64)
    with torch.no_grad():
        alone = step3_loss(nets, a, samples[:2], on, config, perceptual, renderer)
        # b's samples masked out: what is left must be a's samples under a's shape
        paired = step3_loss(nets, torch.cat([a, b]), samples, torch.cat([on, off]), config,
                            perceptual, renderer)
        swapped = step3_loss(nets, torch.cat([b, a]), samples, torch.cat([on, off]), config,
                             perceptual, renderer)
    assert torch.allclose(paired["l1_projected"], alone["l1_projected"], atol=1e-6)
    assert abs(swapped["l1_projected"] - alone["l1_projected"]) > 1e-3
    with pytest.raises(ValueError, match="shared equally"):
        step3_loss(nets, torch.cat([a, b]), samples[:3], on[:1].expand(3, -1, -1, -1), config,
                   perceptual, renderer)
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
                        prior=PRESETS["synface64"].starting_prior())
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
    blob["state"]["view"] = {k: v[..., :1] for k, v in blob["state"]["view"].items()}
    torch.save(blob, tmp_path / "cut.pt")
    with pytest.raises(ValueError, match="does not fit preset 'synface64'"):
        Pretrained.load(tmp_path / "cut.pt", G)
    # a file made when V could still move faces in depth would bring that range back
    blob = torch.load(path, weights_only=True)
    blob["state"]["view"]["scale"][5] = 0.1
    torch.save(blob, tmp_path / "old_ranges.pt")
    with pytest.raises(ValueError, match="ranges .* Pretrain again"):
        Pretrained.load(tmp_path / "old_ranges.pt", G)


def test_reconstruct_starts_from_a_copy_and_checks_the_preset(gan, pretrained, monkeypatch):
    monkeypatch.setenv("G2S_QUICK", "1")
    G, D = gan
    image = SynFaces(64).sample(1, seed=555)["image"]
    before = _outputs(pretrained.nets, image)
    w = training_latents(G, 1, seed=3)
    rec = reconstruct(image, G, D, w=w, progress=False, perceptual=PerceptualLoss("ssim"),
                      start=pretrained)
    assert all(torch.equal(a, b) for a, b in zip(before, _outputs(pretrained.nets, image)))
    assert not torch.equal(rec.depth_canon, before[0])  # the copy went on training
    # with no steps to take, the result is exactly what the pretrained nets say
    idle = get_preset("synface64", quick=True)
    idle = replace(idle, step1=tuple(replace(c, steps=0) for c in idle.step1),
                   step2=tuple(replace(c, steps=0, collect=0) for c in idle.step2),
                   step3=tuple(replace(c, steps=0) for c in idle.step3))
    rec = reconstruct(image, G, D, w=w, preset=idle, progress=False, start=pretrained,
                      perceptual=PerceptualLoss("ssim"))
    assert torch.equal(rec.depth_canon, before[0]) and torch.equal(rec.view, before[2])
    alien = Pretrained(pretrained.nets, pretrained.encoder, {"preset": "face128"})
    with pytest.raises(ValueError, match="made for preset 'face128'"):
        reconstruct(image, G, D, w=w, start=alien, progress=False)
    # with a prior too, D alone starts from it; V (and A, L) stay pretrained
    prior = PRESETS["synface64"].starting_prior()
    rec = reconstruct(image, G, D, w=w, preset=idle, progress=False, start=pretrained,
                      prior=prior, perceptual=PerceptualLoss("ssim"))
    assert torch.allclose(rec.depth_canon[0], prior, atol=1e-5)
    assert torch.equal(rec.view, before[2]) and torch.equal(rec.albedo, before[1])


def test_cli_and_benchmark_with_a_pretrained_file(gan, tmp_path, monkeypatch):
    monkeypatch.setenv("G2S_QUICK", "1")
    path = tmp_path / "p.pt"
    assert main(["--out", str(path), "--images", "1", "--rounds", "1", "--step1", "2",
                 "--step2", "2", "--collect", "1", "--step3", "2", "--no-joint"]) == 0
    made = Pretrained.load(path, gan[0])
    assert made.meta["config"]["images"] == 1 and "--images 1" in made.meta["command"]
    out = tmp_path / "b.json"
    result = bm.run(1, out=out, methods=["g2s_pretrained", "g2s_pretrained_prior_flat"],
                    progress=False, pretrained=path, quick=True)
    assert [(r["method"], r["n"]) for r in result["rows"]] == [
        ("g2s_pretrained", 1), ("g2s_pretrained_prior_flat", 1)]
    assert result["meta"]["pretrained"]["sha256"] == hub.sha256(path)
    # the ablation really starts D at the flat prior: after a few quick steps its depth is
    # still far flatter than the ellipsoid start's
    kept = torch.load(results.depths_path(out))["0"]
    spread = {m: d.float().nan_to_num(0).std().item() for m, d in kept.items()}
    assert spread["g2s_pretrained_prior_flat"] < 0.5 * spread["g2s_pretrained"]
    # a second file of other nets cannot be mixed into the same results
    other = tmp_path / "q.pt"
    assert main(["--out", str(other), "--images", "1", "--rounds", "1", "--step1", "2",
                 "--step2", "2", "--collect", "1", "--step3", "2", "--seed", "5"]) == 0
    assert Pretrained.load(other, gan[0]).meta["config"]["joint"]
    assert not made.meta["config"]["joint"]
    with pytest.raises(ValueError, match="other pretrained nets"):
        bm.run(2, out=out, methods=["g2s_pretrained"], progress=False, pretrained=other,
               resume=True, quick=True)
    assert json.loads(out.read_text())["meta"]["pretrained"]["file"] == str(path)
    # dropping one row made from the nets keeps their record while another row needs it
    results.drop(out, ["g2s_pretrained"], "test", bm.TABLE)
    assert json.loads(out.read_text())["meta"]["pretrained"]["sha256"] == hub.sha256(path)
    results.drop(out, ["g2s_pretrained_prior_flat"], "test", bm.TABLE)
    assert "pretrained" not in json.loads(out.read_text())["meta"]


def test_every_round_can_be_kept_and_the_last_is_the_result(gan, tmp_path, monkeypatch):
    monkeypatch.setenv("G2S_QUICK", "1")
    path = tmp_path / "p.pt"
    assert main(["--out", str(path), "--images", "1", "--rounds", "2", "--step1", "2",
                 "--step2", "2", "--collect", "1", "--step3", "2", "--save-rounds"]) == 0
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
