"""The SynFace benchmark: trivial baselines checked by hand, the JSON layout, resuming, and a
tiny quick run of the method end to end."""
import json
import math

import pytest
import torch

from g2s_lite import benchmark as bm
from g2s_lite.metrics import depth_errors
from g2s_lite.nets import ROTATION_RANGE_DEG
from g2s_lite.render import Renderer
from g2s_lite.synth import SynFaces

pytestmark = pytest.mark.usefixtures("one_thread")


def test_trivial_baselines_match_a_direct_computation(tmp_path):
    out = tmp_path / "r.json"
    result = bm.run(3, seed=7, out=out, methods=["null_depth", "ellipsoid_prior"],
                    progress=False)
    faces = SynFaces(64).sample(3, seed=7)
    e = depth_errors(torch.ones(3, 64, 64), faces["depth"], faces["mask"], Renderer(64))
    rows = {r["method"]: r for r in result["rows"]}
    assert rows["null_depth"]["n"] == 3
    assert rows["null_depth"]["side"] == pytest.approx(100 * e["side"].mean().item(), rel=1e-5)
    assert rows["null_depth"]["mad"] == pytest.approx(e["mad"].mean().item(), rel=1e-5)
    # a constant depth has all normals facing the camera: MAD is the mean tilt of the face
    assert 20 < rows["null_depth"]["mad"] < 70
    assert json.loads(out.read_text())["rows"] == result["rows"]
    assert set(result["meta"]) >= {"command", "device", "n_images", "wall_seconds", "version",
                                   "seed"}


def test_resume_keeps_finished_work_and_adds_methods(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    bm.run(2, seed=7, out=out, methods=["null_depth"], progress=False)
    first = json.loads(out.read_text())["images"]["0"]["null_depth"]
    result = bm.run(2, seed=7, out=out, methods=["null_depth", "mean_gt_depth"], resume=True,
                    progress=False)
    assert result["images"]["0"]["null_depth"] == first  # not recomputed
    assert result["meta"]["earlier_commands"] == ["g2s_lite.benchmark.run"]  # on record
    assert {r["method"] for r in result["rows"]} == {"null_depth", "mean_gt_depth"}
    with pytest.raises(ValueError, match="seed"):
        bm.run(2, seed=8, out=out, methods=["null_depth"], resume=True, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        bm.run(1, methods=["magic"], progress=False)


def test_supervised_bound_learns_depth():
    faces = SynFaces(64).sample(4, seed=bm.BENCHMARK_SEED)
    r = Renderer(64)

    def errors(depth):
        return depth_errors(depth, faces["depth"], faces["mask"], r)

    def trained_errors(**options):
        net = bm.train_supervised(60, batch=8, progress=False, **options)
        with torch.no_grad():
            return errors(net(faces["image"]))

    trained, plain = trained_errors(), trained_errors(lam_normal=0.0)
    null = errors(torch.ones_like(faces["depth"]))
    assert trained["side"].mean() < 0.7 * null["side"].mean()  # 0.48 of a flat plane's
    # the normals' term: MAD 0.34 of a flat plane's (0.57 without the term)
    assert trained["mad"].mean() < 0.45 * null["mad"].mean()
    assert plain["mad"].mean() > 0.5 * null["mad"].mean()


def test_quick_cli_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("G2S_QUICK", "1")
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    assert bm.main(["--n", "1", "--out", str(out), "--markdown", str(md), "--no-progress",
                    "--methods", "null_depth", "ellipsoid_prior", "g2s_sym", "g2s_prior_flat",
                    "--supervised-steps", "2"]) == 0
    result = json.loads(out.read_text())
    assert [r["method"] for r in result["rows"]] == ["null_depth", "ellipsoid_prior", "g2s_sym",
                                                      "g2s_prior_flat"]
    assert all(r["n"] == 1 and r["side"] > 0 and r["mad"] > 0 for r in result["rows"])
    # the method's view is kept (pitch, yaw, roll in radians, then translation)
    view = result["images"]["0"]["g2s_sym"]["view"]
    assert len(view) == 6 and all(abs(a) <= math.radians(ROTATION_RANGE_DEG) for a in view[:3])
    assert view[5] == 0.0  # V does not move faces in depth (the paper's z_translation_range)
    assert result["meta"]["quick"] and "--n 1" in result["meta"]["command"]
    text = md.read_text()
    assert "| g2s_sym |" in text and "(0.28)" in text  # the paper's ratio beside ours
    kept = torch.load(bm.depths_path(out))["0"]
    assert set(kept) == {"g2s_sym", "g2s_prior_flat"}
    # the ablation really starts D at the flat prior: after a few quick steps its depth is
    # still far flatter than the ellipsoid start's
    spread = {m: d.float().nan_to_num(0).std().item() for m, d in kept.items()}
    assert spread["g2s_prior_flat"] < 0.5 * spread["g2s_sym"]
    # the kept depth map gives back the recorded error
    depth = 1 + kept["g2s_sym"].float()
    faces = SynFaces(64).sample(1, seed=bm.BENCHMARK_SEED)
    e = depth_errors(depth.nan_to_num(1.0)[None], faces["depth"], faces["mask"], Renderer(64),
                     pred_valid=(~depth.isnan()).float()[None, None])
    assert 100 * e["side"].item() == pytest.approx(result["rows"][2]["side"], rel=0.02)


def test_two_shares_merged_equal_one_whole_run(tmp_path):
    methods = ["null_depth", "mean_gt_depth", "supervised"]
    whole = bm.run(3, seed=7, out=tmp_path / "whole.json", methods=methods, progress=False,
                   supervised_steps=2)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    bm.run(3, seed=7, out=a, methods=methods, progress=False, supervised_steps=2, stop=1)
    bm.run(3, seed=7, out=b, methods=methods, progress=False, supervised_steps=2, first=1)
    assert list(json.loads(a.read_text())["images"]) == ["0"]
    assert list(json.loads(b.read_text())["images"]) == ["1", "2"]
    merged = bm.merge(a, b, markdown_out=tmp_path / "m.md")
    assert list(merged["images"]) == ["0", "1", "2"]
    for got, want in zip(merged["rows"], whole["rows"]):
        assert got["method"] == want["method"] and got["n"] == want["n"] == 3
        # mean_gt_depth averages all 3 faces in both shares
        assert got["side"] == pytest.approx(want["side"], rel=1e-6)
        assert got["mad"] == pytest.approx(want["mad"], rel=1e-6)
    assert set(torch.load(bm.depths_path(a))) == {"0", "1", "2"}
    assert merged["meta"]["merged_from"] == [json.loads(b.read_text())["meta"]["command"]]
    assert "3 test faces" in (tmp_path / "m.md").read_text()
    # a share resumed with one more face and merged again: each of its commands is listed
    # once and its wall time counted once (the command line of a resume differs: --resume)
    part = tmp_path / "part.json"
    bm.run(3, seed=7, out=part, methods=["null_depth"], progress=False, stop=1,
           command="share")
    start = bm.run(3, seed=7, out=tmp_path / "d.json", methods=["null_depth"],
                   progress=False, first=2)["meta"]["wall_seconds"]
    bm.merge(tmp_path / "d.json", part)
    resumed = bm.run(3, seed=7, out=part, methods=["null_depth"], progress=False, stop=2,
                     resume=True, command="share --resume")["meta"]["wall_seconds"]
    twice = bm.merge(tmp_path / "d.json", part)
    assert list(twice["images"]) == ["0", "1", "2"]
    assert twice["meta"]["merged_from"] == ["share", "share --resume"]
    assert twice["meta"]["wall_seconds"] == pytest.approx(start + resumed)
    with pytest.raises(ValueError, match="range"):
        bm.run(3, seed=7, methods=["null_depth"], progress=False, first=2, stop=2)
    bm.run(2, seed=7, out=tmp_path / "c.json", methods=["null_depth"], progress=False)
    with pytest.raises(ValueError, match="n_images"):
        bm.merge(a, tmp_path / "c.json")


def test_drop_removes_a_row_for_resume_to_fill_again_and_notes_show(tmp_path, capsys):
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    methods = ["null_depth", "supervised"]
    before = bm.run(2, seed=7, out=out, methods=methods, progress=False, supervised_steps=2)
    assert set(torch.load(bm.depths_path(out))["0"]) == {"supervised"}
    assert bm.main(["--out", str(out), "--markdown", str(md), "--drop", "supervised",
                    "--reason", "its trainer changed"]) == 0
    dropped = json.loads(out.read_text())
    assert [r["method"] for r in dropped["rows"]] == ["null_depth"]
    assert "supervised_steps" in before["meta"]  # its training record went with the row
    assert not set(bm.SUPERVISED_META) & set(dropped["meta"])
    assert all("supervised" not in rec for rec in dropped["images"].values())
    assert torch.load(bm.depths_path(out))["0"] == {}
    assert "Dropped and re-run: supervised (its trainer changed)" in md.read_text()
    # --resume fills the row again: the same numbers, since the code did not really change
    again = bm.run(2, seed=7, out=out, methods=methods, progress=False, supervised_steps=2,
                   resume=True)
    for got, want in zip(again["rows"], before["rows"], strict=True):
        assert (got["method"], got["side"], got["mad"]) == (want["method"], want["side"],
                                                            want["mad"])
    assert again["meta"]["dropped"] == [{"methods": ["supervised"],
                                         "reason": "its trainer changed"}]
    assert bm.main(["--out", str(out), "--markdown", str(md), "--note", "made on a CPU"]) == 0
    assert "Note: made on a CPU" in md.read_text()
    assert bm.main(["--out", str(out), "--markdown", str(md), "--note", "made on a GPU",
                    "--replace-notes"]) == 0  # the earlier note went stale
    assert json.loads(out.read_text())["meta"]["notes"] == ["made on a GPU"]
    assert "made on a CPU" not in md.read_text()
    for text in ("rows re-run", "one share resumed"):
        bm.main(["--out", str(out), "--note", text])
    assert bm.main(["--out", str(out), "--markdown", str(md), "--note", "two shares resumed",
                    "--replace-note", "3"]) == 0  # that note alone went stale
    assert json.loads(out.read_text())["meta"]["notes"] == ["made on a GPU", "rows re-run",
                                                            "two shares resumed"]
    assert "one share resumed" not in md.read_text() and "rows re-run" in md.read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        bm.main(["--out", str(out), "--note", "x", "--replace-note", "4"])  # there are three
    assert "no note 4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bm.main(["--out", str(out), "--note", "x", "--replace-note", "1", "--replace-notes"])
    with pytest.raises(ValueError, match="not both"):
        bm.add_note(out, "x", replace=True, number=1)
    assert len(json.loads(out.read_text())["meta"]["notes"]) == 3  # the refusals changed nothing
    with pytest.raises(SystemExit):
        bm.main(["--out", str(out), "--replace-notes"])  # nothing to replace them with
    with pytest.raises(SystemExit):
        bm.main(["--out", str(out), "--drop", "supervised"])  # no --reason
    assert "--reason" in capsys.readouterr().err


def test_a_supervised_row_merged_in_brings_its_training_record(tmp_path):
    base, share = tmp_path / "base.json", tmp_path / "share.json"
    bm.run(2, seed=7, out=base, methods=["null_depth"], progress=False)
    bm.run(2, seed=7, out=share, methods=["supervised"], progress=False, supervised_steps=3)
    merged = bm.merge(base, share)
    assert merged["meta"]["supervised_steps"] == 3
    # and a resume that has no supervised net to train keeps the record too
    resumed = bm.run(2, seed=7, out=base, methods=["null_depth", "supervised"], resume=True,
                     progress=False)
    assert resumed["meta"]["supervised_steps"] == 3
    assert [r["method"] for r in merged["rows"]] == ["null_depth", "supervised"]
    assert "supervised_training_seconds" in merged["meta"]
