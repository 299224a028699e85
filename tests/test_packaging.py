"""The book's plumbing: dependencies listed once, the repository address in one place,
a table of contents that matches the chapters, notebooks committed without outputs."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from g2s_lite import runtime

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted, (f"only in pyproject: {sorted(wanted - listed)}; "
                              f"only in environment.yml: {sorted(listed - wanted)}")
    assert "-e ." in pip


def test_repository_address_is_kept_in_one_place():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Homepage"] == url
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        found = set(re.findall(r"git\+(https://[^\"' ]+)", text))
        assert found == {url}, f"{nb.name}: Colab set-up cell installs from {found}, not {url}"


def test_toc_lists_exactly_the_chapters_that_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = toc.get("chapters", []) + [c for part in toc.get("parts", [])
                                          for c in part["chapters"]]
    entries = [toc["root"]] + [c["file"] for c in chapters]
    for entry in entries:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), entry
    listed = {e.split("/")[-1] for e in entries}
    for nb in NOTEBOOKS:
        assert nb.stem in listed, f"{nb.name} is not in _toc.yml"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs_and_start_with_setup(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    # nbformat 4.5 wants a unique id per cell (a missing one will become an error)
    ids = [c.get("id") for c in cells]
    assert None not in ids and len(set(ids)) == len(ids), "give every cell its own id"
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    # the mode is decided here, once, and passed down
    assert "runtime.quick_mode(device)" in "".join(code[0]["source"])
    assert "runtime.describe" in "".join(code[0]["source"])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert "make test" in ci and "make book" in ci


@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("0", False),
                                          ("", False), ("no", False)])
def test_quick_mode_switch(monkeypatch, value, quick):
    monkeypatch.setenv(runtime.QUICK_ENV, value)
    assert runtime.quick_mode() is quick
    if value:  # set, it decides on every device
        for device in ("cpu", "cuda"):
            assert runtime.quick_mode(torch.device(device)) is quick


def test_unset_a_chapter_runs_quick_without_a_gpu_and_the_papers_schedules_with_one(
        monkeypatch):
    """Colab's default: nobody sets G2S_QUICK there, so the device decides (a CPU runtime would
    take hours on the full schedules); a command line (no device) keeps the full ones."""
    monkeypatch.delenv(runtime.QUICK_ENV, raising=False)
    assert runtime.quick_mode(torch.device("cpu")) is True
    assert runtime.quick_mode(torch.device("cuda")) is False
    assert runtime.quick_mode() is False
    line = runtime.describe(torch.device("cpu"), True)
    assert "quick" in line and "QUICK = False" in line  # says which, and how to switch


def _found(tree, wanted):
    """(enclosing function, line) of every node of a module for which ``wanted(node)``."""
    found = []

    def walk(node, function):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else function
            if wanted(child):
                found.append((function, child.lineno))
            walk(child, inner)

    walk(tree, None)
    return found


def _calls(tree, names):
    """(enclosing function, line) of every call of one of ``names`` (or ``x.name``)."""
    def called(node):
        f = node.func if isinstance(node, ast.Call) else None
        return (f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)) in names
    return _found(tree, called)


def _environment_reads(tree):
    """(enclosing function, line) of every ``os.environ`` or ``os.getenv``."""
    return _found(tree, lambda node: (isinstance(node, ast.Attribute)
                                      and node.attr in ("environ", "getenv"))
                  or (isinstance(node, ast.Name) and node.id in ("environ", "getenv")))


def _runtime_readers():
    """runtime's functions that read the environment, themselves or through another."""
    tree = ast.parse((ROOT / "g2s_lite" / "runtime.py").read_text())
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    readers = {f for f, _ in _environment_reads(tree)}
    while True:
        more = {name for name, f in functions.items()
                if name not in readers and _calls(f, readers)}
        if not more:
            return {name: functions[name] for name in readers}
        readers |= more


#: The book's switches and runtime's entry-point helpers that read them.
SWITCHES = {runtime.QUICK_ENV: "quick_mode", runtime.DOWNLOADS_ENV: "downloads_allowed",
            runtime.CACHE_ENV: "weights_cache", runtime.HEADLESS_ENV: "live_widgets"}


def test_only_entry_points_read_the_environment():
    """Library functions take ``quick=``, ``downloads=`` and ``cache=`` explicitly; the
    environment (G2S_QUICK, G2S_ALLOW_DOWNLOADS, G2S_CACHE, torchrun's ranks) is read where a
    program starts: a command line's main or parser, ``g2s_lite/__main__.py``, and runtime's
    entry-point helpers, which say so. The same call then gives the same result on every
    machine."""
    readers = _runtime_readers()
    assert set(SWITCHES.values()) <= set(readers)
    for name, function in readers.items():
        assert name.startswith("_") or "entry point" in ast.get_docstring(function).lower(), \
            f"runtime.{name} reads the environment: say it is for entry points only"
    for path in sorted((ROOT / "g2s_lite").rglob("*.py")):
        if path.name in ("runtime.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        for function, line in _calls(tree, readers) + _environment_reads(tree):
            assert function in ("main", "_parser"), (
                f"{path.relative_to(ROOT)}:{line} reads the environment in {function}; pass "
                f"the choice down as an argument from the entry point")


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_switch_is_read_by_its_helper(monkeypatch, tmp_path, switch):
    helper = getattr(runtime, SWITCHES[switch])
    monkeypatch.delenv(switch, raising=False)
    off = helper()
    monkeypatch.setenv(switch, str(tmp_path))
    assert helper() != off and helper() in (True, False, tmp_path)


def test_bench_command_prints_timings():
    out = subprocess.run([sys.executable, "-m", "g2s_lite.bench", "render", "--sizes", "16",
                          "--batch", "2", "--repeats", "1", "--device", "cpu"],
                         capture_output=True, text=True, check=True).stdout
    assert re.search(r"16×16\s+median\s+[\d.]+ ms", out), out


def test_license_is_an_spdx_expression_and_its_file_is_there():
    # setuptools drops the old `license = {text = ...}` table in 2027: builds would break
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(project["license"], str), "project.license must be an SPDX string"
    assert project["license-files"], "list the license text in project.license-files"
    for name in project["license-files"]:
        assert (ROOT / name).is_file(), f"{name} is listed in license-files but missing"
    assert project["license"].split()[0] in (ROOT / "LICENSE").read_text()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_are_directives_with_solutions_outside_the_notebook(nb):
    text = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                     if c["cell_type"] == "markdown")
    chapter = int(nb.stem[:2])
    labels = re.findall(r":label: (ex-\d\d-\d+)", text)
    assert len(labels) >= 4, f"{nb.name} has {len(labels)} exercises; a chapter needs 4"
    assert all(label.startswith(f"ex-{chapter:02d}-") for label in labels)
    assert "{solution}" not in text and "admonition} Solution" not in text, (
        f"{nb.name} holds a solution: move it to book/solutions/{nb.stem}.md")
    solutions = (ROOT / "book" / "solutions" / f"{nb.stem}.md").read_text()
    assert set(re.findall(r"\{solution\} (ex-\d\d-\d+)", solutions)) == set(labels)


def test_widgets_accept_colabs_ipywidgets():
    """Colab ships ipywidgets 7.7: the requirement must not force an upgrade there (the
    chapters' sliders, FloatSlider and interact, were run against 7.7.1 and 8.1)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = next(d for d in project["dependencies"] if _name(d) == "ipywidgets")
    lower = re.search(r">=\s*([\d.]+)", spec).group(1)
    assert tuple(int(x) for x in lower.split(".")) <= (7, 7), spec
    widgets = pytest.importorskip("ipywidgets")
    slider = widgets.FloatSlider(value=0.4, min=-0.1, max=0.7, step=0.05,
                                 continuous_update=False)
    shown = widgets.interact(lambda r: r * 2, r=slider)
    assert shown.widget.children[0].value == pytest.approx(0.4)


def test_the_results_chapters_read_ship_with_the_package():
    """Chapter 7 on Colab reads its results from the installed package: each file must be
    package data, and present (g2s_lite/data/results links to results/)."""
    from g2s_lite import results
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["g2s_lite"]
    for name in results.COMMITTED:
        assert f"data/results/{name}" in data, f"{name} is not package data in pyproject.toml"
        assert results.committed(name).resolve() == (ROOT / "results" / name).resolve()
    with pytest.raises(ValueError, match="ships"):
        results.committed("elsewhere.json")
