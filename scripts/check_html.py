"""Check a built HTML book: every page of the table of contents exists, every image it shows
exists, and no page shows an error or a traceback.

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


class _Page(HTMLParser):
    """The images a page shows and the text of its cell outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.output_depth = 0
        self.output_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        classes = (attrs.get("class") or "").split()
        if tag == "div" and ("cell_output" in classes or self.output_depth):
            self.output_depth += 1

    def handle_endtag(self, tag):
        if tag == "div" and self.output_depth:
            self.output_depth -= 1

    def handle_data(self, data):
        if self.output_depth:
            self.output_text.append(data)


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
                                                  else "every page, every image, no error"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
