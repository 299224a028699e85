"""Real photographs — Chapter 9: find the face, crop it the way the GAN saw its data, say
when a photo is out of the GAN's reach, and paste results back into the photo.

A GAN only draws what its training images showed, framed as they were framed. A portrait
centre-cropped and squashed is a picture the GAN never saw, its projection is a blur, and
everything after it inherits the blur. So a photo is prepared first:

1. **find the face** with OpenCV's Haar cascades (they ship inside the
   ``opencv-python-headless`` wheel, so this works offline); cats have their own cascade;
2. **crop it like the training data**: a square around the face, scaled and shifted by the
   framing of the GAN's data (:data:`FRAMINGS`: the SynFace heads fill the square from crown
   to chin; the CelebA crops of the paper are tighter, from the brow to below the chin, and
   like them a box that leaves the photo is filled by repeating its edge, :func:`cut`). The
   crop box ``[x0, y0, x1, y1]`` in the photo's pixels is kept (``Reconstruction.crop``,
   ``factors.pt``'s ``"crop"``, :func:`crop_of`) so that results can be put back
   (:func:`paste`);
3. **check the reach**: the projection's error is compared with the error the same
   projection reaches on the GAN's own samples (:func:`reach`); far above it, the photo is
   outside what the GAN can draw and :func:`reach_warning` says what to do instead.

Cars and churches are not detected: the whole photo is used, and a foreground mask (a file
the user gives, or :func:`g2s_lite.parsing.foreground_mask` on Colab) places the prior and,
for them, keeps the pseudo samples to the object (``reconstruct(..., mask=...)``).

>>> square_box((600, 400), (100, 100, 200, 220), Framing(scale=1.0, shift=0.0))
[90, 100, 210, 220]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .images import centre_box, open_rgb


# ----------------------------------------------------------------------------- framing
@dataclass(frozen=True)
class Framing:
    """How a GAN's training images frame a face, relative to a detector's face box
    (width ``w``, height ``h``): the crop is a square of side ``scale · max(w, h)`` whose
    centre sits ``shift · max(w, h)`` below the box's centre (negative: above).

    ``pad``: where the square leaves the photo it keeps its place and the missing part is
    filled by repeating the photo's edge pixels, as the CelebA crops the paper's model was
    trained on were made (Unsup3d's crop boxes, cut with replicated borders); otherwise the
    square is moved (and if need be shrunk) to lie inside the photo."""

    scale: float
    shift: float
    pad: bool = False


#: The framing of each category's data, against OpenCV's frontal face (or cat face) box:
#: SynFaces show the whole head (crown to chin, ears at the border); the paper's CelebA crops
#: cut at the hairline and just below the chin; its cat crops show the whole cat face.
FRAMINGS = {"synface": Framing(scale=1.6, shift=-0.08),
            "face": Framing(scale=1.3, shift=0.05, pad=True),
            "cat": Framing(scale=1.5, shift=0.0)}

#: OpenCV's cascade of each category with a detector.
CASCADES = {"synface": "haarcascade_frontalface_default.xml",
            "face": "haarcascade_frontalface_default.xml",
            "cat": "haarcascade_frontalcatface.xml"}


def detect(photo, category: str = "face") -> list[int] | None:
    """The largest face in ``photo`` (a PIL image) as ``[x0, y0, x1, y1]``, or None when none
    is found or the category has no detector (cars, churches)."""
    if category not in CASCADES:
        return None
    try:
        import cv2
    except ImportError as err:
        raise ImportError("finding faces needs OpenCV: pip install 'opencv-python-headless<5' "
                          "(or pass detect=False for a centre crop)") from err
    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 dropped the Haar cascades
        raise ImportError(f"this OpenCV ({getattr(cv2, '__version__', '?')}) has no Haar "
                          "cascades to find faces with: pip install "
                          "'opencv-python-headless<5' (or pass detect=False, --no-detect, "
                          "for a centre crop)")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADES[category])
    grey = np.asarray(photo.convert("L"))
    side = min(grey.shape)
    faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                     minSize=(max(24, side // 10),) * 2)
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return [int(x), int(y), int(x + w), int(y + h)]


def square_box(size: tuple[int, int], face: list[int], framing: Framing) -> list[int]:
    """The square crop ``[x0, y0, x1, y1]`` of the framing around ``face`` in a photo of
    ``size = (width, height)``: moved (and if need be shrunk) to lie inside the photo, or,
    with ``framing.pad``, where the framing puts it, even partly outside the photo."""
    width, height = size
    x0, y0, x1, y1 = face
    extent = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + framing.shift * extent
    if framing.pad:
        side = int(round(framing.scale * extent))
        left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
        return [left, top, left + side, top + side]
    side = min(int(round(framing.scale * extent)), width, height)
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return [left, top, left + side, top + side]


# ----------------------------------------------------------------------------- preparing a photo
@dataclass
class Prepared:
    """A photo made ready for a preset: ``image`` ``1×3×S×S`` in [−1, 1], the ``crop``
    ``[x0, y0, x1, y1]`` it was cut from, the detector's ``face`` box (None: no face found or
    not looked for) and the ``photo`` itself (RGB)."""

    image: Tensor
    crop: list[int]
    face: list[int] | None
    photo: object


def prepare(source, size: int, category: str = "face", detect_face: bool = True) -> Prepared:
    """Open a photo, find the face (``detect_face``; categories without a detector and photos
    without a face fall back to the centre crop) and crop and resize it to ``size``."""
    from PIL import Image

    photo = open_rgb(source)
    face = detect(photo, category) if detect_face else None
    crop = (square_box(photo.size, face, FRAMINGS[category]) if face is not None
            else centre_box(photo.size))
    square = Image.fromarray(cut(np.asarray(photo), crop)).resize((size, size), Image.LANCZOS)
    array = np.asarray(square, dtype=np.float32)
    image = torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1
    return Prepared(image, crop, face, photo)


def cut(pixels: np.ndarray, box: list[int]) -> np.ndarray:
    """The pixels ``H×W×C`` inside ``box`` ``[x0, y0, x1, y1]``; where the box leaves the
    picture, its edge pixels are repeated (OpenCV's ``BORDER_REPLICATE``).

    >>> cut(np.arange(4).reshape(2, 2, 1), [-1, 0, 2, 1])[..., 0]
    array([[0, 0, 1]])
    """
    x0, y0, x1, y1 = box
    height, width = pixels.shape[:2]
    rows = np.clip(np.arange(y0, y1), 0, height - 1)
    cols = np.clip(np.arange(x0, x1), 0, width - 1)
    return pixels[rows][:, cols]


def book_photo(name: str) -> Path:
    """A photo that ships with the package for Chapter 9 (``astronaut.jpg``,
    ``chelsea.jpg``; provenance and licences in ``g2s_lite/data/photos/README.md``).

    >>> book_photo("chelsea.jpg").name
    'chelsea.jpg'
    """
    import importlib.resources

    path = Path(str(importlib.resources.files("g2s_lite") / "data" / "photos" / name))
    if not path.is_file():
        shipped = sorted(p.name for p in path.parent.glob("*.jpg"))
        raise FileNotFoundError(f"no photo {name!r} ships with the package; those that do: "
                                f"{', '.join(shipped)}")
    return path


def crop_of(result) -> list[int] | None:
    """The crop box ``[x0, y0, x1, y1]`` of a reconstruction, of the dict in a
    ``factors.pt``, or of a ``factors.pt`` file (None when it was not made from a photo)."""
    if isinstance(result, (str, Path)):
        result = torch.load(result, map_location="cpu", weights_only=True)
    crop = result.get("crop") if isinstance(result, dict) else getattr(result, "crop", None)
    return None if crop is None else [int(v) for v in torch.as_tensor(crop).tolist()]


def paste(photo, image: Tensor, crop: list[int], mask: Tensor | None = None,
          feather: float = 2.0):
    """``photo`` (PIL) with ``image`` (``1×3×S×S`` in [−1, 1], e.g. a turned or relit face)
    put back into its ``crop`` box; with ``mask`` (``1×1×S×S``, e.g. the render's valid
    pixels) only there, its edge softened by ``feather`` pixels of the result's size."""
    from PIL import Image, ImageFilter

    x0, y0, x1, y1 = crop
    side = (x1 - x0, y1 - y0)
    rgb = ((image[0].detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    patch = Image.fromarray(rgb.permute(1, 2, 0).numpy()).resize(side, Image.LANCZOS)
    out = photo.copy()
    if mask is None:
        out.paste(patch, (x0, y0))
        return out
    alpha = Image.fromarray((mask[0, 0].detach().float().cpu().clamp(0, 1) * 255).byte().numpy())
    alpha = alpha.resize(side, Image.BILINEAR).filter(ImageFilter.MinFilter(3))
    out.paste(patch, (x0, y0), alpha.filter(ImageFilter.GaussianBlur(feather)))
    return out


# ----------------------------------------------------------------------------- out of reach
#: A photo is out of reach when its projection's error exceeds this many times the worst
#: error the same projection leaves on the GAN's own samples. On the bundled GAN (quick
#: projection, 4 samples) its own samples end at an L1 of up to 0.10 and the book's
#: public-domain portrait, cropped like a SynFace, at 0.36 (3.6×).
REACH_FACTOR = 2.0


def projection_error(image: Tensor, projected: Tensor) -> Tensor:
    """Mean absolute difference per image (``B``) of images in [−1, 1]."""
    return (image - projected).abs().flatten(1).mean(1)


def reach(G, D, config, n: int = 4, seed: int = 0, progress: bool = False) -> Tensor:
    """The projection errors (``n``) the projection schedule ``config`` leaves on ``n`` of
    the GAN's own samples, framed like the data (``G`` a :class:`~g2s_lite.invert.FramedGAN`
    with the preset's crop; a plain generator: whole): what it reaches on images it can
    certainly draw."""
    from .invert import framed, project

    gan = framed(G)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, gan.G.style_dim, generator=gen).to(gan.device)
        samples = gan.generate(gan.mapping(z))
    _, projected = project(samples, gan, D, config, seed=seed, progress=progress)
    return projection_error(samples, projected)


def reach_warning(error: float, own: Tensor, weights: str, category: str) -> str | None:
    """A line starting ``warning:`` when ``error`` is beyond :data:`REACH_FACTOR` × the worst
    of the GAN's ``own`` errors, naming the fix; None when the photo is within reach."""
    limit = REACH_FACTOR * float(own.max())
    if error <= limit:
        return None
    if weights == "synface64" and category in ("face", "synface"):
        fix = ("the bundled GAN draws only synthetic faces; for a real face use the paper's "
               "CelebA model on a GPU: --weights celeba128 --preset face128 (e.g. on Colab)")
    else:
        fix = (f"check that the photo shows what {weights} was trained on, framed the same "
               "way (--no-detect keeps the centre crop), or choose another --weights")
    return (f"warning: the photo is out of reach of {weights}: its projection error is "
            f"{error:.3f}, {error / float(own.max()):.1f}× the worst on the GAN's own samples "
            f"({float(own.max()):.3f}); the shape will be a guess. Fix: {fix}")
