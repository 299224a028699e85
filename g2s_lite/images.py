"""Getting an image into the method: checks and conversions (Chapters 2 and 6).

Every step takes ``1×3×S×S`` tensors in [−1, 1] (the book's appendix *Design and
conventions*). :func:`check_image` refuses anything else with a message saying what to do;
:func:`load_image` converts what can be converted by a stated rule:

* a path or a PIL image: grey and palette images are repeated to three channels, RGBA is
  composited onto white, a non-square picture is centre-cropped to a square, and the square
  is resized (Lanczos) to the size asked for; 8-bit values map to [−1, 1] by x/127.5 − 1;
* a tensor: must already be ``3×S×S`` or ``1×3×S×S`` in [−1, 1] at the right size — a
  tensor's meaning (range, layout) cannot be guessed safely, so it is checked, not converted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def check_image(image: Tensor, size: int | None = None) -> Tensor:
    """Accept ``3×S×S`` or ``1×3×S×S`` in [−1, 1]; return ``1×3×S×S`` or explain the problem."""
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__} "
                        "(load paths and PIL images with g2s_lite.images.load_image)")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be 3×H×W or 1×3×H×W, got {tuple(image.shape)}")
    if image.shape[1] != 3:
        raise ValueError(f"image must have 3 colour channels, got {image.shape[1]} "
                         "(convert grey or RGBA images to RGB first, e.g. with load_image)")
    if size is not None and image.shape[-2:] != (size, size):
        raise ValueError(f"image must be {size}×{size}, got {image.shape[-2]}×{image.shape[-1]}; "
                         "resize it first (load_image does, for files and PIL images)")
    if not torch.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    if image.min() < -1.0 - 1e-3 or image.max() > 1.0 + 1e-3:
        hint = ("it looks like 8-bit values: map them with x/127.5 − 1"
                if image.max() > 2 else "map [0, 1] images with x·2 − 1")
        raise ValueError(f"image values must lie in [−1, 1], got [{image.min().item():.3f}, "
                         f"{image.max().item():.3f}]; {hint}")
    return image


def check_images(images: Tensor, square: bool = False) -> Tensor:
    """Accept a batch ``B×3×H×W`` in [−1, 1], square with ``square``, each image checked by
    :func:`check_image`; return it or explain the problem."""
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        layout = "B×3×S×S" if square else "B×3×H×W"
        raise ValueError(f"images must be {layout} in [−1, 1], got {shape}; load files with "
                         "g2s_lite.images.load_image")
    for one in images:
        check_image(one, images.shape[-1] if square else None)
    return images


def check_mask(mask: Tensor, size: int) -> Tensor:
    """Accept an object mask ``S×S``, ``1×S×S`` or ``1×1×S×S`` with values in [0, 1] (1 on
    the object); return ``1×1×S×S`` float or explain the problem.

    >>> check_mask(torch.ones(4, 4), 4).shape
    torch.Size([1, 1, 4, 4])
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__} (read a "
                        "mask file with g2s_lite.parsing.read_mask)")
    if mask.dim() not in (2, 3, 4) or mask.numel() != size * size or mask.shape[-1] != size:
        raise ValueError(f"mask must be {size}×{size} (or 1×1×{size}×{size}), the image's "
                         f"size, got {tuple(mask.shape)}; cut and resize it like the image")
    mask = mask.reshape(1, 1, size, size).float()
    if mask.min() < 0 or mask.max() > 1:
        raise ValueError(f"mask values must lie in [0, 1] (1 on the object), got "
                         f"[{float(mask.min()):.3g}, {float(mask.max()):.3g}]")
    return mask


def to_size(images: Tensor, size: int) -> Tensor:
    """Resize ``B×C×H×W`` images to ``size×size`` (area-averaged when shrinking)."""
    if images.shape[-2:] == (size, size):
        return images
    if images.shape[-1] > size:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def centre_fraction(images: Tensor, fraction: float) -> Tensor:
    """The centre square of ``B×C×S×S`` images, ``fraction`` of their side (rounded to whole
    pixels): how the released cat and synthetic-face configurations frame a GAN's images
    (170 of every 256 pixels) before resizing them.

    >>> centre_fraction(torch.arange(16.0).reshape(1, 1, 4, 4), 0.5)[0, 0]
    tensor([[ 5.,  6.],
            [ 9., 10.]])
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"the kept fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return images
    size = images.shape[-1]
    side = max(1, round(size * fraction))
    margin = (size - side) // 2
    return images[..., margin:margin + side, margin:margin + side]


def open_picture(path: str | Path, what: str = "image", fix: str = "give a PNG or JPEG file"):
    """The PIL image in the file at ``path``, read now; a missing or unreadable file raises an
    error naming it as ``what`` and saying ``fix``."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file at {path}")
    try:
        picture = Image.open(path)
        picture.load()
    except OSError as err:
        raise ValueError(f"{path} is not an image PIL can read ({err}); {fix}") from None
    return picture


def open_rgb(source):
    """A path or a PIL image → an RGB PIL image (grey and palette repeated to three channels,
    RGBA composited onto white); a missing or unreadable file raises an error saying so."""
    from PIL import Image

    if isinstance(source, (str, Path)):
        source = open_picture(source)
    if not isinstance(source, Image.Image):
        raise TypeError(f"expected a path, a PIL image or a tensor, got {type(source).__name__}")
    if source.mode in ("RGBA", "LA", "PA") or (source.mode == "P" and
                                                "transparency" in source.info):
        rgba = source.convert("RGBA")
        source = Image.alpha_composite(Image.new("RGBA", rgba.size, (255,) * 4), rgba)
    return source.convert("RGB")


def centre_box(size: tuple[int, int]) -> list[int]:
    """The largest centred square ``[x0, y0, x1, y1]`` of a picture of ``size = (width,
    height)``.

    >>> centre_box((600, 400))
    [100, 0, 500, 400]
    """
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return [left, top, left + side, top + side]


def load_image(source, size: int) -> Tensor:
    """A path, a PIL image or a tensor → ``1×3×size×size`` in [−1, 1] (rules in the module
    docstring)."""
    from PIL import Image

    if isinstance(source, Tensor):
        return check_image(source, size)
    image = open_rgb(source)
    box = centre_box(image.size)
    image = image.crop(tuple(box))
    if box[2] - box[0] != size:
        image = image.resize((size, size), Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1
