"""g2s_lite: the companion package of the g2s-lite book.

Each module is one chapter of *Do 2D GANs Know 3D Shape?* (GAN2Shape, ICLR 2021), built
piece by piece: :mod:`~g2s_lite.render` (the photo-geometric renderer Φ),
:mod:`~g2s_lite.synth` (SynFaces, a world with ground truth), :mod:`~g2s_lite.metrics`
(SIDE, MAD), :mod:`~g2s_lite.pseudo` (random views and lights), :mod:`~g2s_lite.viz` (figures).
"""
__version__ = "0.1.0"

from .render import Renderer, make_view  # noqa: E402
from .synth import SynFaces  # noqa: E402

__all__ = ["Renderer", "SynFaces", "make_view", "__version__"]
