"""The paper's numbers and the presets: one quick rule, the schedules of each stage."""
import ast
import pathlib
from dataclasses import fields, replace

import pytest
import torch

import g2s_lite
from g2s_lite.paper import (PRESETS, QUICK_DIVISOR, Preset, Step2Config, get_preset,
                            quick_length)
from g2s_lite.prior import make_prior, starting_prior


def _lengths(preset: Preset) -> list[int]:
    """Every schedule length of a preset (steps of every step, collected batches, projection)."""
    out = [preset.project.steps]
    for configs in (preset.step1, preset.step2, preset.step3):
        for c in configs:
            out += [c.steps] + ([c.collect] if isinstance(c, Step2Config) else [])
    return out


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_quick_mode_cuts_every_length_by_the_one_rule_and_nothing_else(name):
    full, quick = get_preset(name), get_preset(name, quick=True)
    assert full is PRESETS[name]
    assert _lengths(quick) == [max(1, n // QUICK_DIVISOR) for n in _lengths(full)]
    # nothing but lengths and the name changes: the learning rates, weights, ranges stay
    for a, b in zip(full.step2 + full.step1 + full.step3, quick.step2 + quick.step1 + quick.step3):
        differ = {f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)}
        assert differ <= {"steps", "collect"}
    assert quick.base_name == name != quick.name
    assert get_preset(quick, quick=True) is quick  # never cut twice
    assert quick_length(3) == 1 and quick_length(500) == 50


def test_the_real_face_schedule_changes_after_the_first_stage():
    face128 = PRESETS["face128"]
    assert face128.stages == 4 and face128.step2[0].f1_d == 2
    assert face128.for_stage(0)[2].flip and not face128.for_stage(3)[2].flip
    assert face128.for_stage(1)[0].steps == 200 and face128.for_stage(0)[0].steps == 600
    with pytest.raises(ValueError, match="synface64"):
        get_preset("nope")


def test_the_synface_prior_is_the_paper_ellipsoid_seated_further_back():
    full, quick = get_preset("synface64"), get_preset("synface64", quick=True)
    seated = starting_prior(full)
    assert torch.allclose(seated, make_prior("ellipsoid", 64) + 0.07)
    assert starting_prior(quick).equal(seated)
    assert 0.9 < seated.min() and seated.max() < 1.1
    # the real-face preset keeps the paper's placement
    assert starting_prior(PRESETS["face128"], "weak").equal(make_prior("weak", 128))


def _imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found - {"__version__"}


def test_the_package_imports_run_one_way():
    """No import cycle anywhere in g2s_lite (the paper's numbers, the method, pretraining and
    the benchmark depend on each other in one direction only)."""
    root = pathlib.Path(g2s_lite.__file__).parent
    graph = {p.stem: _imports(p) - {p.stem} for p in root.glob("*.py")}
    assert graph["paper"] <= set(), "paper.py must stand alone"
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dep in graph.get(module, ()):
            assert state.get(dep) != "open", "import cycle: " + " → ".join(path + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_a_longer_first_step3_changes_that_length_alone_and_keeps_quick_mode_quick():
    full = get_preset("synface64")
    longer = full.with_first_step3(600)
    assert longer.step3[0].steps == 600 and longer.step3[1] == full.step3[1]
    assert replace(longer, step3=full.step3) == full  # nothing else moved
    quick = get_preset("synface64", quick=True).with_first_step3(600)
    assert quick.step3[0].steps == quick_length(600) < 600
    with pytest.raises(ValueError, match="at least 1"):
        full.with_first_step3(0)
