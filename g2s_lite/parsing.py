"""Foreground masks: where the object is — Chapter 9, *Beyond faces*.

A face fills its crop, but a car or a church stands in a street, under a sky. The paper's
official code parses every image for a foreground mask: its ellipsoid prior is fitted to the
mask's box, and where the released configuration says ``use_mask`` (cars and churches,
:attr:`g2s_lite.paper.Preset.use_mask`) the object is also cut from its background. The masks
come from released parsing networks (PSPNet trained on PASCAL VOC for cars and cats, on ADE20K
for churches' buildings, BiSeNet for faces). We do not rebuild them:

1. :func:`segmenter` is torchvision's semantic segmentation net, DeepLabV3 with a ResNet-50
   backbone trained on COCO images with the 21 VOC labels (0 is the background). Its weights
   are a download, fetched by torchvision into the torch hub cache only when the caller says
   ``downloads=True`` (the command line passes :func:`g2s_lite.runtime.downloads_allowed`: on
   Colab or with ``G2S_ALLOW_DOWNLOADS=1``, the rule of LPIPS's backbone); otherwise they are
   used only when already cached.
2. :func:`foreground_mask` runs it the way its weights were trained: the image in [0, 1],
   normalised with ImageNet's mean and standard deviation, resized to 520 px; each pixel takes
   the class with the highest score, and the pixels of the category's class (:data:`PARSED`)
   are the object. Back at the image's size, a pixel is object when more than half of what it
   covers is.
3. :func:`read_mask` reads a mask the user made instead: any image, white on the object, cut
   with the photo's crop box and resized by the same rule. Churches have no VOC class, so they
   need one (``--mask`` on the command line); so does any photo the net gets wrong.

Masks are ``B×1×S×S`` tensors of 0 and 1 (float), like every mask of the book. The classes
of :data:`PARSED` are the net's own labels:

>>> [VOC_WEIGHTS.meta["categories"][k] for k in PARSED.values()]
['car', 'cat']
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights

from .hub import WeightsUnavailable
from .runtime import DOWNLOADS_ENV, torch_hub_file
from .images import check_images, open_picture, to_size

#: The VOC class of each category the parsing net can find (one home; 0 is the background).
#: Churches and faces have none: give a mask file for them.
PARSED = {"car": 7, "cat": 8}

#: torchvision's DeepLabV3-ResNet50 weights with the 21 VOC labels (trained on a COCO subset).
VOC_WEIGHTS = DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1


def segmenter(device: torch.device | str = "cpu",
              weights: DeepLabV3_ResNet50_Weights | None = VOC_WEIGHTS,
              downloads: bool = False) -> nn.Module:
    """torchvision's DeepLabV3-ResNet50 with VOC labels, in eval mode on ``device``.

    Maps ``B×3×H×W`` normalised images to ``{"out": B×21×H×W}`` class scores (and ``"aux"``).
    ``weights=None`` gives the same net with random weights (nothing downloaded): plumbing
    for tests, useless for masks. ``downloads``: whether torchvision may download the weights
    when the torch hub cache lacks them (an entry point decides:
    :func:`~g2s_lite.runtime.downloads_allowed`).

    Raises:
        WeightsUnavailable: the weights are not in the torch hub cache and downloads are off
            (or the download failed); the message names the file and what to do.
    """
    from torchvision.models.segmentation import deeplabv3_resnet50

    if weights is None:
        model = deeplabv3_resnet50(weights=None, weights_backbone=None,
                                   num_classes=len(VOC_WEIGHTS.meta["categories"]))
        return model.eval().to(device)
    file = Path(weights.url).name
    what = (f"the parsing net's weights ({file}, torchvision's DeepLabV3-ResNet50 with VOC "
            f"labels)")
    if not torch_hub_file(file).exists() and not downloads:
        raise WeightsUnavailable(
            f"{what} are a download and are not in the torch hub cache "
            f"({torch_hub_file(file).parent}): run on Colab or set {DOWNLOADS_ENV}=1 to fetch "
            f"them (from Python: downloads=True), or give a mask file (--mask)")
    try:
        model = deeplabv3_resnet50(weights=weights)
    except OSError as err:  # no network, refused, timed out, disk
        raise WeightsUnavailable(f"could not download {what}: {err}; run where the internet "
                                 f"can be reached (e.g. Colab), or give a mask file (--mask)"
                                 ) from err
    return model.eval().to(device)


def _check_category(category: str) -> int:
    if category not in PARSED:
        raise ValueError(f"the parsing net finds {', '.join(PARSED)}, not {category!r}; for "
                         f"{category} (churches, faces, …) give a mask file (--mask)")
    return PARSED[category]


def _binary(mask: Tensor, size: int) -> Tensor:
    """``B×1×H×W`` in [0, 1] → ``B×1×size×size`` of 0 and 1: object where more than half of
    what a pixel covers is (area average when shrinking, bilinear when enlarging).

    >>> _binary(torch.tensor([[[[1., 1., 0., 0., 0., 0.]] * 6]]), 2)[0, 0].tolist()
    [[1.0, 0.0], [1.0, 0.0]]
    >>> _binary(torch.tensor([[[[1., 0., 0., 0., 0., 0.]] * 6]]), 2)[0, 0].tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """
    return (to_size(mask.float(), size) > 0.5).float()


@torch.no_grad()
def foreground_mask(image: Tensor, category: str, model: nn.Module | None = None,
                    device: torch.device | str | None = None,
                    resolution: int | None = None, downloads: bool = False) -> Tensor:
    """The pixels of ``category`` in ``image``, found by the parsing net.

    Args:
        image: ``B×3×S×S`` in [−1, 1].
        category: a key of :data:`PARSED` ("car", "cat").
        model: a net from :func:`segmenter` (or any module giving ``{"out": B×21×H×W}``
            scores with the VOC labels); None builds one (pass it to reuse it).
        device: where the net runs; default: the image's device.
        resolution: the side the image is resized to for the net; default: its weights'
            (520 px). Smaller is faster and coarser.
        downloads: when ``model`` is None, whether the net's weights may be downloaded
            (:func:`segmenter`).

    Returns:
        ``B×1×S×S`` of 0 and 1 (float) on the image's device.

    Raises:
        ValueError: a category without a VOC class, or an image with no pixel of it (both
            say to give a mask file).
        WeightsUnavailable: from :func:`segmenter`, when ``model`` is None.
    """
    index = _check_category(category)
    check_images(image, square=True)
    device = image.device if device is None else torch.device(device)
    if model is None:
        model = segmenter(device, downloads=downloads)
    prepare = (VOC_WEIGHTS.transforms() if resolution is None
               else VOC_WEIGHTS.transforms(resize_size=resolution))
    scores = model(prepare(((image.to(device) + 1) / 2).clamp(0, 1)))["out"]
    mask = _binary((scores.argmax(1, keepdim=True) == index), image.shape[-1])
    empty = [i for i in range(len(mask)) if not mask[i].any()]
    if empty:
        which = "the image" if len(mask) == 1 else f"image {empty[0]} of the batch"
        raise ValueError(f"no {category} found in {which}; give a mask file (--mask)")
    return mask.to(image.device)


def read_mask(path: str | Path, crop: list[int], size: int,
              photo_size: tuple[int, int] | None = None) -> Tensor:
    """A mask file made for a photo, cut and resized like the photo: ``1×1×size×size`` of
    0 and 1 (float).

    The file is any image of the photo's size, white on the object; its grey levels are
    thresholded at half way. A picture with transparency is read by its alpha channel instead
    (opaque = object), so that a cut-out works as its own mask.

    Args:
        path: the mask file.
        crop: the photo's crop box ``[x0, y0, x1, y1]`` (``photos.prepare(...).crop``).
        size: the side of the method's images, S.
        photo_size: the photo's ``(width, height)``; when given, a mask of another size is
            refused (without it, only a crop box that leaves the mask is).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a file that is not an image, of the wrong size, or with no object pixel
            inside the crop box.
    """
    path = Path(path)
    picture = open_picture(path, "mask", "give a PNG mask, white on the object")
    width, height = picture.size
    if photo_size is not None and (width, height) != tuple(photo_size):
        raise ValueError(f"the mask {path} is {width}×{height} px but the photo is "
                         f"{photo_size[0]}×{photo_size[1]} px; give a mask of the photo's size")
    x0, y0, x1, y1 = (int(v) for v in crop)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"the crop box {[x0, y0, x1, y1]} does not lie inside the mask {path} "
                         f"({width}×{height} px); give a mask of the photo's size")
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    alpha = picture.convert("RGBA").getchannel("A") if has_alpha else None
    grey = alpha if alpha is not None and alpha.getextrema()[0] < 255 else picture.convert("L")
    levels = torch.from_numpy(np.asarray(grey, dtype=np.float32)[y0:y1, x0:x1] / 255)
    mask = _binary(levels[None, None] > 0.5, size)
    if not mask.any():
        raise ValueError(f"the mask {path} has no white (object) pixel inside the crop box "
                         f"{[x0, y0, x1, y1]}; draw the object in white on black")
    return mask
