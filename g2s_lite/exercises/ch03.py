"""Chapter 3's checked exercise (the GAN): how many styles a generator takes."""
from __future__ import annotations

from typing import Any

from ._common import Draw, Exercise, judge_numbers


def _styles_params(draw: Draw) -> dict:
    """A generator of 2^L pixels and its style dimension: the bundled one's (L = 6, the
    dimension it was trained with) for the book's example."""
    from ..train_gan import TrainConfig
    level = draw.integer(3, 12, book=6)
    return {"L": level, "size": 2 ** level,
            "d": draw.choice((64, 96, 160, 192, 256, 320, 384, 448, 512),
                             book=TrainConfig.style_dim)}


def _styles(p: dict) -> tuple[int, int]:
    """The rows of w+ and the numbers it holds, derived from the architecture, not read from
    a generator: one style per convolution (one at 4×4, two per doubling of the
    resolution: 2L − 3), each to-RGB layer reading the style of the next block's first
    convolution and the last one a style of its own: 2L − 2 rows (``G.n_latent`` of the
    bundled generator, which the tests compare) of d numbers each."""
    rows = 2 * p["L"] - 2
    return rows, rows * p["d"]


def _judge_styles(answer: Any, want: tuple[int, int], p: dict) -> tuple[bool, str]:
    rows, d = want[0], p["d"]
    # one style per layer: 2L − 3 convolutions and L − 1 to-RGB layers
    every_layer = (2 * p["L"] - 3) + (p["L"] - 1)
    return judge_numbers(
        answer, want, ("the number of rows of w+", "the count of numbers in w+"), rel=0, abs_tol=0.5,
        hints=("the 4×4 block takes two styles, and each doubling of the resolution two more",
               "each row is one w of the style dimension"),
        mistakes=[((rows - 1, (rows - 1) * d), "that counts the convolutions only: the "
                                               "last to-RGB layer has a style of its own"),
                  ((every_layer, every_layer * d), "each to-RGB layer but the last shares its "
                                                   "style with the next block's first "
                                                   "convolution"),
                  ((p["L"], p["L"] * d), "that counts the resolutions; each takes more than "
                                         "one style")])


EXERCISES = {
    "3.5": Exercise(
        params=_styles_params,
        statement="a generator of {size}×{size} pixels (L = {L}) built like Chapter 3's, "
                  "with style dimension {d}: give the number of rows of its w+ and how many "
                  "numbers w+ holds.",
        expected=_styles, judge=_judge_styles),
}
