"""scripts/check_html.py on small hand-made builds: a clean book passes, each kind of
problem is reported."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_html", ROOT / "scripts" / "check_html.py")
check_html = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_html)

CLEAN = ('<div class="cell_output docutils container"><pre>SIDE 1.23</pre>'
         '<img src="../_images/fig.png"></div>')


@pytest.fixture
def book(tmp_path):
    """A fake book: a _toc.yml with two pages, and their HTML."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/preface\nparts:\n"
                                       "  - caption: C\n    chapters:\n      - file: book/one\n")
    html = tmp_path / "_build" / "html"
    (html / "book").mkdir(parents=True)
    (html / "_images").mkdir()
    (html / "_images" / "fig.png").write_bytes(b"png")
    (html / "book" / "preface.html").write_text("<p>preface</p>")
    (html / "book" / "one.html").write_text(CLEAN)
    return tmp_path, html


def test_a_clean_book_passes(book):
    root, html = book
    assert check_html.check(html, root) == []


def test_a_missing_page_a_missing_image_and_errors_are_reported(book):
    root, html = book
    (html / "book" / "preface.html").unlink()
    assert any("book/preface" in p for p in check_html.check(html, root))
    (html / "book" / "preface.html").write_text('<img src="../_images/gone.png">')
    assert any("gone.png" in p for p in check_html.check(html, root))
    (html / "book" / "preface.html").write_text(
        '<div class="cell_output docutils container"><pre>Traceback (most recent call last):'
        '\nValueError: no</pre></div>')
    assert any("error" in p for p in check_html.check(html, root))
    (html / "book" / "preface.html").write_text('<div class="output traceback">x</div>')
    assert any("error" in p for p in check_html.check(html, root))


def test_source_code_that_names_an_error_is_not_an_error(book):
    root, html = book
    (html / "book" / "preface.html").write_text(
        '<div class="cell_input"><pre>raise ValueError("x: y")</pre></div>'
        '<p>A Traceback (most recent call last) explained in prose.</p>')
    assert check_html.check(html, root) == []


def test_a_table_left_as_text_raw_math_and_an_empty_3d_view_are_reported(book):
    """What a reader offline would see broken: each reported, and each passes once fixed."""
    root, html = book
    page = html / "book" / "preface.html"
    page.write_text("<p>| method | SIDE |\n|---|---|\n| a | 1.0 |</p>")
    assert any("table as Markdown text" in p for p in check_html.check(html, root))
    page.write_text("<table><tr><td>a</td></tr></table><p>a | b, and --- rules</p>")
    assert check_html.check(html, root) == []

    math = '<span class="math notranslate nohighlight">\\(d\\)</span>'
    page.write_text('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js">'
                    "</script>" + math)
    assert any("MathJax" in p for p in check_html.check(html, root))
    page.write_text('<script defer src="../_static/mathjax/tex-chtml.js"></script>' + math)
    assert check_html.check(html, root) == []

    plot = '<div id="p"></div><script>Plotly.newPlot("p", [])</script>'
    page.write_text('<script src="https://cdn.plot.ly/plotly-2.min.js"></script>' + plot)
    assert any("3D view" in p for p in check_html.check(html, root))
    page.write_text('<script src="../_static/plotly.min.js"></script>'
                    '<script src="https://cdn.plot.ly/plotly-2.min.js"></script>' + plot)
    assert check_html.check(html, root) == []
