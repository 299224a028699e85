"""Draw the preface's figure of the whole GAN2Shape pipeline into book/figures/pipeline.png.

    python scripts/pipeline_figure.py

Boxes are the method's objects, arrows its steps, each labelled with the chapter that builds
it; the dashed arrow is the loop over stages, the grey box the paper's pretraining
(Chapter 7) that starts the networks.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "book" / "figures" / "pipeline.png"

W, H = 2.9, 1.24   # box size
# (x, y) centres on an 18 × 6 canvas; text; fill colour
BOXES = {
    "image": (1.5, 3.5, "image $I$", "#f2f2f2"),
    "prior": (1.5, 1.5, "prior $d_0$\n(ellipsoid, Ch. 2)", "#fde9d9"),
    "step1": (5.2, 2.5, "step 1 (Ch. 2)\nfit albedo $A$, light $L$\n$\\Phi(d_0, a, v, l) \\approx I$", "#dbe8f7"),
    "pseudo": (8.9, 2.5, "pseudo samples (Ch. 4)\n$\\Phi(d, a, v_i, l_i)$\nrandom views, lights", "#dbe8f7"),
    "step2": (12.6, 2.5, "step 2 (Ch. 5)\nproject onto the GAN\n$G(w^\\star + \\Delta w_i)$", "#dbe8f7"),
    "step3": (16.3, 2.5, "step 3 (Ch. 6)\ntrain $D, A, V, L$ on\nprojected samples", "#dbe8f7"),
    "gan": (12.6, 4.8, "pretrained GAN $G$ (Ch. 3)\nand $w^\\star$ = project($I$)", "#e2f0d9"),
    "out": (16.3, 4.8, "depth, albedo, view, light\n→ Ch. 7 benchmark, Ch. 8 editing", "#f2f2f2"),
    "pretrain": (5.2, 4.8, "pretraining on GAN samples\n(the paper's protocol, Ch. 7)", "#ececec"),
}
ARROWS = [("image", "step1", ""), ("prior", "step1", ""), ("step1", "pseudo", ""),
          ("pseudo", "step2", ""), ("gan", "step2", ""), ("step2", "step3", ""),
          ("step3", "out", "")]



def edge(a: tuple, b: tuple) -> tuple[float, float]:
    """Where the line from box a's centre to box b's centre leaves box a."""
    (xa, ya), (xb, yb) = a[:2], b[:2]
    dx, dy = xb - xa, yb - ya
    t = min((W / 2 + 0.08) / abs(dx) if dx else float("inf"),
            (H / 2 + 0.08) / abs(dy) if dy else float("inf"))
    return xa + t * dx, ya + t * dy


def main() -> None:
    fig, ax = plt.subplots(figsize=(14, 4.6))
    ax.set(xlim=(-0.1, 17.9), ylim=(0.2, 5.6))
    ax.axis("off")
    for x, y, text, colour in BOXES.values():
        ax.add_patch(FancyBboxPatch((x - W / 2, y - H / 2), W, H,
                                    boxstyle="round,pad=0.05", fc=colour, ec="0.3", lw=1))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)
    for a, b, _ in ARROWS:
        ax.add_patch(FancyArrowPatch(edge(BOXES[a], BOXES[b]), edge(BOXES[b], BOXES[a]),
                                     arrowstyle="-|>", mutation_scale=14, shrinkA=0,
                                     shrinkB=0, color="0.2", lw=1.2))
    # the next stage starts from the refined depth
    ax.add_patch(FancyArrowPatch((16.3, 1.8), (5.2, 1.8), connectionstyle="arc3,rad=-0.12",
                                 arrowstyle="-|>", mutation_scale=14, ls="--", color="C3", lw=1.2))
    ax.text(10.75, 0.95, "next stage: the refined depth is the new prior", color="C3",
            ha="center", fontsize=8.5)
    ax.add_patch(FancyArrowPatch((5.2, 4.1), (5.2, 3.2), arrowstyle="-|>", mutation_scale=14,
                                 ls=":", color="0.4", lw=1.2))
    ax.text(5.35, 3.6, "starts the nets", color="0.4", fontsize=8)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=130, bbox_inches="tight")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
