"""Run chapters as a Colab reader does: each notebook alone in an empty folder, the package
installed non-editable (as `pip install` from the repository does), in quick mode.

    python scripts/check_standalone.py                 # every chapter
    python scripts/check_standalone.py book/07_benchmark.ipynb

The package goes into a temporary folder with `pip install --no-deps --target` (the
dependencies are those of the running environment), the folder goes first on the kernel's
PYTHONPATH, and a last cell checks that the chapter imported that copy, not a checkout.
Prints each chapter's time; exits 1 if any chapter fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]


def install(target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)], check=True)


def run_alone(notebook: Path, site: Path, workdir: Path) -> float:
    """Execute ``notebook`` copied alone into ``workdir``; the seconds it took."""
    workdir.mkdir(parents=True)
    copy = workdir / notebook.name
    shutil.copy(notebook, copy)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import g2s_lite, pathlib\n"
        f"assert pathlib.Path(g2s_lite.__file__).is_relative_to({str(site)!r}), g2s_lite.__file__"))
    env = {"G2S_QUICK": "1", "G2S_HEADLESS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(site)}
    start = time.perf_counter()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)   # the kernel inherits this process's environment
    try:
        nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    notebooks = [Path(a).resolve() for a in argv] or sorted((ROOT / "book").glob("*.ipynb"))
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        install(site)
        for nb in notebooks:
            try:
                seconds = run_alone(nb, site, Path(tmp) / nb.stem)
                print(f"{nb.name}: ran alone in {seconds:.0f} s")
            except Exception as error:   # report every chapter, then fail
                failed.append(nb.name)
                print(f"{nb.name}: FAILED alone: {str(error).strip().splitlines()[-1]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
