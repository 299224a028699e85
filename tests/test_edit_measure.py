"""Chapter 8's measurement: the latent directions and the identity distance do what they
say, an oracle reconstruction scores zero on the mesh route, the two commands run end to
end, and the results file says whether LPIPS was measured and, if not, why."""
import pytest
import torch

from g2s_lite import edit_measure, losses


def test_latent_directions_move_what_they_were_fitted_on():
    """On a linear world (targets exactly A·w + c) the step changes one target by the asked
    amount and holds the others."""
    torch.manual_seed(0)
    A = torch.randn(4, 16)
    d = edit_measure.LatentDirections(A, torch.zeros(4), torch.zeros(16), reader=None)
    w = torch.randn(1, 16)
    change = torch.tensor([[30.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.2, -0.1]])
    moved = d.edit(w, change)
    assert torch.allclose((moved - w) @ A.T, change, atol=1e-4)


def test_identity_distance_is_zero_on_the_readers_own_reading():
    from g2s_lite.pose_regressor import PoseLightRegressor

    reader = PoseLightRegressor(outputs=5).eval()
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.ones(2, 1, 64, 64)
    with torch.no_grad():
        read = reader(images)
    assert torch.allclose(edit_measure.identity_distance(reader, images, mask, read),
                          torch.zeros(2), atol=1e-5)
    far = edit_measure.identity_distance(reader, images, mask, read + reader.target_std)
    assert (far > 0.99).all()


def test_an_oracle_reconstruction_scores_zero_on_the_mesh_route(gan):
    """Measured against the truth, a 'reconstruction' made of the world's own factors must
    give the true edited face on the mesh route (up to the rim), lit from the image's frame;
    taking the direction as canonical instead must miss on a turned face."""
    from types import SimpleNamespace

    from g2s_lite.benchmark import BENCHMARK_SEED
    from g2s_lite.pose_regressor import PoseLightRegressor
    from g2s_lite.invert import make_encoder
    from g2s_lite.paper import Step2Config
    from g2s_lite.prior import starting_prior
    from g2s_lite.paper import get_preset
    from g2s_lite.synth import SynFaces, face_params

    G, _ = gan
    faces = SynFaces(64).sample(2, seed=BENCHMARK_SEED)
    i = 0  # turned by 13° of yaw and pitch
    one = slice(i, i + 1)
    oracle = SimpleNamespace(
        image=faces["image"][one], reconstruction=faces["image"][one],
        depth_canon=faces["depth_canon"][one], albedo=faces["albedo"][one],
        view=faces["view"][one], light=faces["light"][one], w=G.w_avg.reshape(1, -1),
        encoder=make_encoder(G, Step2Config(), 64))
    reader = PoseLightRegressor(
        outputs=len(edit_measure.identity_vector(face_params(0, 0)))).eval()
    directions = edit_measure.LatentDirections(torch.randn(4, G.style_dim) * 0.01,
                                               torch.zeros(4), G.w_avg.reshape(-1),
                                               PoseLightRegressor().eval())
    out = edit_measure.edits_of_face(oracle, faces, i, G, reader, directions,
                                     starting_prior(get_preset("synface64")),
                                     edit_measure.identity_vector(face_params(BENCHMARK_SEED, i)),
                                     lpips=_l1_as_lpips)
    for name in ("yaw-30", "yaw+45", "pitch+15"):
        assert out[name]["mesh"]["l1"] < 0.02, (name, out[name]["mesh"])
        assert out[name]["mesh"]["uncovered"] < 0.01
        assert out[name]["input"]["l1"] > 3 * out[name]["mesh"]["l1"]
    for k in range(len(edit_measure.EDIT_LIGHTS)):
        lit = out[f"light{k + 1}"]
        assert lit["mesh"]["l1"] < 0.01, lit["mesh"]
        assert lit["mesh_own_frame"]["l1"] > lit["mesh"]["l1"] + 0.005
    assert set(out["yaw+30"]) == {*edit_measure.METHODS, "truth"}
    # the LPIPS column is the given net's map over the true mask (here an L1 map: the L1)
    for row in (out["yaw+30"]["gan"], out["light2"]["prior"], out["pitch-15"]["input"]):
        assert row["lpips"] == pytest.approx(row["l1"], abs=1e-6)
    summary = edit_measure.summarise({"0": {"edits": out}})
    assert summary["yaw±30"]["mesh"]["l1"] == pytest.approx(
        (out["yaw-30"]["mesh"]["l1"] + out["yaw+30"]["mesh"]["l1"]) / 2)


def test_keep_and_measure_from_the_command_line(tmp_path, monkeypatch, capsys, one_thread):
    """The two commands of the measurement run end to end on one face (tiny schedules and
    readers: what is written, not what it says)."""
    import json

    from conftest import tiny_preset
    from g2s_lite import paper, pose_regressor

    monkeypatch.setitem(paper.PRESETS, "synface64", tiny_preset())
    monkeypatch.setattr(edit_measure, "QUICK_POOL", 32)
    monkeypatch.setattr(edit_measure, "READER_STEPS", 20)
    monkeypatch.setattr(pose_regressor, "REGRESSOR_STEPS", 20)
    keep = tmp_path / "keep"
    assert edit_measure.main(["keep", "--n", "1", "--keep", str(keep), "--quick"]) == 0
    assert (keep / "face_000.pt").exists()
    out = tmp_path / "r.json"
    assert edit_measure.main(["measure", "--n", "2", "--keep", str(keep), "--quick",
                              "--out", str(out), "--markdown", str(tmp_path / "r.md")]) == 0
    result = json.loads(out.read_text())
    assert result["meta"]["n_images"] == 2 and result["meta"]["n_measured"] == 1
    assert set(result["summary"]["yaw±30"]) >= {*edit_measure.METHODS, "truth", "n"}
    table = (tmp_path / "r.md").read_text()
    assert "| yaw±30 |" in table and "python -m g2s_lite.edit_measure measure" in table
    assert "3D-aware editing against the true face" in capsys.readouterr().out
    # what this machine could do about LPIPS, said in its own words
    said = result["meta"]["lpips"]
    assert said == edit_measure.lpips_net()[1] and f"LPIPS: {said}." in table
    assert said.startswith(("measured with", "not measured: ")) and "this machine" not in said


def _l1_as_lpips(a, b, normalize=False):
    """A stand-in for a spatial LPIPS net: the per-pixel L1, ``B×1×S×S``."""
    return (a - b).abs().mean(1, keepdim=True)


def test_lpips_says_why_it_was_not_measured(monkeypatch):
    """The reason is the perceptual loss's own (its chooser's, or the loader's error); where
    LPIPS loads, the net comes back with what it measures with."""
    monkeypatch.setattr(losses, "perceptual_choice",
                        lambda kind, downloads: ("ssim", "the lpips package is not installed"))
    assert edit_measure.lpips_net() == (None, "not measured: the lpips package is not installed")

    class Loaded:
        def __init__(self, kind):
            if kind != "lpips":
                raise AssertionError(kind)
            self.lpips = _l1_as_lpips

    class Broken:
        def __init__(self, kind):
            raise OSError("vgg16-397923af.pth: no such file")

    monkeypatch.setattr(losses, "perceptual_choice", lambda kind, downloads: ("lpips", "ok"))
    monkeypatch.setattr(losses, "PerceptualLoss", Broken)
    assert edit_measure.lpips_net() == (
        None, "not measured: loading LPIPS failed (OSError: vgg16-397923af.pth: no such file)")
    monkeypatch.setattr(losses, "PerceptualLoss", Loaded)
    net, said = edit_measure.lpips_net()
    assert net is _l1_as_lpips and said.startswith("measured with LPIPS-VGG")


def test_keep_from_pretrained_nets_is_the_joint_row_and_measure_refuses_a_mixed_folder(
        tmp_path, monkeypatch, capsys, one_thread):
    """A face kept from a pretrained file is the benchmark's g2s_joint reconstruction of it
    (same depth to the last bit) and says so in its meta; faces kept in different ways in one
    folder are refused by keep and by measure (one line, exit code 2)."""
    from conftest import tiny_preset
    from g2s_lite import benchmark as bm
    from g2s_lite import paper, results
    from g2s_lite.export import load_reconstruction
    from g2s_lite.pretrain import main as pretrain_main

    monkeypatch.setitem(paper.PRESETS, "synface64", tiny_preset())
    path = tmp_path / "joint.pt"
    assert pretrain_main(["--out", str(path), "--images", "1", "--rounds", "1", "--step1", "2",
                          "--step2", "2", "--collect", "1", "--step3", "2", "--no-quick"]) == 0
    keep = tmp_path / "keep"
    assert edit_measure.main(["keep", "--faces", "1", "--keep", str(keep), "--pretrained",
                              str(path)]) == 0
    assert edit_measure.kept_protocol(edit_measure.kept_path(keep, 0)) == "pretrained (joint.pt)"
    out = tmp_path / "b.json"
    bm.run(1, out=out, methods=["g2s_joint"], progress=False, pretrained=path,
           preset=tiny_preset())
    row = torch.load(results.depths_path(out))["0"]["g2s_joint"].float()  # depth − 1, f16
    kept = (load_reconstruction(edit_measure.kept_path(keep, 0)).depth[0] - 1).half().float()
    on = row.isfinite()
    assert on.float().mean() > 0.3 and torch.equal(row[on], kept[on])
    # fresh faces into that folder: refused before any work (one line, exit code 2)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        edit_measure.main(["keep", "--faces", "2", "--keep", str(keep)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "own --keep folder" in err
    assert not edit_measure.kept_path(keep, 1).exists()
    # a face kept before the protocol was recorded (fresh) beside it: a table of what?
    blob = torch.load(edit_measure.kept_path(keep, 0), weights_only=True)
    del blob["meta"]["protocol"]
    torch.save(blob, edit_measure.kept_path(keep, 1))
    assert edit_measure.kept_protocol(edit_measure.kept_path(keep, 1)) == "fresh"
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        edit_measure.main(["measure", "--faces", "2", "--keep", str(keep), "--out",
                           str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "different ways" in err
    assert not (tmp_path / "r.json").exists()
