"""The SynFace benchmark: trivial baselines checked by hand, the supervised bound's quality, a
run stopped and resumed, shares of a run, the command line, and GAN2Shape's rows on a tiny
schedule (the files' bookkeeping itself is tested in test_results.py)."""
import copy
import json
import math
import os
from dataclasses import replace

import pytest
import torch

from conftest import free_port, tiny_preset
from g2s_lite import benchmark as bm
from g2s_lite import hub, results
from g2s_lite.metrics import depth_errors
from g2s_lite.paper import ROTATION_RANGE_DEG
from g2s_lite.pretrain import main as pretrain_main
from g2s_lite.render import Renderer
from g2s_lite.synth import SynFaces

pytestmark = pytest.mark.usefixtures("one_thread")
CHEAP = ["null_depth", "mean_gt_depth", "ellipsoid_prior", "supervised"]


def numbers(result):
    return [(r["method"], r["side"], r["mad"], r["n"]) for r in result["rows"]]


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


def test_a_run_stopped_mid_way_and_resumed_gives_the_uninterrupted_rows(tmp_path, monkeypatch):
    whole = bm.run(3, seed=7, out=tmp_path / "whole.json", methods=CHEAP, progress=False,
                   supervised_steps=2)
    out = tmp_path / "r.json"
    errors, calls = bm._errors, []

    def stopped_on_the_third_face(depth, faces, i, *args):
        calls.append(i)
        if i == 2:
            raise KeyboardInterrupt  # killed mid-image
        return errors(depth, faces, i, *args)

    monkeypatch.setattr(bm, "_errors", stopped_on_the_third_face)
    with pytest.raises(KeyboardInterrupt):
        bm.run(3, seed=7, out=out, methods=CHEAP, progress=False, supervised_steps=2)
    monkeypatch.undo()
    assert sorted(json.loads(out.read_text())["images"]) == ["0", "1"]
    # the rows come out the same although the supervised bound is trained again
    resumed = bm.run(3, seed=7, out=out, methods=CHEAP, progress=False, supervised_steps=2,
                     resume=True)
    assert numbers(resumed) == numbers(whole)
    assert resumed["meta"]["earlier_commands"] == [whole["meta"]["command"]]
    with pytest.raises(ValueError, match="seed"):
        bm.run(3, seed=8, out=out, methods=CHEAP, progress=False, resume=True)
    with pytest.raises(ValueError, match="unknown method"):
        bm.run(1, methods=["magic"], progress=False)


def test_two_shares_merged_equal_one_whole_run(tmp_path):
    """The faces (and mean_gt_depth, the average over all of them) are those of the whole
    ``n`` in every share."""
    whole = bm.run(3, seed=7, methods=CHEAP, progress=False, supervised_steps=2)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    bm.run(3, seed=7, out=a, methods=CHEAP, progress=False, supervised_steps=2, stop=1)
    bm.run(3, seed=7, out=b, methods=CHEAP, progress=False, supervised_steps=2, first=1)
    merged = results.merge(a, b, bm.TABLE)
    for got, want in zip(merged["rows"], whole["rows"], strict=True):
        assert (got["method"], got["n"]) == (want["method"], 3)
        assert got["side"] == pytest.approx(want["side"], rel=1e-6)
        assert got["mad"] == pytest.approx(want["mad"], rel=1e-6)
    with pytest.raises(ValueError, match="range"):
        bm.run(3, seed=7, methods=["null_depth"], progress=False, first=2, stop=2)


def test_command_line_writes_the_file_and_its_table(tmp_path, capsys, monkeypatch):
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    argv = ["--n", "2", "--out", str(out), "--markdown", str(md), "--no-progress", "--quick",
            "--methods", "ellipsoid_prior", "null_depth"]
    assert bm.main(argv) == 0
    result = json.loads(out.read_text())
    assert md.read_text() == capsys.readouterr().out.removesuffix("\n")
    assert md.read_text() == results.markdown(result, bm.TABLE)
    assert numbers(result) == numbers(bm.run(2, methods=["null_depth", "ellipsoid_prior"],
                                             progress=False, quick=True))
    # quick mode names its preset, so a full run cannot resume a quick file
    assert result["meta"]["quick"]
    monkeypatch.delenv("G2S_QUICK", raising=False)
    # bad input: one line that says what is wrong, and exit code 2
    for bad, says in (([a for a in argv if a != "--quick"] + ["--resume"], "preset"),
                      (["--out", str(out), "--methods", "magic"], "magic"),
                      (["--out", str(out), "--n", "2", "--first", "2"], "range"),
                      (["--out", str(out), "--methods", "g2s_joint", "g2s_visits"], "apart")):
        with pytest.raises(SystemExit) as stop:
            bm.main(bad)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1
        assert says in err


def test_the_default_run_makes_again_the_committed_fresh_file_and_no_tried_variant():
    committed_rows = {row["method"] for row in
                      json.loads(results.committed("synface64.json").read_text())["rows"]}
    assert set(bm.DEFAULT_METHODS) == committed_rows - set(bm.PRETRAINED_ROWS)
    assert not set(bm.TRIED_VARIANTS) & set(bm.DEFAULT_METHODS)
    assert set(bm.TRIED_VARIANTS) <= set(bm.SCHEDULE_VARIANTS)  # still rows


def test_a_new_row_is_one_entry_of_the_registry(tmp_path, monkeypatch):
    """A row needs nothing but its entry in ROWS (and in the table): here the null depth
    scaled by 1.05, which both measures score as the null depth itself (SIDE is blind to
    scale, and every constant depth has the same normals), its map kept per face as for a
    learned row."""
    scaled = bm.Row(lambda i, shared: bm.Prediction(torch.full((shared.size,) * 2, 1.05)))
    monkeypatch.setitem(bm.ROWS, "scaled_null", scaled)
    monkeypatch.setattr(bm, "TABLE", replace(bm.TABLE, methods=(*bm.METHODS, "scaled_null")))
    out = tmp_path / "r.json"
    result = bm.run(2, seed=7, out=out, methods=["null_depth", "scaled_null"], progress=False)
    rows = {r["method"]: r for r in result["rows"]}
    assert rows["scaled_null"]["n"] == 2
    assert rows["scaled_null"]["side"] == pytest.approx(rows["null_depth"]["side"], rel=1e-5)
    assert rows["scaled_null"]["mad"] == pytest.approx(rows["null_depth"]["mad"], rel=1e-5)
    kept = torch.load(results.depths_path(out))
    assert {i: set(m) for i, m in kept.items()} == {"0": {"scaled_null"}, "1": {"scaled_null"}}
    assert torch.equal(kept["0"]["scaled_null"], torch.full((64, 64), 0.05).half())  # depth − 1


def test_gan2shape_rows_keep_the_view_and_a_depth_map_that_gives_the_error(tmp_path):
    """On a tiny schedule: the plumbing of the learned rows, not their quality (that is
    Chapter 6's and test_refine's)."""
    out = tmp_path / "b.json"
    result = bm.run(1, out=out, methods=["g2s_sym", "g2s_prior_flat"], preset=tiny_preset(),
                    progress=False, quick=True, perceptual="ssim")
    # the method's view is kept (pitch, yaw, roll in radians, then translation)
    view = result["images"]["0"]["g2s_sym"]["view"]
    assert len(view) == 6 and all(abs(a) <= math.radians(ROTATION_RANGE_DEG) for a in view[:3])
    assert view[5] == 0.0  # V does not move faces in depth (the paper's z_translation_range)
    kept = torch.load(results.depths_path(out))["0"]
    assert set(kept) == {"g2s_sym", "g2s_prior_flat"}
    # the ablation really starts D at the flat prior: after a few steps its depth is still far
    # flatter than the ellipsoid start's
    spread = {m: d.float().nan_to_num(0).std().item() for m, d in kept.items()}
    assert spread["g2s_prior_flat"] < 0.5 * spread["g2s_sym"]
    # the kept depth map gives back the recorded error
    depth = 1 + kept["g2s_sym"].float()
    faces = SynFaces(64).sample(1, seed=bm.BENCHMARK_SEED)
    e = depth_errors(depth.nan_to_num(1.0)[None], faces["depth"], faces["mask"], Renderer(64),
                     pred_valid=(~depth.isnan()).float()[None, None])
    assert 100 * e["side"].item() == pytest.approx(result["rows"][0]["side"], rel=0.02)


def test_another_gan_is_used_recorded_and_not_resumed_as_the_book_s(gan, tmp_path):
    """``gan=`` (``--gan``) swaps the GAN of GAN2Shape's rows: its samples change the
    reconstruction, the file records it (the book's GAN is the default, unrecorded) and a
    file of one GAN is not continued with the other."""
    from g2s_lite.gan import save_stylegan2

    G, D = (copy.deepcopy(m) for m in gan)
    with torch.no_grad():
        for p in G.style.parameters():
            p.mul_(1.5)  # another GAN of the same layout
    other = tmp_path / "other.pt"
    save_stylegan2(other, G, D)
    options = dict(methods=["g2s_sym"], preset=tiny_preset(), progress=False, quick=True,
                   perceptual="ssim")
    book = bm.run(1, out=tmp_path / "book.json", **options)
    swapped = bm.run(1, out=tmp_path / "other.json", gan=str(other), **options)
    assert "gan" not in book["meta"] and swapped["meta"]["gan"] == str(other)
    assert swapped["rows"][0]["side"] != pytest.approx(book["rows"][0]["side"], rel=1e-4)
    assert f"GAN {other}" in results.markdown(swapped, bm.TABLE).splitlines()[0]
    with pytest.raises(ValueError, match="holds a run with gan"):
        bm.run(1, out=tmp_path / "book.json", gan=str(other), resume=True, **options)


def test_pretrained_rows_start_from_the_file_and_refuse_another(gan, tmp_path, capsys):
    """g2s_visits and the ablations start from a pretrained-nets file and record its hash; a
    resumed run with other nets or none is refused, as is a file pretrained the other way for
    a row named by its pretraining; dropping the last row that used the nets drops their
    record."""
    path, other = tmp_path / "p.pt", tmp_path / "q.pt"
    tiny = ["--images", "1", "--rounds", "1", "--step1", "2", "--step2", "2", "--collect", "1",
            "--step3", "2", "--no-quick"]
    assert pretrain_main(["--out", str(path), "--no-joint", *tiny]) == 0
    assert pretrain_main(["--out", str(other), "--seed", "5", *tiny]) == 0
    out = tmp_path / "b.json"
    result = bm.run(1, out=out, methods=["g2s_visits", "g2s_pretrained_prior_flat"],
                    progress=False, pretrained=path, preset=tiny_preset())
    assert [(r["method"], r["n"]) for r in result["rows"]] == [
        ("g2s_visits", 1), ("g2s_pretrained_prior_flat", 1)]
    assert result["meta"]["pretrained"]["sha256"] == hub.sha256(path)
    # the ablation really starts D at the flat prior: after a few steps its depth is still
    # far flatter than the ellipsoid start's
    kept = torch.load(results.depths_path(out))["0"]
    spread = {m: d.float().nan_to_num(0).std().item() for m, d in kept.items()}
    assert spread["g2s_pretrained_prior_flat"] < 0.5 * spread["g2s_visits"]
    # the start of the pretrained rows, before any step: the prior turned by the file's V
    from g2s_lite.method import factors
    from g2s_lite.pretrain import Pretrained

    start = bm.run(1, out=tmp_path / "start.json", methods=["pretrained_start"],
                   progress=False, pretrained=path, preset=tiny_preset())
    nets = Pretrained.load(path, gan[0]).starting_nets(tiny_preset(), 0)
    face = SynFaces(64).sample(1, seed=bm.BENCHMARK_SEED)
    seen = factors(nets, face["image"], Renderer(64))
    want = depth_errors(seen.depth, face["depth"], face["mask"], Renderer(64),
                        pred_valid=seen.valid)
    row = start["images"]["0"]["pretrained_start"]
    assert row["side"] == pytest.approx(100 * want["side"].item(), rel=1e-4)
    assert row["view"] == pytest.approx(seen.view[0].tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="other pretrained nets"):
        bm.run(2, out=out, methods=["g2s_pretrained_prior_flat"], progress=False,
               pretrained=other, resume=True, preset=tiny_preset())
    with pytest.raises(ValueError, match="holds pretrained rows started from .*p.pt"):
        bm.run(2, out=out, methods=["g2s_pretrained_prior_flat"], progress=False,
               resume=True, preset=tiny_preset())  # nets made anew would not be those
    # the joint file for the visits row, the visits file for the joint row (the command
    # line: one line, exit code 2)
    with pytest.raises(ValueError, match="pretrained jointly, not by visits: run g2s_joint"):
        bm.run(2, out=out, methods=["g2s_visits"], progress=False, pretrained=other,
               resume=True, preset=tiny_preset())
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        bm.main(["--n", "1", "--out", str(tmp_path / "j.json"), "--methods", "g2s_joint",
                 "--pretrained", str(path), "--quick", "--no-progress"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {path} holds nets pretrained by visits, not jointly")
    assert not (tmp_path / "j.json").exists()
    # dropping one row made from the nets keeps their record while another row needs it
    results.drop(out, ["g2s_visits"], "test", bm.TABLE)
    assert json.loads(out.read_text())["meta"]["pretrained"]["sha256"] == hub.sha256(path)
    results.drop(out, ["g2s_pretrained_prior_flat"], "test", bm.TABLE)
    assert "pretrained" not in json.loads(out.read_text())["meta"]


# ----------------------------------------------------------------------------- torchrun
def _one_rank(rank, size, port, kwargs, stop_at):
    """One process of a run shared by ``size`` on the CPU (gloo), as torchrun starts it;
    ``stop_at`` (rank, face, call): that rank dies at that call of _errors on that face."""
    import os

    from g2s_lite.runtime import joined

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    if stop_at is not None and stop_at[0] == rank:
        errors, calls = bm._errors, []

        def dies(depth, faces, i, *args):
            calls.append(i)
            if i == stop_at[1] and calls.count(i) == stop_at[2]:
                raise RuntimeError("killed mid-image")
            return errors(depth, faces, i, *args)

        bm._errors = dies
    with joined("cpu") as world:
        bm.run(**kwargs, world=world)


def _shared(size, stop_at=None, **kwargs):
    torch.multiprocessing.spawn(_one_rank, (size, free_port(), kwargs, stop_at), nprocs=size)


def entries(result):
    """What must not depend on how many processes made a file: every face's numbers."""
    return {i: {m: (v["side"], v["mad"], v.get("view")) for m, v in r.items()
                if isinstance(v, dict)} for i, r in result["images"].items()}


def same_maps(a, b):
    """Two depth sidecars hold the same maps, bit for bit (NaN where uncovered)."""
    return a.keys() == b.keys() and all(
        a[i].keys() == b[i].keys() and torch.equal(a[i][m].isnan(), b[i][m].isnan())
        and torch.equal(a[i][m].nan_to_num(), b[i][m].nan_to_num()) for i in b for m in b[i])


def test_two_processes_under_torchrun_write_the_file_of_one(tmp_path):
    """The command line under torchrun (gloo, CPU): one file, the same rows and depth maps
    as one process's, and ``world_size`` in its meta; no part files left behind."""
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "two.json"
    subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "g2s_lite.benchmark",
                    "--faces", "3", "--seed", "7", "--out", str(out), "--no-progress",
                    "--supervised-steps", "2", "--methods", *CHEAP],
                   check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    two = json.loads(out.read_text())
    one = bm.run(3, seed=7, out=tmp_path / "one.json", methods=CHEAP, progress=False,
                 supervised_steps=2)
    assert numbers(two) == numbers(one) and entries(two) == entries(one)
    assert (two["meta"]["world_size"], one["meta"]["world_size"]) == (2, 1)
    kept_two, kept_one = (torch.load(results.depths_path(tmp_path / f)) for f in
                          ("two.json", "one.json"))
    assert kept_two.keys() == kept_one.keys() == {"0", "1", "2"}
    assert same_maps(kept_two, kept_one)
    assert results.parts(out) == []


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two faces, a cheap row and GAN2Shape on a tiny schedule, run by one process."""
    kwargs = dict(n=2, seed=7, methods=["null_depth", "g2s_sym"], preset=tiny_preset(),
                  progress=False, perceptual="ssim")
    out = tmp_path_factory.mktemp("one") / "one.json"
    return kwargs, bm.run(out=out, **kwargs), torch.load(results.depths_path(out))


def test_a_shared_run_killed_mid_image_and_resumed_gives_the_rows_of_one_process(
        tmp_path, tiny_run):
    """Rank 1 dies in its face's GAN2Shape row (its cheap row is kept in its part file);
    resumed by two processes again, the file is the one process's, parts gone."""
    kwargs, one, kept_one = tiny_run
    out = tmp_path / "two.json"
    with pytest.raises(Exception, match="killed mid-image"):
        _shared(2, stop_at=(1, 1, 2), out=out, **kwargs)
    part = results.read(results.part_path(out, 1))[0]
    assert set(part["images"]["1"]) == {"null_depth"}  # the method it had finished
    _shared(2, out=out, resume=True, **kwargs)
    two = json.loads(out.read_text())
    assert numbers(two) == numbers(one) and entries(two) == entries(one)
    kept_two = torch.load(results.depths_path(out))
    assert same_maps(kept_two, kept_one)
    assert two["meta"]["world_size"] == 2 and results.parts(out) == []
