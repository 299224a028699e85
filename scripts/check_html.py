"""Check a built HTML book: every page of the table of contents exists, every image it shows
exists, no page shows an error or a traceback, and what must render does so without a
network: a table is not left as Markdown text, a page with math loads MathJax from the site,
a page with a 3D view loads plotly.js from the site.

    python scripts/check_html.py [_build/html]

Exits 1 with one line per problem. Needs only the standard library and PyYAML (the book's
own table of contents is read to know which pages must exist).
"""
from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
# what a notebook cell's failure leaves in myst-nb's HTML
ERROR_MARKS = ('class="output traceback', 'class="output error')
ERROR_NAMES = re.compile(r"\b(?:[A-Z][a-zA-Z]*Error|Exception): ", re.M)
# a Markdown table's rule row (``|---|:--:|``) left in a paragraph: a table shown as text
TABLE_AS_TEXT = re.compile(r"\|\s*:?-{3,}:?\s*\|")
# what a page with math carries (myst's dollarmath and amsmath), and a 3D view's drawing call
MATH_MARK = 'class="math'
PLOT_MARK = "Plotly.newPlot"


class _Page(HTMLParser):
    """The images a page shows and the text of its cell outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.output_depth = 0
        self.output_text: list[str] = []
        self.in_paragraph = False
        self.paragraph_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        if tag == "p":
            self.in_paragraph = True
        classes = (attrs.get("class") or "").split()
        if tag == "div" and ("cell_output" in classes or self.output_depth):
            self.output_depth += 1

    def handle_endtag(self, tag):
        if tag == "div" and self.output_depth:
            self.output_depth -= 1
        if tag == "p":
            self.in_paragraph = False

    def handle_data(self, data):
        if self.output_depth:
            self.output_text.append(data)
        if self.in_paragraph:
            self.paragraph_text.append(data)

    def loads_locally(self, name: str) -> bool:
        """Whether the page loads a script whose file name contains ``name`` from the site."""
        return any(name in Path(urlparse(src).path).name and not urlparse(src).scheme
                   for src in self.scripts)


def offline_problems(parser: _Page, text: str) -> list[str]:
    """What would not render on this page without a network, or not as a table."""
    problems = []
    if TABLE_AS_TEXT.search(" ".join(parser.paragraph_text)):
        problems.append("shows a table as Markdown text (render it as MyST: "
                        "nb_render_markdown_format)")
    if MATH_MARK in text and not parser.loads_locally("tex-"):
        problems.append("has math but loads no MathJax from the site (raw math offline)")
    if PLOT_MARK in text and not parser.loads_locally("plotly"):
        problems.append("has a 3D view but loads no plotly.js from the site (empty offline)")
    return problems


def toc_pages(root: Path) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    chapters = toc.get("chapters", []) + [c for p in toc.get("parts", []) for c in p["chapters"]]
    return [toc["root"]] + [c["file"] for c in chapters]


def check(html: Path, root: Path = ROOT) -> list[str]:
    """The problems of the book built into ``html`` (an empty list when there are none)."""
    if not html.is_dir():
        return [f"{html} is not a directory: build the book first (make book)"]
    problems = []
    for page in toc_pages(root):
        path = html / f"{page}.html"
        if not path.exists():
            problems.append(f"{page}: no page {path.relative_to(html)}")
            continue
        parser = _Page()
        text = path.read_text(encoding="utf-8")
        parser.feed(text)
        for src in parser.images:
            if src.startswith("data:") or urlparse(src).scheme in ("http", "https"):
                continue
            target = (path.parent / unquote(urlparse(src).path)).resolve()
            if not target.exists():
                problems.append(f"{page}: image {src} is missing")
        problems += [f"{page}: {problem}" for problem in offline_problems(parser, text)]
        outputs = "".join(parser.output_text)
        if any(mark in text for mark in ERROR_MARKS):
            problems.append(f"{page}: shows an error output")
        elif "Traceback (most recent call last)" in outputs or ERROR_NAMES.search(outputs):
            found = ERROR_NAMES.search(outputs)
            problems.append(f"{page}: a cell output reads like an error"
                            + (f": {found.group(0)!r}" if found else " (a traceback)"))
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    html = Path(argv[0]) if argv else ROOT / "_build" / "html"
    problems = check(html)
    for problem in problems:
        print(problem)
    pages = len(toc_pages(ROOT))
    print(f"checked {pages} pages of {html}: " + (f"{len(problems)} problem(s)" if problems
                                                  else "every page, every image, no error, "
                                                  "tables, math and 3D views offline"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
