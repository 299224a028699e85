"""Checks of Chapter 3's exercises (the GAN)."""
from __future__ import annotations

import math
from typing import Any

from ._common import close


def styles(answer: Any) -> tuple[bool, str]:
    """3.5: how many rows w+ has for the bundled 64-pixel generator.

    Derived from the architecture, not read from the generator: one style for the 4×4
    convolution and its to-RGB layer, then two convolutions per doubling of the resolution,
    the last to-RGB reading the last convolution's style: 2·log2(size) − 2.
    """
    from ..hub import load
    G, _ = load("synface64")
    expected = 2 * int(math.log2(G.size)) - 2
    if expected != G.n_latent:   # the derivation and the generator must agree
        raise RuntimeError(f"the derivation gives {expected} styles but G has {G.n_latent}: "
                           "report this as a bug in g2s_lite.exercises.ch03")
    return close(answer, expected, f"the number of styles of a {G.size}-pixel generator",
                 rel=0, abs_tol=0.5)


CHECKS = {"3.5": styles}
