"""Named weights: the bundled SynFace GAN, the paper's released StyleGAN2 models and its
released GAN2Shape networks — Chapters 3 and 9.

``hub.load("synface64")`` returns the small StyleGAN2 trained on SynFaces that ships inside
the package (its model card, ``weights/synface64.md``, says how it was made and how good it
is). The paper's models are published as one split archive (four release parts that
concatenate to a ``.tar.gz``): the StyleGAN2 checkpoints of CelebA faces, BFM synthetic
faces, cat faces, LSUN churches and LSUN cars (``hub.load("celeba128")`` …), each with the
preset of its released configuration (:func:`preset_of`); the GAN2Shape networks pretrained
on GAN samples (:func:`load_gan2shape_nets`); and the view and light distributions
(:func:`read_mvn`). A download streams the parts into a cache with a progress bar and keeps
every registered file it passes (one pass serves a whole chapter).

Downloads go to a cache folder, ``cache=`` (default
:func:`~g2s_lite.runtime.default_cache`, ``~/.cache/g2s_lite``; a command line passes
:func:`~g2s_lite.runtime.weights_cache`, which reads ``G2S_CACHE``). Hashes: where the
registry knows a file's SHA-256 it is checked always; otherwise the hash is recorded
(``sha256.json`` in the cache) the first time the file is downloaded and checked every time
after. Nothing is downloaded unless a chapter asks for such a model, and a chapter
that cannot get one falls back to the bundled model and says so.
(``load(name, fallback="synface64")``).

Loading never unpickles code: checkpoints are read with ``torch.load(weights_only=True)``.

Weights that torchvision fetches itself (LPIPS's VGG-16 backbone, the parsing net of
:mod:`g2s_lite.parsing`) go to the torch hub cache
(:func:`~g2s_lite.runtime.torch_hub_file`). Torchvision downloads them only when the caller
says ``downloads=True`` (the chapters and command lines pass
:func:`~g2s_lite.runtime.downloads_allowed`: on Colab, or with ``G2S_ALLOW_DOWNLOADS=1``);
otherwise they are used only when already cached.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .gan import Discriminator, Generator, load_stylegan2
from .runtime import default_cache

_PAPER_RELEASE = "https://github.com/XingangPan/GAN2Shape/releases/download/v1.0/"
_PAPER_PARTS = tuple(_PAPER_RELEASE + f"x0{i}" for i in range(4))


@dataclass(frozen=True)
class Weights:
    """One registry entry.

    Attributes:
        description: what the model is.
        bundled: a file inside the package (relative to ``g2s_lite/``), or None.
        urls: parts that concatenate to a ``.tar.gz`` archive (or a single file), or ().
        member: the checkpoint's path inside the archive.
        sha256: expected hash of the checkpoint file, or None where unknown.
        card: model card inside the package, if any.
        kind: ``"stylegan2"`` (a GAN, :func:`load`), ``"gan2shape"`` (D, A, V, L and E,
            :func:`load_gan2shape_nets`) or ``"mvn"`` (a view or light distribution,
            :func:`read_mvn`).
        preset: for a GAN, the name in :data:`~g2s_lite.paper.PRESETS` of its released
            configuration.
        size, channel_multiplier: for a GAN, its resolution and StyleGAN2 channel multiplier
            (config E: 1, config F: 2).
    """

    description: str
    bundled: str | None = None
    urls: tuple[str, ...] = ()
    member: str | None = None
    sha256: str | None = None
    card: str | None = None
    kind: str = "stylegan2"
    preset: str | None = None
    size: int | None = None
    channel_multiplier: int | None = None


def _released(description: str, member: str, **fields) -> Weights:
    return Weights(description, urls=_PAPER_PARTS, member="checkpoints/" + member, **fields)


def _gan(description: str, file: str, preset: str, size: int, multiplier: int) -> Weights:
    return _released(description, "stylegan2/" + file, preset=preset, size=size,
                     channel_multiplier=multiplier)


#: The GAN the book's measurements use unless a run names another (``--gan``).
BOOK_GAN = "synface64"

REGISTRY: dict[str, Weights] = {
    "synface64": Weights(
        description="the book's small StyleGAN2 (64 px) trained on SynFaces; ships with the package",
        bundled="weights/synface64.pt",
        sha256="5bc23d045f3db41e4aa1011da16c1e6b31922195e03ab021bc6e2a7787c8b0cb",
        card="weights/synface64.md", preset="synface64", size=64),
    "synface64_long": Weights(
        description="the book's SynFace GAN trained further (2.6 times the images); ships with "
                    "the package, for runs that name it (--gan synface64_long)",
        bundled="weights/synface64_long.pt",
        sha256="e141b04b4918da734143e8dc694a42d400f0413019097f43e6cc0eef73931360",
        card="weights/synface64_long.md", preset="synface64", size=64),
    "celeba128": _gan("the paper's StyleGAN2 (128 px, config E) trained on CelebA faces",
                      "stylegan2-celeba-config-e.pt", "face128", 128, 1),
    "synface128": _gan("the paper's StyleGAN2 (128 px, config E) trained on BFM synthetic faces",
                       "stylegan2-synface-config-e.pt", "synface", 128, 1),
    "cat256": _gan("the paper's StyleGAN2 (256 px, config E) trained on cat faces",
                   "stylegan2-catface-config-e.pt", "cat128", 256, 1),
    "church256": _gan("the paper's StyleGAN2 (256 px, config F) trained on LSUN churches",
                      "stylegan2-church-config-f.pt", "church128", 256, 2),
    "car512": _gan("the paper's StyleGAN2 (512 px, config F) trained on LSUN cars",
                   "stylegan2-car-config-f.pt", "car128", 512, 2),
}
# The released GAN2Shape nets (pretrained on GAN samples) and view/light distributions.
for _name in ("celeba", "cat", "synface"):
    REGISTRY[f"{_name}_pretrain"] = _released(
        f"the paper's D, A, V, L and E pretrained on {_name} GAN samples",
        f"gan2shape/{_name}_pretrain.pth", kind="gan2shape")
    for _what in ("view", "light"):
        REGISTRY[f"{_name}_{_what}_mvn"] = _released(
            f"the paper's {_what} distribution of {_name} images (mean and covariance)",
            f"view_light/{_name}_{_what}_mvn.pth", kind="mvn")
for _what in ("view", "light"):  # cars and churches
    REGISTRY[f"{_what}_mvn"] = _released(
        f"the paper's {_what} distribution of car and church images (mean and covariance)",
        f"view_light/{_what}_mvn.pth", kind="mvn")


def preset_of(name: str, registry: dict[str, Weights] | None = None) -> str:
    """The preset of a GAN's released configuration, e.g. ``preset_of("celeba128") ==
    "face128"``."""
    entry = _entry(name, registry)
    if entry.preset is None:
        raise ValueError(f"{name!r} is not a GAN ({entry.kind}); GANs: "
                         + ", ".join(k for k, e in (registry or REGISTRY).items() if e.preset))
    return entry.preset


class WeightsUnavailable(RuntimeError):
    """Weights that cannot be had here (no file, no network)."""


def _folder(cache: str | os.PathLike | None) -> Path:
    return default_cache() if cache is None else Path(cache)


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entry(name: str, registry: dict[str, Weights] | None) -> Weights:
    registry = REGISTRY if registry is None else registry
    if name not in registry:
        raise KeyError(f"no weights named {name!r}; known: {', '.join(registry)}")
    return registry[name]


def _verify(path: Path, expected: str | None) -> None:
    if expected is None:
        return
    found = sha256(path)
    if found != expected:
        raise ValueError(f"{path} has SHA-256 {found}, expected {expected}: the file is "
                         "damaged or not the registered one; delete it and load again "
                         "(or reinstall the package for bundled weights)")


class _Parts(io.RawIOBase):
    """The concatenation of several URLs as one readable stream, with a progress bar."""

    def __init__(self, urls: tuple[str, ...], progress: bool) -> None:
        from tqdm.auto import tqdm

        self._urls, self._i, self._current = list(urls), 0, None
        self._bar = tqdm(unit="B", unit_scale=True, desc="download", disable=not progress)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._i < len(self._urls):
            if self._current is None:
                self._current = urllib.request.urlopen(self._urls[self._i], timeout=60)
                total = self._current.headers.get("Content-Length")
                self._bar.set_description(f"download part {self._i + 1}/{len(self._urls)}")
                if total:
                    self._bar.total = (self._bar.total or 0) + int(total)
            n = self._current.readinto(buffer)
            if n:
                self._bar.update(n)
                return n
            self._current.close()
            self._current, self._i = None, self._i + 1
        self._bar.close()
        return 0


def recorded_hashes(cache: str | os.PathLike | None = None) -> dict[str, str]:
    """The SHA-256 recorded for each file downloaded into ``cache``, by name."""
    path = _folder(cache) / "sha256.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _record(name: str, digest: str, cache: Path) -> None:
    hashes = recorded_hashes(cache)
    hashes[name] = digest
    path = cache / "sha256.json"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(hashes, indent=1, sort_keys=True))
    os.replace(partial, path)


def _expected(name: str, entry: Weights, cache: Path) -> str | None:
    return entry.sha256 or recorded_hashes(cache).get(name)


def fetch(name: str, registry: dict[str, Weights] | None = None, progress: bool = True,
          cache: str | os.PathLike | None = None) -> Path:
    """The local path of named weights, downloading them into the folder ``cache`` (default
    :func:`~g2s_lite.runtime.default_cache`) if needed.

    A download keeps every file of the registry found in the same archive on the way (they
    are cached too), and stops reading once all of them are in.

    Raises:
        WeightsUnavailable: when the weights are neither bundled nor cached and cannot be
            downloaded (offline); the message says what to do.
        ValueError: the file's SHA-256 is not the registered or recorded one.
    """
    registry = REGISTRY if registry is None else registry
    entry = _entry(name, registry)
    if entry.bundled:
        path = Path(__file__).parent / entry.bundled
        if not path.exists():
            raise WeightsUnavailable(f"bundled weights {path} are missing: reinstall g2s-lite")
        _verify(path, entry.sha256)
        return path
    cache = _folder(cache)
    target = cache / f"{name}.pt"
    if target.exists():
        _verify(target, _expected(name, entry, cache))
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # the registered files of the same archive not yet cached: one pass fetches them all
    wanted = {name: entry}
    if entry.member is not None:
        wanted.update({k: e for k, e in registry.items() if e.urls == entry.urls and e.member
                       and not (cache / f"{k}.pt").exists()})
    by_member = {e.member: k for k, e in wanted.items()}
    try:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            stream = io.BufferedReader(_Parts(entry.urls, progress), buffer_size=1 << 20)
            got: dict[str, Path] = {}
            if entry.member is None:
                got[name] = Path(tmp) / "weights.pt"
                with open(got[name], "wb") as f:
                    shutil.copyfileobj(stream, f)
            else:
                with tarfile.open(fileobj=stream, mode="r|*") as archive:
                    for member in archive:
                        key = by_member.get(member.name.lstrip("./"))
                        if key is None or not member.isfile():
                            continue
                        got[key] = Path(tmp) / f"{key}.pt"
                        with archive.extractfile(member) as src, open(got[key], "wb") as f:
                            shutil.copyfileobj(src, f)
                        if len(got) == len(wanted):
                            break
                if name not in got:
                    raise WeightsUnavailable(f"{entry.member} is not in the archive of "
                                             f"{name!r}")
            for key, part in got.items():
                digest = sha256(part)
                if wanted[key].sha256 is not None and digest != wanted[key].sha256:
                    if key == name:
                        _verify(part, wanted[key].sha256)
                    continue  # another file's problem: it is not kept, and says so when asked
                os.replace(part, cache / f"{key}.pt")
                _record(key, digest, cache)
    except OSError as err:  # no network, refused, timed out, disk
        raise WeightsUnavailable(
            f"could not download {name!r} ({entry.description}): {err}. It needs the internet "
            f"(e.g. on Colab); offline, use the bundled model: hub.load('synface64')") from err
    return target


def load(name: str | os.PathLike, device: torch.device | str = "cpu",
         fallback: str | None = None, registry: dict[str, Weights] | None = None,
         progress: bool = True, cache: str | os.PathLike | None = None
         ) -> tuple[Generator, Discriminator | None]:
    """Load named weights (or a StyleGAN2 checkpoint file) as ``(G, D)`` in eval mode.

    Args:
        name: a registry name (``"synface64"``, ``"celeba128"``, ``"car512"``, …) or the path
            of a checkpoint in the rosinality format (``{"g_ema": …, "d": …}``).
        device: where the modules go.
        fallback: another name to use, with a message, when ``name`` cannot be had.
        registry: a registry other than :data:`REGISTRY` (for tests and new models).
        progress: show download progress.
        cache: the folder of downloaded weights (:func:`fetch`).
    """
    if isinstance(name, os.PathLike) or Path(str(name)).is_file():
        return load_stylegan2(Path(name), device=device)
    entry = _entry(name, registry)
    if entry.kind != "stylegan2":
        raise ValueError(f"{name!r} is not a GAN but {entry.description}; load it with "
                         + ("hub.load_gan2shape_nets" if entry.kind == "gan2shape"
                            else "hub.read_mvn"))
    try:
        path = fetch(name, registry, progress, cache)
    except WeightsUnavailable as err:
        if fallback is None:
            raise
        print(f"{err}\nUsing {fallback!r} instead.")
        return load(fallback, device, None, registry, progress, cache)
    return load_stylegan2(path, device=device)


# ----------------------------------------------------------------------------- GAN2Shape nets
#: The released checkpoint's name of each net.
RELEASED_NAMES = {"depth": "netD", "albedo": "netA", "view": "netV", "light": "netL"}


def _local(path_or_name: str | os.PathLike, registry: dict[str, Weights] | None,
           cache: str | os.PathLike | None) -> Path:
    path = Path(path_or_name)
    if path.is_file():
        return path
    if str(path_or_name) in (registry or REGISTRY):
        return fetch(str(path_or_name), registry, cache=cache)
    raise FileNotFoundError(f"no file at {path} (and {str(path_or_name)!r} is not a registry "
                            f"name); give the path of the released file or its hub name")


def read_mvn(path_or_name: str | os.PathLike, registry: dict[str, Weights] | None = None,
             cache: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """A released view or light distribution: ``{"mean": K, "cov": K×K}`` (K = 6 or 4).

    The view's rotations are in units of the ±60° range and its translations in units of
    ±0.1 (what V's tanh gives); :func:`read_views` makes a view distribution the pseudo
    samples are drawn from, as the released code draws them. A hub name is downloaded into
    ``cache`` (:func:`fetch`) if needed.
    """
    path = _local(path_or_name, registry, cache)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "mean" not in blob or "cov" not in blob:
        raise ValueError(f"{path} is not a view/light distribution: expected a dict with "
                         f"'mean' and 'cov', found {type(blob).__name__} "
                         f"{sorted(blob) if isinstance(blob, dict) else ''}")
    return {"mean": blob["mean"].float(), "cov": blob["cov"].float()}


def read_views(path_or_name: str | os.PathLike, yaw_scale: float | None = None,
               registry: dict[str, Weights] | None = None,
               cache: str | os.PathLike | None = None):
    """A released view distribution as :class:`~g2s_lite.paper.ViewDistribution`, ready for
    ``preset.with_views(...)``: pseudo samples then take their views from it, as the paper's
    do. ``yaw_scale``: the preset's ``view_scale`` (None: 1.2, the faces' and cats')."""
    from .paper import VIEW_SCALE, ViewDistribution

    mvn = read_mvn(path_or_name, registry, cache)
    yaw_scale = VIEW_SCALE if yaw_scale is None else yaw_scale
    try:
        return ViewDistribution(tuple(mvn["mean"].tolist()),
                                tuple(tuple(r) for r in mvn["cov"].tolist()), yaw_scale)
    except ValueError as err:
        raise ValueError(f"{path_or_name}: {err}") from None


def _strip(state: dict) -> dict:
    # a state dict saved from a DistributedDataParallel wrapper carries "module."
    return {k.removeprefix("module."): v for k, v in state.items()}


def _made_for(blob: dict) -> int | None:
    """The image size a released checkpoint was made for, from V's layer count (4 + log2(S/64)
    stride-2 convolutions and 2 more)."""
    state = blob.get("netV")
    if not isinstance(state, dict):
        return None
    return 64 * 2 ** max(sum(k.endswith("weight") for k in state) - 6, 0)


def _fit(module: torch.nn.Module, state, key: str, path: Path, image_size: int,
         made_for: int | None) -> None:
    """Load ``state`` into ``module`` or say what was expected and what was found."""
    if not isinstance(state, dict):
        raise ValueError(f"{path}: {key} is a {type(state).__name__}, expected a state dict")
    state = _strip(state)
    expected = module.state_dict()
    hint = (f" (the file's layers fit {made_for}-px images)" if made_for and
            made_for != image_size else "")
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(f"{path}: {key} is not in the paper's layout at {image_size} px: "
                         f"expected {len(expected)} tensors such as {missing[0]!r}, found "
                         f"{len(state)} tensors ({list(state)[:3]}…){hint}; give the released "
                         f"file of this image size")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(f"{path}: {key}.{k} does not fit the paper's layout at "
                             f"{image_size} px: expected shape {tuple(v.shape)}, found "
                             f"{tuple(state[k].shape)}{hint}; give the released file of this "
                             f"image size")
    module.load_state_dict({k: state[k] for k in expected})


def load_gan2shape_nets(path: str | os.PathLike, image_size: int,
                        view_mvn: str | os.PathLike | None = None,
                        light_mvn: str | os.PathLike | None = None,
                        G: Generator | None = None, f1_d: int = 2, relative: bool = True,
                        device: torch.device | str = "cpu",
                        registry: dict[str, Weights] | None = None,
                        prior: Tensor | None = None,
                        cache: str | os.PathLike | None = None):
    """The released GAN2Shape networks (``celeba_pretrain.pth`` …) as ``(nets, encoder)``.

    ``nets`` are D, A, V and L (:class:`~g2s_lite.nets.Nets`) in the paper's exact layout
    (:mod:`g2s_lite.released`), each giving its factor in the renderer's units, with the
    means of the view and light distributions added to V's and L's outputs as the released
    forward pass does. ``encoder`` is the latent encoder E (image → ``B×512``), or, when
    ``G`` is given, E as a latent-offset encoder for ``G`` with ``f1_d`` and ``relative``
    as released (:func:`~g2s_lite.released.offset_encoder`), ready for ``reconstruct``.

    Args:
        path: the released file, or its hub name (``"celeba_pretrain"``; downloaded).
        image_size: the images the nets take (64 for synface, 128 for the others).
        view_mvn, light_mvn: the released distributions (files or hub names), or None
            (means of zero).
        G, f1_d, relative: see above (the released faces: F1_d 2, relative; synface: 8).
        prior: the depth ``S×S`` D starts at when the file holds no ``netD`` (the released
            code then fits D to its ellipsoid, placed on the parsed mask); default: the
            paper's ellipsoid (:func:`~g2s_lite.prior.make_prior`).
        cache: the folder hub names are downloaded into (:func:`fetch`).

    Raises:
        ValueError: a file of another image size or layout, naming the file, the tensor,
            what was expected and what was found.
    """
    from .released import paper_encoder, paper_nets, offset_encoder

    path = _local(path, registry, cache)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or not {"netA", "netV", "netL", "netEnc"} <= set(blob):
        found = sorted(blob)[:8] if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path} is not a released GAN2Shape checkpoint: expected the state "
                         f"dicts netD, netA, netV, netL and netEnc, found {found}")
    means = {k: None if p is None else read_mvn(p, registry, cache)["mean"]
             for k, p in (("view", view_mvn), ("light", light_mvn))}
    nets = paper_nets(image_size, means["view"], means["light"])
    made_for = _made_for(blob)
    for field, key in RELEASED_NAMES.items():
        if key in blob:
            _fit(getattr(nets, field).net, blob[key], key, path, image_size, made_for)
    if "netD" not in blob:
        from .prior import make_prior

        nets.depth.start_at(make_prior("ellipsoid", image_size) if prior is None else prior)
    encoder = paper_encoder(image_size)
    _fit(encoder, blob["netEnc"], "netEnc", path, image_size, made_for)
    for net in (nets.depth, nets.albedo, nets.view, nets.light, encoder):
        net.to(device)
    if G is not None:
        if G.style_dim != 512:
            raise ValueError(f"{path}: the released encoder gives 512-dim offsets, but this "
                             f"GAN's style_dim is {G.style_dim}; use it with the paper's GANs")
        encoder = offset_encoder(encoder, G, f1_d, relative)
    return nets, encoder


def model_card(name: str, registry: dict[str, Weights] | None = None) -> str:
    """The model card (markdown) of named weights, if they have one."""
    entry = _entry(name, registry)
    if entry.card is None:
        return f"{name}: {entry.description} (no model card)"
    return (Path(__file__).parent / entry.card).read_text()
