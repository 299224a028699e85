"""Named GAN weights: the bundled SynFace GAN and the paper's downloadable checkpoints —
Chapters 3 and 9.

``hub.load("synface64")`` returns the small StyleGAN2 trained on SynFaces that ships inside
the package (its model card, ``weights/synface64.md``, says how it was made and how good it
is). The paper's StyleGAN2 models are published as one split archive (four release parts
that concatenate to a ``.tar.gz``); ``hub.load("celeba128")`` downloads the parts into a
cache with a progress bar, keeps only the checkpoint it needs, and checks its SHA-256
wherever the registry knows one. Nothing is downloaded unless a chapter asks for such a
model, and a chapter that cannot get one falls back to the bundled model and says so
(``load(name, fallback="synface64")``).

Loading never unpickles code: checkpoints are read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from .gan import Discriminator, Generator, load_stylegan2

CACHE_ENV = "G2S_CACHE"
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
    """

    description: str
    bundled: str | None = None
    urls: tuple[str, ...] = ()
    member: str | None = None
    sha256: str | None = None
    card: str | None = None


REGISTRY: dict[str, Weights] = {
    "synface64": Weights(
        description="the book's small StyleGAN2 (64 px) trained on SynFaces; ships with the package",
        bundled="weights/synface64.pt",
        sha256="5bc23d045f3db41e4aa1011da16c1e6b31922195e03ab021bc6e2a7787c8b0cb",
        card="weights/synface64.md"),
    "celeba128": Weights(
        description="the paper's StyleGAN2 (128 px, config E) trained on CelebA faces",
        urls=_PAPER_PARTS, member="checkpoints/stylegan2/stylegan2-celeba-config-e.pt"),
    "synface128": Weights(
        description="the paper's StyleGAN2 (128 px, config E) trained on BFM synthetic faces",
        urls=_PAPER_PARTS, member="checkpoints/stylegan2/stylegan2-synface-config-e.pt"),
}


class WeightsUnavailable(RuntimeError):
    """Weights that cannot be had here (no file, no network)."""


def cache_dir() -> Path:
    """Where downloaded weights live: ``$G2S_CACHE`` or ``~/.cache/g2s_lite``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "g2s_lite")


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


def fetch(name: str, registry: dict[str, Weights] | None = None, progress: bool = True) -> Path:
    """The local path of named weights, downloading them into :func:`cache_dir` if needed.

    Raises:
        WeightsUnavailable: when the weights are neither bundled nor cached and cannot be
            downloaded (offline); the message says what to do.
    """
    entry = _entry(name, registry)
    if entry.bundled:
        path = Path(__file__).parent / entry.bundled
        if not path.exists():
            raise WeightsUnavailable(f"bundled weights {path} are missing: reinstall g2s-lite")
        _verify(path, entry.sha256)
        return path
    target = cache_dir() / f"{name}.pt"
    if target.exists():
        _verify(target, entry.sha256)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            part = Path(tmp) / "weights.pt"
            stream = io.BufferedReader(_Parts(entry.urls, progress), buffer_size=1 << 20)
            if entry.member is None:
                with open(part, "wb") as f:
                    shutil.copyfileobj(stream, f)
            else:
                with tarfile.open(fileobj=stream, mode="r|*") as archive:
                    for member in archive:
                        if member.name.lstrip("./") == entry.member:
                            with archive.extractfile(member) as src, open(part, "wb") as f:
                                shutil.copyfileobj(src, f)
                            break
                    else:
                        raise WeightsUnavailable(f"{entry.member} is not in the archive of "
                                                 f"{name!r}")
            _verify(part, entry.sha256)
            os.replace(part, target)
    except OSError as err:  # no network, refused, timed out, disk
        raise WeightsUnavailable(
            f"could not download {name!r} ({entry.description}): {err}. It needs the internet "
            f"(e.g. on Colab); offline, use the bundled model: hub.load('synface64')") from err
    return target


def load(name: str, device: torch.device | str = "cpu", fallback: str | None = None,
         registry: dict[str, Weights] | None = None, progress: bool = True
         ) -> tuple[Generator, Discriminator | None]:
    """Load named weights as ``(G, D)`` in eval mode.

    Args:
        name: a registry name (``"synface64"``, ``"celeba128"``, ``"synface128"``).
        device: where the modules go.
        fallback: another name to use, with a message, when ``name`` cannot be had.
        registry: a registry other than :data:`REGISTRY` (for tests and new models).
        progress: show download progress.
    """
    try:
        path = fetch(name, registry, progress)
    except WeightsUnavailable as err:
        if fallback is None:
            raise
        print(f"{err}\nUsing {fallback!r} instead.")
        return load(fallback, device, None, registry, progress)
    return load_stylegan2(path, device=device)


def model_card(name: str, registry: dict[str, Weights] | None = None) -> str:
    """The model card (markdown) of named weights, if they have one."""
    entry = _entry(name, registry)
    if entry.card is None:
        return f"{name}: {entry.description} (no model card)"
    return (Path(__file__).parent / entry.card).read_text()
