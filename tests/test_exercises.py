"""The exercise checks: each student's seed gives their own numbers; each check accepts an
answer computed another way and rejects a wrong one without giving the expected value away;
the teacher's command prints every student's answers."""
import json
import math
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from g2s_lite import edit, metrics, prior
from g2s_lite.exercises import (all_exercises, check, exercises_of, expected, params,
                                statement, task)
from g2s_lite.exercises.__main__ import main
from g2s_lite.render import Renderer, make_view
from g2s_lite.results import committed
from g2s_lite.synth import SynFaces

#: Two students' seeds (and the book's example, seed 0).
SEED, OTHER = 1, 2


def _fake_rec(index=8):
    """What exercises 8.1 and 8.3 read of a reconstruction, from a true face seen frontally."""
    face = SynFaces(64).sample(1, seed=0, start=index)
    return SimpleNamespace(light=face["light"], depth_canon=face["depth_canon"],
                           view=torch.zeros(1, 6))


REC = _fake_rec()
CONTEXT = {"8.1": {"rec": REC}, "8.3": {"rec": REC}}
#: Every exercise with one expected answer (not 10.3, whose answers are constructions).
ANSWERED = [n for n, ex in all_exercises().items() if n != "10.3"]
NUMERIC = [n for n in ANSWERED if n != "8.4"]   # 8.4's answer is a method's name


# ----------------------------------------------------------------------------- every exercise
def _wrong_answers(want):
    """Answers near the expected one that miss: scaled, of the other sign, off by a factor."""
    if isinstance(want, str):
        return ["input" if want != "input" else "mesh", "no such method"]
    values = list(want) if isinstance(want, tuple) else [want]
    factors = (1.3, 0.7, -1.0, 2.0, 0.5, 100.0)
    wrong = []
    for f in factors:
        for k in range(len(values)):                 # one component wrong at a time …
            v = list(values)
            v[k] = v[k] * f if v[k] != 0 else 0.37
            wrong.append(v)
        wrong.append([v * f + (0.37 if v == 0 else 0) for v in values])   # … and all of them
    wrong = [tuple(w) if isinstance(want, tuple) else w[0] for w in wrong]
    if isinstance(want, int) or (isinstance(want, tuple) and isinstance(want[0], int)):
        wrong += [tuple(v + 3 for v in values) if isinstance(want, tuple) else want + 3]
    return wrong


def _forms(value):
    """How a printed text could spell ``value``: a few precisions, fixed and general."""
    if isinstance(value, (tuple, list)):
        return {form for v in value for form in _forms(v)}
    v = abs(float(value))
    forms = {f"{v:.{p}g}" for p in (2, 3, 4, 5)} | {f"{v:.{p}f}" for p in (2, 3, 4)}
    if v == int(v):
        forms.add(str(int(v)))
    # a single digit or 0.00 stands in a text for many things; longer forms are giveaways
    return {f for f in forms if len(f.strip("0.")) >= 2 and f.strip("0.")}


@pytest.mark.parametrize("exercise", ANSWERED)
def test_a_wrong_answer_is_told_how_it_misses_never_the_expected_value(exercise, capsys):
    for seed in (0, SEED):
        want = expected(exercise, seed, **CONTEXT.get(exercise, {}))
        forms = _forms(want) if not isinstance(want, str) else {want}
        for wrong in _wrong_answers(want):
            assert not check(exercise, wrong, seed=seed, **CONTEXT.get(exercise, {})), wrong
            out = capsys.readouterr().out
            assert out.startswith("✗ not yet: ") and len(out) > 30
            shown = [f for f in forms
                     if re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", out)]
            assert not shown, f"{exercise}, seed {seed}, answer {wrong}: {out!r} shows {shown}"


@pytest.mark.parametrize("exercise", NUMERIC)
def test_each_seed_has_its_own_answer_and_only_its_own_passes(exercise, capsys):
    context = CONTEXT.get(exercise, {})
    book, mine, theirs = (expected(exercise, s, **context) for s in (0, SEED, OTHER))
    assert mine != theirs and mine != book
    assert check(exercise, mine, seed=SEED, **context)
    assert capsys.readouterr().out.startswith("✓ right: ")
    assert not check(exercise, theirs, seed=SEED, **context)
    assert not check(exercise, book, seed=SEED, **context)


def _slips(seed):
    """Wrong answers a known slip gives, and a word of the hint that must name the slip."""
    p = {n: params(n, seed) for n in ("1.3", "2.2", "3.5", "5.5", "7.4", "8.2", "9.6", "9.7",
                                      "10.1", "10.4")}
    near, far = expected("1.3", seed)
    x0, y0, x1, y1 = expected("9.7", seed)
    mean, se = expected("7.4", seed)
    n = p["7.4"]["face_last"] - p["7.4"]["face_first"] + 1
    rows = 2 * p["3.5"]["L"] - 3
    t = math.radians(p["8.2"]["yaw"])        # the light turned with the face (R, not Rᵀ)
    x, z = p["8.2"]["dx"] * math.cos(t) + math.sin(t), -p["8.2"]["dx"] * math.sin(t) + math.cos(t)
    plain = torch.cdist(torch.tensor(p["10.1"]["X"], dtype=torch.float64),   # not squared
                        torch.tensor(p["10.1"]["Y"], dtype=torch.float64))
    return [("1.3", (far, near), "swapped"),
            ("2.2", (p["2.2"]["near"], p["2.2"]["far"]), "ellipsoid's"),
            ("3.5", (rows, rows * p["3.5"]["d"]), "convolutions only"),
            ("5.5", p["5.5"]["d"], "square root"),
            ("7.1", 1 / expected("7.1", seed), "on top"),
            ("7.2", expected("7.2", seed) / 100, "multiply by 100"),
            ("7.4", (mean, se * math.sqrt(n / (n - 1))), "n − 1"),
            ("8.2", (x / z, p["8.2"]["dy"] / z), "Rᵀ"),
            ("9.6", p["9.6"]["variance"] * p["9.6"]["scale"] * 60, "square root"),
            ("9.7", (x0, y0, x1 - 1, y1 - 1), "exclusive"),
            ("10.1", (plain.min(1).values.mean() + plain.min(0).values.mean()).item(), "squares"),
            ("10.4", p["10.4"]["error"], "√2")]


@pytest.mark.parametrize("seed", [0, SEED])
def test_a_known_slip_gets_its_own_hint(seed, capsys):
    for exercise, slip, word in _slips(seed):
        assert not check(exercise, slip, seed=seed)
        out = capsys.readouterr().out
        assert word in out, f"{exercise}: {out!r}"


def test_a_name_answer_varies_with_the_seed_too():
    assert len({expected("8.4", s) for s in range(8)}) > 1
    assert params("8.4", SEED) != params("8.4", OTHER)


def test_task_prints_the_statement_and_returns_the_parameters(capsys):
    p = task("9.6", SEED)
    line = capsys.readouterr().out.strip()
    assert line == p["statement"] == statement("9.6", SEED)
    assert line.startswith(f"Exercise 9.6, seed {SEED}: ") and str(p["variance"]) in line
    assert task("9.6")["variance"] == task("9.6", 0)["variance"] == 0.04   # the book's
    assert params("10.1", SEED) == params("10.2", SEED)                    # the same sets
    with pytest.raises(ValueError, match="whole number"):
        task("9.6", "12")
    with pytest.raises(ValueError, match="rec="):
        check("8.1", (1.0, 1.0))
    with pytest.raises(ValueError, match="takes depth=… from the chapter, not rec=…"):
        check("6.1", 0.1, rec=REC)


# ----------------------------------------------------------------------------- independent ways
@pytest.mark.parametrize("seed", [0, SEED])
def test_parallax_matches_the_renderer(seed):
    p = params("1.3", seed)
    r = Renderer(64)
    moved = r.transform(torch.tensor([[[0.0, 0.0, p["near"]], [0.0, 0.0, p["far"]]]]),
                        make_view(yaw=p["yaw"]))
    shifts = (r.project(moved)[0, :, 0] - r.cx).tolist()
    assert check("1.3", shifts, seed=seed)
    assert not check("1.3", [-s for s in shifts], seed=seed)   # the sign says which way


def test_weak_prior_by_value_and_by_map():
    p = params("2.2", SEED)
    face = SynFaces(64).sample(1, seed=0, start=p["face"])
    ellipsoid = prior.make_prior("ellipsoid", 64, prior.box_from_mask(face["mask"][0]),
                                 near=p["near"], far=p["far"])
    weak = p["far"] - (p["far"] - ellipsoid) / 2
    assert check("2.2", weak, seed=SEED)
    assert check("2.2", (weak.min().item(), weak.max().item()), seed=SEED)
    assert not check("2.2", ellipsoid, seed=SEED)
    assert not check("2.2", weak, seed=OTHER)                  # another student's face and depths


def test_styles_of_the_bundled_generator(gan):
    G, _ = gan
    assert check("3.5", (G.n_latent, G.n_latent * G.style_dim))
    assert not check("3.5", (G.n_latent + 1, (G.n_latent + 1) * G.style_dim))


@pytest.mark.parametrize("seed", [0, SEED])
def test_constant_brightness_alpha_from_the_renderer(seed):
    p = params("4.1", seed)
    world = SynFaces(64)
    face = world.sample(1, seed=0, start=p["face"])
    normals = world.renderer.normals(face["depth_canon"])
    cosine = world.renderer.diffuse(normals, torch.tensor([[0.0, 1.0, p["dx"], p["dy"]]]))
    c = cosine[0, 0][face["mask_canon"][0, 0] > 0.5].mean().item()
    assert check("4.1", -c, seed=seed)
    assert not check("4.1", -0.4, seed=seed)                   # the paper's α is not exact here


def test_typical_distance_measured(gan):
    G, _ = gan
    for seed, d in ((0, G.style_dim), (SEED, params("5.5", SEED)["d"])):
        g = torch.Generator().manual_seed(0)
        samples = torch.randn(4096, d, generator=g, dtype=torch.float64)
        assert check("5.5", samples.norm(dim=1).mean().item(), seed=seed)  # whitened: the norm
        assert not check("5.5", d, seed=seed)                  # the squared distance, not it


def test_asymmetry_of_a_known_map_and_of_the_seed_s_face():
    depth = torch.ones(8, 8)
    depth[:, :4] += 0.1                                      # left half raised by 0.1
    assert check("6.1", 0.1, depth=depth)                    # every pixel differs from its mirror
    assert check("6.1", 0.0, depth=torch.ones(8, 8))
    assert not check("6.1", 0.05, depth=depth)
    p = params("6.1", SEED)
    d = SynFaces(64).sample(1, seed=p["face_seed"], start=p["face"])["depth_canon"][0]
    assert check("6.1", (d - d.flip(-1)).abs().mean().item(), seed=SEED)


def _joint():
    return json.loads(committed("synface64_joint.json").read_text())


def test_ratio_from_the_rows_and_from_the_faces():
    import numpy as np
    rows = {r["method"]: r for r in _joint()["rows"]}
    assert check("7.1", rows["g2s_joint"]["side"] / rows["null_depth"]["side"])
    assert not check("7.1", rows["g2s_joint"]["side"])
    p = params("7.1", SEED)
    images = _joint()["images"]
    ids = [str(i) for i in range(p["first"], p["last"] + 1)]
    mine = np.mean([images[i][p["method"]][p["metric"]] for i in ids])
    null = np.mean([images[i]["null_depth"][p["metric"]] for i in ids])
    assert check("7.1", mine / null, seed=SEED)
    assert not check("7.1", rows[p["method"]][p["metric"]] / rows["null_depth"][p["metric"]],
                     seed=SEED)                               # all faces, not the student's


def test_null_side_is_the_spread_of_log_depth():
    world = SynFaces(64)
    for seed in (0, SEED):
        face = world.sample(1, seed=0, start=params("7.2", seed)["face"])
        on = metrics.depth_errors(torch.ones(1, 64, 64), face["depth"], face["mask"],
                                  world.renderer)["mask"][0] > 0
        spread = face["depth"][0][on].log().std(unbiased=False).item()
        assert check("7.2", 100 * spread, seed=seed)
        assert not check("7.2", spread, seed=seed)            # SIDE is reported ×10⁻²


@pytest.mark.parametrize("seed", [0, SEED])
def test_yaw_correlation_and_paired_gap_recomputed_with_numpy(seed):
    import numpy as np
    run = _joint()
    images = run["images"]
    faces = SynFaces(64).sample(run["meta"]["n_images"], seed=run["meta"]["seed"])
    ids = sorted(images, key=int)
    p = params("7.3", seed)
    score = np.array([images[i][p["method"]][p["metric"]] for i in ids])
    angle = np.abs(faces["view"][[int(i) for i in ids], ("pitch", "yaw").index(p["angle"])]
                   .numpy())
    assert check("7.3", np.corrcoef(angle, score)[0, 1], seed=seed)
    assert not check("7.3", -np.corrcoef(angle, score)[0, 1] - 0.2, seed=seed)
    p = params("7.4", seed)
    ids = [str(i) for i in range(p["face_first"], p["face_last"] + 1)]
    diff = np.array([images[i][p["first"]][p["metric"]] - images[i][p["second"]][p["metric"]]
                     for i in ids])
    assert check("7.4", (diff.mean(), diff.std(ddof=1) / math.sqrt(len(diff))), seed=seed)
    assert not check("7.4", (diff.mean(), diff.std(ddof=0)), seed=seed)


@pytest.mark.parametrize("seed", [0, SEED])
def test_relief_depth_along_the_truth_recomputed_as_a_numpy_fit(seed, capsys):
    import numpy as np
    p = params("7.7", seed)
    faces = SynFaces(64).sample(50, seed=_joint()["meta"]["seed"])
    i = p["face"]
    kept = 1 + torch.load(committed("synface64_joint.depths.pt"),
                          weights_only=True)[str(i)][p["method"]]
    depth, valid = kept.nan_to_num(1.0)[None], (~kept.isnan()).float()[None, None]
    on = metrics.protocol_mask(depth, faces["mask"][i:i + 1], SynFaces(64).renderer, valid)
    pred = depth[0][on[0] > 0].double().log().numpy()
    true = faces["depth"][i][on[0] > 0].double().log().numpy()
    assert check("7.7", np.polyfit(true, pred, 1)[0], seed=seed)   # the slope of p on g
    relief = metrics.relief(depth, faces["depth"][i:i + 1], on)     # the chapter's route
    assert check("7.7", relief["along"].item(), seed=seed)
    capsys.readouterr()
    assert not check("7.7", relief["amplitude"].item(), seed=seed)
    assert "depth ratio" in capsys.readouterr().out
    assert not check("7.7", np.polyfit(pred, true, 1)[0], seed=seed)  # g on p: the other way
    assert "slope of g on p" in capsys.readouterr().out


def test_chapter_8_checks_against_the_renderer_and_the_package(tmp_path):
    rec = REC
    k = params("8.1", SEED)["scale"]
    a, b = rec.light[0, :2].tolist()
    # the strengths keep the image: render both ways (the check works it out by hand)
    r = Renderer(64)
    albedo = SynFaces(64).sample(1, seed=0, start=8)["albedo"]
    dim = ((albedo + 1) / 2 * k) * 2 - 1
    light = torch.cat([torch.tensor([[a / k, b / k]]), rec.light[:, 2:]], 1)
    assert torch.allclose(r.render(rec.depth_canon, dim, light, rec.view)[0],
                          r.render(rec.depth_canon, albedo, rec.light, rec.view)[0], atol=1e-5)
    assert check("8.1", (a / k, b / k), seed=SEED, rec=rec)
    assert not check("8.1", (a, b), seed=SEED, rec=rec)
    for seed in (0, SEED):   # 8.2 against the package's own conversion
        p = params("8.2", seed)
        light = torch.tensor([[0.5, 0.5, p["dx"], p["dy"]]])
        dx, dy = edit.canonical_light(light, make_view(yaw=p["yaw"]))[0, 2:].tolist()
        assert check("8.2", (dx, dy), seed=seed) and not check("8.2", (p["dx"], p["dy"]),
                                                               seed=seed)
    yaw = params("8.3", SEED)["yaw"]
    covered = r.valid_mask(r.warp_depth(rec.depth_canon, edit.edit_view(rec.view, yaw)))
    assert check("8.3", 1 - covered.mean().item(), seed=SEED, rec=rec)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"summary": {"yaw±30": {"input": {"l1": 0.1}, "gan": {"l1": 0.05},
                                                       "n": 3}}}))
    assert check("8.4", "gan", results=path) and not check("8.4", "input", results=path)


@pytest.mark.parametrize("seed", [0, SEED])
def test_chapter_9_checks_agree_with_draws_and_with_the_method_s_own_framing(seed):
    """9.6 against views actually drawn by the sampler; 9.7 against a preset's frame
    applied to an index grid the way the method applies it (generate's centre_fraction)."""
    from g2s_lite.paper import PRESETS, ViewDistribution
    from g2s_lite.pseudo import draw_views

    p = params("9.6", seed)
    cov = [[0.0] * 6 for _ in range(6)]
    cov[1][1] = p["variance"]
    views = draw_views(100_000, ViewDistribution((0.0,) * 6, tuple(map(tuple, cov)), p["scale"]),
                       torch.Generator().manual_seed(0))
    drawn = math.degrees(float(views[:, 1].std()))
    assert check("9.6", round(drawn, 2), seed=seed)
    assert not check("9.6", math.sqrt(p["variance"]) * 60, seed=seed)
    p = params("9.7", seed)
    side = round(p["size"] * (PRESETS["cat128"].gan_crop if seed == 0 else p["crop"] / p["size"]))
    margin = (p["size"] - side) // 2
    assert check("9.7", (margin, margin, margin + side, margin + side), seed=seed)
    assert not check("9.7", (0, 0, side, side), seed=seed)


def test_chapter_10_by_hand_for_a_student_s_sets():
    from itertools import permutations
    p = params("10.1", SEED)
    x, y = torch.tensor(p["X"], dtype=torch.float64), torch.tensor(p["Y"], dtype=torch.float64)
    squared = torch.cdist(x, y) ** 2
    assert check("10.1", (squared.min(1).values.mean() + squared.min(0).values.mean()).item(),
                 seed=SEED)
    plain = torch.cdist(x, y)
    best = min(sum(plain[i, j] for i, j in enumerate(perm)) for perm in permutations(range(3)))
    assert check("10.2", best.item() / 3, seed=SEED)
    e = params("10.4", SEED)["error"]
    assert check("10.4", math.sqrt(2) * e, seed=SEED)
    p = params("10.5", SEED)
    assert check("10.5", math.degrees(math.asin(math.sin(math.radians(p["yaw"])) / p["factor"])),
                 seed=SEED)


def test_every_chapter_has_checks_and_unknown_ones_say_what_to_do():
    for chapter in range(1, 11):
        assert exercises_of(chapter), f"chapter {chapter} has no check"
    with pytest.raises(ValueError, match="solutions appendix"):
        check("1.1", 0)
    with pytest.raises(ValueError, match="<chapter>.<k>"):
        check("one", 0)


# ----------------------------------------------------------------------------- the teacher
def test_the_teacher_s_command_prints_each_student_s_answers(tmp_path, capsys):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("# class of 2025\nada,1\nbob 2\n\nMary Ann, 3\n")
    out = tmp_path / "answers.json"
    assert main(["answers", "--seeds", str(seeds), "--exercises", "2.2", "7.4", "8.1",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    table = json.loads(out.read_text())["students"]
    assert [(s["name"], s["seed"]) for s in table] == [("ada", 1), ("bob", 2), ("Mary Ann", 3)]
    for student in table:
        assert f"{student['name']} (seed {student['seed']})" in printed
        for number in ("2.2", "7.4"):
            assert student["answers"][number]["expected"] == pytest.approx(
                list(expected(number, student["seed"])))
        assert "rec.light" in student["answers"]["8.1"]["live"]
    assert printed.count("checked live only") == 3
    assert f"{expected('2.2', 2)[1]:.4g}" in printed


@pytest.mark.parametrize("text, reason", [("ada,1\nbob\n", "line 2"), ("ada,one\n", "line 1"),
                                          ("ada,1\nada,2\n", "twice"), ("# nobody\n", "no student")])
def test_a_bad_seeds_file_is_refused_with_one_error_line(tmp_path, capsys, text, reason):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(text)
    assert main(["answers", "--seeds", str(seeds)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and reason in err and "\n" not in err
    assert main(["answers", "--seeds", str(tmp_path / "missing.txt")]) == 2
    assert main(["answers", "--seeds", str(seeds), "--exercises", "2.9"]) == 2


def test_the_task_command_prints_a_student_s_statement():
    done = subprocess.run([sys.executable, "-m", "g2s_lite.exercises", "task", "7.4", "--seed",
                           "99"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == statement("7.4", 99)
