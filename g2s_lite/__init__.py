"""g2s_lite: the companion package of the g2s-lite book.

Each module is one chapter of *Do 2D GANs Know 3D Shape?* (GAN2Shape, ICLR 2021), built
piece by piece: :mod:`~g2s_lite.render` (the photo-geometric renderer Φ),
:mod:`~g2s_lite.synth` (SynFaces, a world with ground truth), :mod:`~g2s_lite.metrics`
(SIDE, MAD), :mod:`~g2s_lite.prior` and :mod:`~g2s_lite.nets` (the shape prior, the networks),
:mod:`~g2s_lite.gan` (StyleGAN2), :mod:`~g2s_lite.pseudo` (random views and lights),
:mod:`~g2s_lite.invert` (step 2, projection), :mod:`~g2s_lite.refine` (steps 1 and 3),
:mod:`~g2s_lite.method` (the whole method on one page: ``reconstruct``),
:mod:`~g2s_lite.pretrain` (the paper's pretraining), :mod:`~g2s_lite.benchmark` (the SynFace
benchmark), :mod:`~g2s_lite.paper` (every number taken from the paper, and the presets),
:mod:`~g2s_lite.runtime` (quick mode, devices, seeding),
:mod:`~g2s_lite.export` and :mod:`~g2s_lite.viz` (files and figures). The command line:
``python -m g2s_lite reconstruct IMAGE --out DIR``.
"""
__version__ = "0.1.0"

from .render import Renderer, make_view  # noqa: E402
from .synth import SynFaces  # noqa: E402

__all__ = ["Renderer", "SynFaces", "make_view", "__version__"]
