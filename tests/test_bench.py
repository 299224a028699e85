"""The timings command's files: ``--json`` writes what it prints into a timings file, keyed by
what was timed, in the layout Chapter 9 reads; the committed GPU file is one such file. (The
figures themselves are never asserted: the tests time nothing.)"""
import copy
import json
import re

import pytest

from conftest import tiny_preset
from g2s_lite import bench, paper, results

pytestmark = pytest.mark.usefixtures("one_thread")


def chapter9_reads(timing: dict) -> list[str]:
    """What Chapter 9's timing cell prints, from a timings file's contents."""
    lines = [f"{timing['device']} | torch {timing['torch']}"]
    for run in timing["runs"]:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in run["seconds"].items())
        lines.append(f"  {run['preset']}{' (quick)' if run['quick'] else ''}: {parts}")
    return lines + [f"not measured: {timing['not_measured']}"]


def printed_seconds(out: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r"^  (\w+)\s+([\d.]+) s$", out, re.M)}


def test_reconstruct_and_render_write_what_they_print_into_one_file(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setitem(paper.PRESETS, "tiny", tiny_preset())
    path = tmp_path / "timings.json"
    bench.main(["reconstruct", "--preset", "tiny", "--no-quick", "--device", "cpu",
                "--json", str(path)])
    printed = printed_seconds(capsys.readouterr().out)
    timing = json.loads(path.read_text())
    (run,) = timing["runs"]
    assert run["seconds"] == printed  # rounded as printed, to 0.1 s
    assert set(printed) == {"project", "step1", "step2", "step3", "total"}
    assert (run["preset"], run["quick"], run["layout"], run["device"]) == (
        "tiny", False, "synface64", "CPU")
    assert run["command"] == ("python -m g2s_lite.bench reconstruct --preset tiny --no-quick "
                              f"--device cpu --json {path}")
    assert run["threads"] == 1 and timing["device"] == "CPU, 1 CPU threads"
    # the renderer's figures go beside them, each size as it comes
    for size in ("8", "16"):
        bench.main(["render", "--sizes", size, "--batch", "2", "--repeats", "1", "--device",
                    "cpu", "--json", str(path)])
    timing = json.loads(path.read_text())
    (render,) = timing["render_ms"]
    assert set(render["median"]) == set(render["min"]) == {"8", "16"}
    assert all(render["min"][s] <= render["median"][s] for s in ("8", "16"))
    assert len(timing["runs"]) == 1 and timing["batch_images_per_hour"] == []
    assert chapter9_reads(timing)[1].startswith("  tiny: project ")
    assert list(timing)[:5] == ["what", "written_by", "device", "torch", "date"]


def entry(device="CPU", torch="2.0", date="2026-01-01", quick=False, total=1.0):
    return {"preset": "synface64", "quick": quick, "layout": "synface64", "device": device,
            "threads": 4, "torch": torch, "date": date, "command": "c",
            "seconds": {"total": total}}


def test_an_entry_timed_alike_is_replaced_and_the_file_says_what_its_entries_share(tmp_path):
    path = tmp_path / "t.json"
    bench.write_timings(path, "runs", entry(total=1.0))
    bench.write_timings(path, "runs", entry(total=2.0, date="2026-02-01"))  # the same key
    timing = json.loads(path.read_text())
    assert [r["seconds"]["total"] for r in timing["runs"]] == [2.0]
    assert (timing["device"], timing["torch"], timing["date"]) == (
        "CPU, 4 CPU threads", "2.0", "2026-02-01")
    bench.write_timings(path, "runs", entry(quick=True, total=3.0))  # another key: added
    bench.write_timings(path, "runs", entry(device="NVIDIA X", torch="2.1", total=4.0))
    timing = json.loads(path.read_text())
    assert [r["seconds"]["total"] for r in timing["runs"]] == [2.0, 3.0, 4.0]
    assert timing["device"] == timing["torch"] == bench.SEVERAL
    assert chapter9_reads(timing)[0] == f"{bench.SEVERAL} | torch {bench.SEVERAL}"


def test_the_committed_gpu_timings_are_a_file_the_command_writes():
    timing = json.loads(results.committed("timings_gpu.json").read_text())
    assert bench._summarise(copy.deepcopy(timing)) == timing
    assert timing["device"].startswith("NVIDIA H200")
    for section, key in bench.TIMING_KEYS.items():
        for e in timing[section]:
            assert set(key) | {"command", "threads", "torch", "date"} <= set(e)
            assert e["command"].startswith("python -m g2s_lite.bench ")
            assert e["command"].endswith(" --json results/timings_gpu.json")
    assert len(chapter9_reads(timing)) == 2 + len(timing["runs"])


def test_the_readme_s_gpu_estimate_is_the_one_bench_makes_from_the_committed_timings():
    from pathlib import Path

    timings = json.loads(results.committed("timings_gpu.json").read_text())
    low, high = bench.gpu_estimates(timings)["T4"]
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    said = re.search(r"T4 an estimated (\d+) to (\d+) minutes", readme)
    assert said and (int(said[1]), int(said[2])) == (round(low / 60), round(high / 60))
    # a faster GPU is not expected to be slower, a slower one not faster
    assert bench.expected_seconds(60.0, "T4", "H200") == (60.0, 60.0)
    assert low == timings["runs"][0]["seconds"]["total"] and high > 10 * low


def test_estimate_without_the_run_it_needs_is_one_error_line(tmp_path, capsys):
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({"runs": [{"preset": "face128", "quick": True}]}))
    with pytest.raises(SystemExit) as stop:
        bench.main(["estimate", "--timings", str(timings)])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: the timings file holds no full face128 run")
