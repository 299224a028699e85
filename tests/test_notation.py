"""The book speaks one notation, the preface's table: no page brings back a retired form.

Each symbol below once meant two things (the discriminator and the depth net, a pseudo and a
projected sample, the view net and the valid mask, the light's direction and a loss, ...).
The preface's {ref}`notation table <preface-notation>` now gives each its own; this test reads
the Markdown of every page (notebook Markdown cells, and prose outside code blocks in the
other pages) and fails on a form the table retired, naming the page and the line.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# (what was retired, pattern, what to write instead)
RETIRED = [
    ("the discriminator written D", r"(?<![\w{])D(_k)?(\\big)?\((G\(|x\))|-D\(I\)|\\nabla_[xI] D\(|\\sigma\(D\)"
     r"|\\mathcal\{?L\}?_D(?![\w{])", r"D_{\text{GAN}}, D_{\text{GAN},k}, \mathcal{L}_{D_{\text{GAN}}}"),
    ("a projected sample written with a tilde", r"\\tilde I[^$]*= *G\(|Ĩᵢ = G\(|projected samples \$\\tilde|V\(\\tilde I|V\(Ĩ",
     r"I^{\text{proj}}_i (the tilde is the pseudo sample)"),
    ("the valid mask written V", r"erode\}?\(V\)|valid mask \$V\$", r"M_{\text{valid}}"),
    ("a loss written with ell", r"\\ell_1|\\ell_\{?\\mathrm", r"\mathcal{L}_1, \mathcal{L}_{\mathrm{p}}"),
    ("ambient/diffuse strengths written alpha/beta, or alpha as the ambient coupling",
     r"\\alpha\\?,? *r\b|\\alpha *[=<] *-?0|\(\\alpha, \\beta\)|\\alpha \+ \\beta|ambient coupling \$\\alpha",
     r"k_a, k_d; the coupling is \kappa"),
    ("the light's direction written l", r"-l\\rangle|R_f\^\\top l\b|\$l\$ is the direction|\$l_i = \\operatorname\{normalize",
     r"\ell"),
    ("the mapping network or softplus written f", r"f_\{?(>|\\le) *k|= *f\(z\)|f\\big\(|\bf\(t\) *=|average of \$f\(z\)",
     r"\mathrm{map}, \mathrm{map}_{>k}, \operatorname{softplus}"),
    ("F1_d spelt otherwise", r"F_\{1d\}|F_1d|F_\{1,d\}", "F1_d"),
    ("the null depth under another name", r"(?i)flat plane|constant null depth|constant-depth row", "the null depth"),
    ("a latent space in plain W or Z (W alone is the image width)", r"\$[WZ](\^\+)?\$", r"\mathcal{W}, \mathcal{W}^+, \mathcal{Z}"),
    ("ground truth as a subscript", r"d_\{\\text\{(gt|true|pred)\}\}", r"d^{\text{gt}}, \hat d"),
    ("the renderer's camera projection called projection",
     r"back-project|project them to the image|projected into a \d+-px", "camera projection, the pinhole's K"),
]


def pages() -> list[tuple[str, str]]:
    """(name, Markdown) of every page: notebook Markdown cells, and the Markdown files with
    their fenced code blocks blanked (solutions' code keeps the code's own names) and the rows
    of the preface's notation table left out."""
    out = []
    for nb in sorted(BOOK.glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                out.append((f"{nb.name} cell {i}", "".join(cell["source"])))
    for md in sorted(BOOK.rglob("*.md")):
        if "_build" in md.parts or "_ext" in md.parts:
            continue
        text = re.sub(r"^(`{3,})(?![`{]|text).*?^\1\s*$", lambda m: "\n" * m.group(0).count("\n"),
                      md.read_text(), flags=re.S | re.M)
        if md.name == "preface.md":  # the table itself may name what a symbol is not
            table = text.index("(preface-notation)=")
            text = text[:table] + re.sub(r"^\|.*", "", text[table:], flags=re.M)
        out.append((str(md.relative_to(BOOK)), text))
    return out


@pytest.mark.parametrize("what, pattern, instead", RETIRED, ids=[r[0] for r in RETIRED])
def test_no_page_uses_a_retired_form(what, pattern, instead):
    hits = []
    for name, text in pages():
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(pattern, line):
                hits.append(f"{name}, line {n}: {line.strip()[:100]}")
    assert not hits, f"{what}; write {instead} instead:\n" + "\n".join(hits)


def test_the_table_defines_every_symbol_the_pages_are_held_to():
    preface = (BOOK / "preface.md").read_text()
    table = preface[preface.index("(preface-notation)="):]
    for symbol in (r"$D_{\text{GAN}}$", r"$\tilde I_i$", r"$I^{\text{proj}}_i$", r"$M_{\text{valid}}$",
                   r"$M_{\text{eval}}$", r"$k_a$", r"$k_d$", r"$\kappa$", r"$\mathrm{map}$", r"$F1_d$",
                   r"$\mathcal{L}$", r"$\ell$", r"$\mathcal{W}$", "null depth", "*camera projection*"):
        assert symbol in table, f"the preface's notation table does not define {symbol}"
