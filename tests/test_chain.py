"""The chain from the GAN to the relief (g2s_lite.chain): the slope against analytic lines,
a face's links on a tiny preset, and a run that is stopped, resumed and refused."""
import json
import math

import pytest
import torch

from g2s_lite import chain
from g2s_lite.metrics import depth_errors
from g2s_lite.pose_regressor import PoseLightRegressor
from g2s_lite.prior import starting_prior
from g2s_lite.render import Renderer
from g2s_lite.synth import SynFaces

from conftest import tiny_preset


def test_slope_of_lines_and_of_noise():
    x = torch.linspace(-30, 30, 61)
    assert chain.slope(x, 0.25 * x - 7)["slope"] == pytest.approx(0.25)
    assert chain.slope(x, -x)["correlation"] == pytest.approx(-1.0)
    flat = chain.slope(x, torch.full_like(x, 3.0))
    assert flat["slope"] == 0.0 and flat["correlation"] == 0.0
    # y independent of x: the fitted slope is near 0 and the correlation small
    noise = torch.randn(20000, generator=torch.Generator().manual_seed(1))
    free = chain.slope(torch.randn(20000, generator=torch.Generator().manual_seed(2)), noise)
    assert abs(free["slope"]) < 0.05 and abs(free["correlation"]) < 0.05
    with pytest.raises(ValueError, match="does not vary"):
        chain.slope(torch.ones(4), x[:4])


def test_summary_is_the_mean_and_standard_error_of_every_number():
    faces = {"0": {"reach": {"slope": 1.0}, "timings": {"total": 9.0}},
             "1": {"reach": {"slope": 3.0}, "timings": {"total": 9.0}}}
    s = chain.summarise(faces)
    assert s["reach.slope"]["mean"] == 2.0
    assert s["reach.slope"]["se"] == pytest.approx(1.0)  # sd √2 over √2 faces
    assert not any(k.startswith("timings") for k in s)


def test_a_face_s_links_on_a_tiny_preset(gan, one_thread):
    G, D = gan
    preset = tiny_preset()
    faces = SynFaces(64).sample(1, seed=chain.TUNING_SEED)
    kept = {}
    entry = chain.face_chain(faces, 0, G, D, preset, PoseLightRegressor().eval(), {},
                             latent_steps=2, kept=kept)
    link = entry["stage1"]
    assert set(link) == {"pseudo", "projected", "view_net", "optimised"}
    assert all(math.isfinite(v) for part in link.values() for v in part.values())
    assert set(entry["reach"]) == {"slope", "correlation", "error"}
    # the prior's row is the prior's own errors, as the benchmark's ellipsoid row has them
    errors = depth_errors(starting_prior(preset)[None], faces["depth"], faces["mask"],
                          Renderer(64))
    assert entry["relief"]["prior"]["side"] == pytest.approx(100 * float(errors["side"]))
    assert entry["relief"]["prior"]["mad"] == pytest.approx(float(errors["mad"]))
    # the pictures behind the numbers: the true depth where the head is, NaN elsewhere
    truth = kept["depth"]["truth"].float()
    head = faces["mask"][0, 0] > 0.5
    assert torch.allclose(truth[head], faces["depth"][0][head], atol=1e-3)
    assert truth[~head].isnan().all() and set(kept["depth"]) == {"truth", "prior", "stage1"}
    assert kept["pseudo"].dtype == torch.uint8 and kept["pseudo"].shape == (4, 3, 64, 64)


def test_more_stages_than_the_preset_has_schedules(gan, one_thread):
    """Four stages of a preset with a first-stage and a later-stage schedule (as ``--stages
    4`` runs synface64): every stage is measured, the optimised latents on the last, with the
    later stages' step 2."""
    from dataclasses import replace

    G, D = gan
    preset = tiny_preset()
    preset = replace(preset, stages=4, flip=preset.flip + (preset.flip[-1],) * 4)
    assert len(preset.step2) < preset.stages
    faces = SynFaces(64).sample(1, seed=chain.TUNING_SEED)
    entry = chain.face_chain(faces, 0, G, D, preset, PoseLightRegressor().eval(), {},
                             latent_steps=2)
    assert set(entry["relief"]) == {"prior", "stage1", "stage2", "stage3", "stage4"}
    assert "optimised" in entry["stage4"] and "optimised" not in entry["stage3"]
    assert all(math.isfinite(v) for part in entry["stage4"].values() for v in part.values())


def test_a_stopped_run_resumes_and_another_run_is_refused(tmp_path, gan, one_thread,
                                                          monkeypatch):
    out = tmp_path / "chain.json"
    regressor = PoseLightRegressor().eval()
    options = dict(preset=tiny_preset(), latent_steps=1, regressor=regressor, spread=4,
                   progress=False)
    calls = []
    real = chain.face_chain

    def counted(faces, i, *args, **kwargs):
        calls.append(i)
        return real(faces, i, *args, **kwargs)

    monkeypatch.setattr(chain, "face_chain", counted)
    chain.run(1, out, **options)
    first = json.loads(out.read_text())["faces"]["0"]
    result = chain.run(2, out, resume=True, **options)
    assert calls == [0, 1]  # face 0 was not done again
    assert result["faces"]["0"] == first  # read back, not measured again
    assert set(result["spread"]) >= {"gan_yaw", "data_yaw", "true_yaw"}
    assert set(torch.load(out.with_suffix(".pt"), weights_only=True)) == {"0", "1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.json", "chain.md", "chain.pt"]
    table = out.with_suffix(".md").read_text()
    assert "(b) reach" in table and "(e) relief" in table
    with pytest.raises(ValueError, match="holds another run"):
        chain.run(2, out, resume=True, **{**options, "latent_steps": 3})


def test_command_line_refuses_a_missing_pretrained_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        chain.main(["--faces", "1", "--out", str(tmp_path / "c.json"), "--pretrained",
                    str(tmp_path / "none.pt")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no pretrained file") and len(err) == 1


def test_step_3_on_the_truth_starts_where_a_reconstruction_starts(one_thread):
    """Link (f): the start is the fresh nets' own depth as a reconstruction seats them; a
    step 3 that cannot move (rate 0) ends there; the preset's step 3 moves it."""
    from dataclasses import replace

    from g2s_lite.method import factors, fresh_nets

    preset = tiny_preset()
    faces = SynFaces(64).sample(1, seed=chain.TUNING_SEED)
    nets = fresh_nets(preset, 0, "cpu")
    seated = factors(nets, faces["image"][:1], Renderer(64))
    errors = depth_errors(seated.depth, faces["depth"], faces["mask"], Renderer(64),
                          pred_valid=seated.valid)
    still = replace(preset, step3=tuple(replace(c, lr=0.0) for c in preset.step3))
    entry = chain.truth_chain(faces, 0, still, fresh_nets(preset, 0, "cpu"))
    assert set(entry["relief"]) == {"start", "truth"}
    assert entry["relief"]["start"]["side"] == pytest.approx(100 * float(errors["side"]))
    assert entry["relief"]["truth"] == pytest.approx(entry["relief"]["start"])
    moved = chain.truth_chain(faces, 0, preset, fresh_nets(preset, 0, "cpu"))
    assert moved["relief"]["start"] == pytest.approx(entry["relief"]["start"])
    assert moved["relief"]["truth"]["side"] != pytest.approx(moved["relief"]["start"]["side"])


def test_a_truth_run_writes_link_f_alone_and_is_not_resumed_as_another(tmp_path, one_thread):
    out = tmp_path / "truth.json"
    result = chain.run(1, out, preset=tiny_preset(), truth=True, progress=False)
    assert result["spread"] is None and result["meta"]["truth"] is True
    assert set(result["faces"]["0"]["relief"]) == {"start", "truth"}
    table = out.with_suffix(".md").read_text()
    assert "(f) truth" in table and "(b) reach" not in table
    with pytest.raises(ValueError, match="holds another run"):
        chain.run(1, out, preset=tiny_preset(), resume=True, latent_steps=1, spread=0,
                  regressor=PoseLightRegressor().eval(), progress=False)


def test_a_file_of_the_book_s_gan_is_not_resumed_with_another(tmp_path):
    """Files without a ``gan`` entry were made with the book's GAN: they resume under it and
    are refused under another (``--gan``)."""
    meta = {"command": "chain", "preset": "synface64", "stages": 1, "protocol": "fresh",
            "seed": 555, "quick": False, "latent_steps": 300, "view_lr": None, "truth": False}
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"meta": meta, "faces": {"0": {"yaw": 1}}}))
    assert chain._resumed(path, dict(meta))[0] == {"0": {"yaw": 1}}
    with pytest.raises(ValueError, match="holds another run"):
        chain._resumed(path, {**meta, "gan": "runs/longer/synface64.pt"})
