"""Serve plotly.js from the built book, so that its 3D views work without a network.

The chapters show plotly figures as HTML that loads plotly.js from its CDN (which is what
Colab and Jupyter need). The built book also carries the copy of plotly.js that ships inside
the ``plotly`` package and loads it on every page: offline the CDN tag fails, and the
figure's own script finds ``Plotly`` already there.
"""
from __future__ import annotations

import shutil
from pathlib import Path

#: where in the built site the copy lives (relative to ``_static``)
TARGET = "plotly.min.js"


def _bundled() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (pip install plotly)")
    return path


def _copy(app, exc) -> None:
    if exc is None:
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_bundled(), static / TARGET)


def setup(app):
    _bundled()  # fail the build at once, not after an hour, if plotly.js cannot be had
    app.add_js_file(TARGET)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
