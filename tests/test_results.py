"""Results files on small synthetic runs (no reconstruction): round trips, a write that is
interrupted, merging halves into the whole, dropping rows, notes, the markdown's layout and
renaming a row, the command line."""
import json
import random
import subprocess
import sys

import pytest
import torch

from g2s_lite import results
from g2s_lite.benchmark import TABLE

METHODS = ["null_depth", "mean_gt_depth", "supervised", "g2s_sym", "g2s_joint",
           "g2s_pretrained_nosym"]


def entry(rng: random.Random) -> dict:
    return {"side": rng.uniform(0.5, 3), "mad": rng.uniform(5, 50), "seconds": rng.uniform(0, 9)}


def synthetic(faces, methods=METHODS, n=4, command="run", wall=10.0, seed=0, **meta):
    """A results file's content as a run over ``faces`` of ``n`` test faces would leave it:
    random errors (the same for a face and method whatever the run), a depth map per face
    and learned method."""
    images, depths = {}, {}
    for i in faces:
        rng = random.Random(f"{seed}-{i}")
        images[str(i)] = {m: entry(rng) for m in methods}
        images[str(i)]["project_seconds"] = 1.0
        depths[str(i)] = {m: torch.full((4, 4), i + 0.01 * k, dtype=torch.float16)
                          for k, m in enumerate(methods) if m not in TABLE.methods[:3]}
    full_meta = {"command": command, "device": "cpu", "n_images": n, "seed": seed,
                 "preset": "synface64", "version": "0", "quick": False, "torch": "2",
                 "wall_seconds": wall, **meta}
    if "supervised" in methods:
        full_meta.setdefault("supervised_steps", 3000)
        full_meta.setdefault("supervised_training_seconds", 5.0)
    if set(methods) & set(TABLE.pretrained):
        full_meta.setdefault("pretrained", {"file": "p.pt", "sha256": "aa"})
    return {"rows": results.rows(images, TABLE), "meta": full_meta, "images": images}, depths


def save(path, content):
    results.write(*content, path)
    return path


def table_part(text: str) -> str:
    return text.split("## How this file was made")[0]


def test_write_then_read_round_trip_and_an_interrupted_write_keeps_the_old_files(
        tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    result, depths = synthetic(range(3))
    save(out, (result, depths))
    got, got_depths = results.read(out)
    assert got == result
    assert got_depths.keys() == depths.keys()
    assert all(torch.equal(got_depths[i][m], depths[i][m]) for i in depths for m in depths[i])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the run is stopped while the sidecar is written

    monkeypatch.setattr(results.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        results.write(*synthetic(range(4), command="other"), out)
    monkeypatch.undo()
    again, again_depths = results.read(out)
    assert again == result and again_depths.keys() == depths.keys()  # the old pair, whole
    with pytest.raises(FileNotFoundError, match="does not exist"):
        results.read(tmp_path / "none.json")
    (tmp_path / "other.json").write_text(json.dumps({"meta": {}, "faces": {}}))
    with pytest.raises(ValueError, match="not a benchmark results file"):
        results.read(tmp_path / "other.json")  # e.g. a chain file


def test_rows_average_each_method_over_the_faces_that_hold_it():
    images = {"0": {"g2s_sym": {"side": 1.0, "mad": 10.0, "seconds": 1.0},
                    "null_depth": {"side": 4.0, "mad": 40.0, "seconds": 0.0},
                    "project_seconds": 3.0},
              "1": {"g2s_sym": {"side": 2.0, "mad": 20.0, "seconds": 2.0}},
              "2": {"g2s_sym": {"side": 6.0, "mad": 30.0, "seconds": 6.0}}}
    rows = results.rows(images, TABLE)
    assert [r["method"] for r in rows] == ["null_depth", "g2s_sym"]  # the table's order
    assert rows[1] == {"method": "g2s_sym", "side": 3.0, "mad": 20.0, "n": 3, "seconds": 3.0}
    assert rows[0]["n"] == 1
    assert results.rows(images, TABLE, methods=["g2s_sym"]) == rows[1:]


def test_two_halves_merged_equal_the_whole(tmp_path):
    whole, whole_depths = synthetic(range(4), wall=7.0)
    a = save(tmp_path / "a.json", synthetic(range(2), command="A", wall=3.0))
    b = save(tmp_path / "b.json", synthetic(range(2, 4), command="B", wall=4.0))
    merged = results.merge(a, b, TABLE, markdown_out=tmp_path / "m.md")
    assert merged["images"] == whole["images"]
    for got, want in zip(merged["rows"], whole["rows"], strict=True):
        assert got == pytest.approx(want)
    assert merged["meta"]["wall_seconds"] == pytest.approx(7.0)
    assert results.read(a)[1].keys() == whole_depths.keys()
    assert table_part((tmp_path / "m.md").read_text()) == table_part(
        results.markdown(whole, TABLE))
    # merging the same share again adds nothing; after it was resumed (one more command,
    # more wall time), only the new faces and the new time
    assert results.merge(a, b, TABLE) == merged
    resumed, resumed_depths = synthetic(range(2, 4), command="B --resume", wall=6.0,
                                        earlier_commands=["B"])
    save(b, (resumed, resumed_depths))
    twice = results.merge(a, b, TABLE)
    assert twice["meta"]["wall_seconds"] == pytest.approx(3.0 + 6.0)
    assert twice["meta"]["merged_from"] == ["B", "B --resume"]


@pytest.mark.parametrize("differ", [{"n": 5}, {"seed": 1}, {"quick": True},
                                    {"pretrained": {"file": "q.pt", "sha256": "bb"}}])
def test_merge_refuses_a_file_of_other_faces_or_other_nets(tmp_path, differ):
    a = save(tmp_path / "a.json", synthetic(range(2)))
    before = a.read_text()
    n, seed = differ.pop("n", 4), differ.pop("seed", 0)
    b = save(tmp_path / "b.json", synthetic(range(2, 4), n=n, seed=seed, **differ))
    with pytest.raises(ValueError, match="cannot merge"):
        results.merge(a, b, TABLE)
    assert a.read_text() == before


def test_a_row_merged_in_brings_its_records(tmp_path):
    a = save(tmp_path / "a.json", synthetic(range(4), methods=["null_depth"]))
    b = save(tmp_path / "b.json", synthetic(range(4), methods=["supervised", "g2s_joint"]))
    merged = results.merge(a, b, TABLE)
    assert [r["method"] for r in merged["rows"]] == ["null_depth", "supervised", "g2s_joint"]
    assert merged["meta"]["supervised_steps"] == 3000
    assert merged["meta"]["pretrained"]["sha256"] == "aa"


def test_dropped_rows_leave_the_table_and_their_records_go_with_the_last(tmp_path):
    out, md = save(tmp_path / "r.json", synthetic(range(4))), tmp_path / "r.md"
    dropped = results.drop(out, ["supervised"], "its trainer changed", TABLE, md)
    assert "supervised" not in [r["method"] for r in dropped["rows"]]
    assert "| supervised |" not in md.read_text() and "| g2s_sym |" in md.read_text()
    assert "Dropped and re-run: supervised (its trainer changed)" in md.read_text()
    assert not set(results.SUPERVISED_META) & set(dropped["meta"])
    assert all("supervised" not in d for d in results.read(out)[1].values())
    # the pretrained nets' record stays while a row made from them does
    assert "pretrained" in results.drop(out, ["g2s_joint"], "x", TABLE)["meta"]
    assert "pretrained" not in results.drop(out, ["g2s_pretrained_nosym"], "x", TABLE)["meta"]
    before = out.read_text()
    with pytest.raises(ValueError, match="unknown method"):
        results.drop(out, ["magic"], "x", TABLE)
    with pytest.raises(ValueError, match="nothing to drop"):
        results.drop(out, ["supervised"], "again", TABLE)
    with pytest.raises(ValueError, match="say why"):
        results.drop(out, ["g2s_sym"], "", TABLE)
    assert out.read_text() == before  # the refusals changed nothing


def test_a_renamed_row_keeps_its_entries_and_maps_and_renamed_back_is_the_same(tmp_path):
    out, md = save(tmp_path / "r.json", synthetic(range(4))), tmp_path / "r.md"
    before, before_depths = results.read(out)
    text = results.markdown(before, TABLE)
    renamed = results.rename(out, "g2s_joint", "g2s_visits", TABLE, md)
    depths = results.read(out)[1]
    for i, record in before["images"].items():
        assert list(renamed["images"][i]) == [  # every entry, in its place
            "g2s_visits" if m == "g2s_joint" else m for m in record]
        assert renamed["images"][i]["g2s_visits"] == record["g2s_joint"]
        assert torch.equal(depths[i]["g2s_visits"], before_depths[i]["g2s_joint"])
        assert "g2s_joint" not in depths[i]
    row = {r["method"]: r for r in renamed["rows"]}["g2s_visits"]
    assert row == {**{r["method"]: r for r in before["rows"]}["g2s_joint"], "method": "g2s_visits"}
    assert "| g2s_visits |" in md.read_text() and "| g2s_joint |" not in md.read_text()
    assert "Renamed: g2s_joint → g2s_visits" in md.read_text()
    # the old name, the commands that used it and the pretrained nets' record stay known
    assert renamed["meta"]["pretrained"] == before["meta"]["pretrained"]
    back = results.rename(out, "g2s_visits", "g2s_joint", TABLE)
    assert back["images"] == before["images"] and back["rows"] == before["rows"]
    assert back["meta"].pop("renamed") == [{"from": "g2s_joint", "to": "g2s_visits"},
                                           {"from": "g2s_visits", "to": "g2s_joint"}]
    assert back["meta"] == before["meta"]
    assert table_part(results.markdown(back, TABLE)) == table_part(text)
    unchanged = out.read_text()
    for old, new, says in (("g2s_visits", "g2s_sym", "no row 'g2s_visits'"),
                           ("project_seconds", "g2s_visits", "no row"),
                           ("g2s_joint", "g2s_sym", "already holds a row 'g2s_sym'"),
                           ("g2s_joint", "magic", "unknown method")):
        with pytest.raises(ValueError, match=says):
            results.rename(out, old, new, TABLE)
    assert out.read_text() == unchanged  # the refusals changed nothing


def test_notes_append_replace_all_or_one(tmp_path):
    out = save(tmp_path / "r.json", synthetic(range(4)))

    def notes():
        return results.read(out)[0]["meta"]["notes"]

    results.add_note(out, "made on a CPU")
    results.add_note(out, "made on a GPU", replace=True)  # the earlier note went stale
    assert notes() == ["made on a GPU"]
    for text in ("rows re-run", "one share resumed"):
        results.add_note(out, text)
    results.add_note(out, "two shares resumed", TABLE, tmp_path / "r.md", number=3)
    assert notes() == ["made on a GPU", "rows re-run", "two shares resumed"]
    text = (tmp_path / "r.md").read_text()
    assert "Note: two shares resumed" in text and "one share resumed" not in text
    with pytest.raises(ValueError, match="no note 4"):
        results.add_note(out, "x", number=4)
    with pytest.raises(ValueError, match="not both"):
        results.add_note(out, "x", replace=True, number=1)
    assert len(notes()) == 3


def test_resume_gives_back_the_work_and_the_history(tmp_path):
    earlier, depths = synthetic(range(2), command="first", notes=["kept"])
    out = save(tmp_path / "r.json", (earlier, depths))
    meta = {**synthetic([], command="second", wall=0.0)[0]["meta"], "n_images": 6}
    images, got_depths, carried = results.resume(out, meta)
    assert images == earlier["images"] and got_depths.keys() == depths.keys()
    assert carried["earlier_commands"] == ["first"] and carried["command"] == "second"
    assert carried["wall_seconds"] == 10.0 and carried["notes"] == ["kept"]
    assert carried["n_images"] == 6  # a resumed run may go on to more faces
    for key, value in (("seed", 1), ("preset", "synface64 (quick)")):
        with pytest.raises(ValueError, match=key):
            results.resume(out, {**meta, key: value})


def test_markdown_opens_with_the_table_and_lists_each_command_once_at_the_end():
    result, _ = synthetic(range(2), command="C", earlier_commands=["A", "A", "B"],
                          merged_from=["S", "B", "S"])
    text = results.markdown(result, TABLE)
    assert "2 of 4 test faces done" in text.splitlines()[0]
    assert text.index("| null_depth |") < text.index("## How this file was made")
    made = text.split("## How this file was made")[1]
    listed = [line[3:-1] for line in made.splitlines() if line.startswith("- `")]
    assert listed == ["A", "B", "C", "S"]
    rows = {r["method"]: r for r in result["rows"]}
    ratio = rows["mean_gt_depth"]["side"] / rows["null_depth"]["side"]
    paper = TABLE.paper["mean_gt_depth"][0] / TABLE.paper["null_depth"][0]
    assert f"| {ratio:.2f} ({paper:.2f}) |" in text
    # the fresh-net row runs none of the paper's protocols: no paper figure beside it
    fresh = rows["g2s_sym"]["side"] / rows["null_depth"]["side"]
    assert f"| {fresh:.2f} |" in text and "g2s_sym" not in TABLE.paper


def test_command_line_edits_and_one_line_errors(tmp_path, capsys):
    a = save(tmp_path / "a.json", synthetic(range(2), command="A"))
    b = save(tmp_path / "b.json", synthetic(range(2, 4), command="B"))
    md = tmp_path / "a.md"
    assert results.main(["merge", str(a), str(b), "--markdown", str(md)]) == 0
    assert len(json.loads(a.read_text())["images"]) == 4 and "4 test faces" in md.read_text()
    assert results.main(["drop", str(a), "g2s_sym", "--reason", "re-run"]) == 0
    assert results.main(["note", str(a), "first"]) == 0
    assert results.main(["note", str(a), "only", "--replace"]) == 0
    assert json.loads(a.read_text())["meta"]["notes"] == ["only"]
    assert results.main(["rename", str(a), "g2s_joint", "g2s_visits", "--markdown", str(md)]) == 0
    assert "| g2s_visits |" in md.read_text()
    capsys.readouterr()
    for argv, says in ((["note", str(a), "x", "--number", "4"], "no note 4"),
                       (["drop", str(a), "g2s_sym"], "--reason"),
                       (["rename", str(a), "g2s_joint", "g2s_sym"], "no row 'g2s_joint'"),
                       (["rename", str(a), "g2s_visits"], "required: NEW"),
                       (["merge", str(a), str(tmp_path / "none.json")], "does not exist"),
                       (["--table", "g2s_lite.benchmark:NOPE", "markdown", str(a)], "no Table"),
                       (["note", str(a), "x", "--number", "1", "--replace"], "not allowed")):
        with pytest.raises(SystemExit) as stop:
            results.main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and says in err
        assert err.startswith("error: ") and err.count("\n") == 1  # one line, no traceback
    assert json.loads(a.read_text())["meta"]["notes"] == ["only"]


def test_module_runs_from_a_shell(tmp_path):
    out = save(tmp_path / "r.json", synthetic(range(4)))
    done = subprocess.run([sys.executable, "-m", "g2s_lite.results", "markdown", str(out),
                           "--out", str(tmp_path / "r.md")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.md").read_text() == results.markdown(results.read(out)[0], TABLE)
