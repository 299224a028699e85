"""Named weights: download from split archives (file:// URLs stand in for the network),
hash checks, offline errors, fallback, and the bundled model."""
import io
import tarfile

import pytest
import torch

from g2s_lite import hub
from g2s_lite.gan import Discriminator, Generator, save_stylegan2

WIDTHS = {4: 8, 8: 8, 16: 4}


@pytest.fixture()
def archive(tmp_path):
    """A tiny checkpoint inside a .tar.gz split into three parts, like the paper's release."""
    torch.manual_seed(0)
    G, D = Generator(16, 8, 2, WIDTHS), Discriminator(16, WIDTHS)
    ckpt = tmp_path / "tiny.pt"
    save_stylegan2(ckpt, G, D)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(ckpt, arcname="checkpoints/stylegan2/tiny.pt")
    data = buf.getvalue()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    urls = []
    for i in range(3):
        part = tmp_path / f"x0{i}"
        part.write_bytes(data[cut[i]:cut[i + 1]])
        urls.append(part.as_uri())
    return {"G": G, "urls": tuple(urls), "sha": hub.sha256(ckpt)}


def test_download_split_archive_extract_member_and_cache(archive, tmp_path):
    cache = tmp_path / "cache"
    reg = {"tiny": hub.Weights("tiny", urls=archive["urls"],
                               member="checkpoints/stylegan2/tiny.pt", sha256=archive["sha"])}
    G, D = hub.load("tiny", registry=reg, progress=False, cache=cache)
    z = torch.randn(2, 8)
    assert torch.allclose(G(z), archive["G"](z))
    assert (tmp_path / "cache" / "tiny.pt").exists()
    # a second load comes from the cache, even with the "network" gone
    for url in archive["urls"]:
        (tmp_path / url.rsplit("/", 1)[-1]).unlink()
    hub.load("tiny", registry=reg, progress=False, cache=cache)


def test_wrong_hash_is_refused_with_the_file_and_both_hashes(archive, tmp_path):
    cache = tmp_path / "cache"
    reg = {"tiny": hub.Weights("tiny", urls=archive["urls"],
                               member="checkpoints/stylegan2/tiny.pt", sha256="0" * 64)}
    with pytest.raises(ValueError, match=f"{archive['sha']}, expected {'0' * 64}"):
        hub.fetch("tiny", registry=reg, progress=False, cache=cache)
    assert not (tmp_path / "cache" / "tiny.pt").exists()


def test_missing_member_and_offline_errors(archive, tmp_path):
    cache = tmp_path / "cache"
    reg = {"other": hub.Weights("x", urls=archive["urls"], member="checkpoints/none.pt"),
           "offline": hub.Weights("x", urls=((tmp_path / "nowhere").as_uri(),), member="a.pt")}
    with pytest.raises(hub.WeightsUnavailable, match="not in the archive"):
        hub.fetch("other", registry=reg, progress=False, cache=cache)
    with pytest.raises(hub.WeightsUnavailable, match="bundled model"):
        hub.fetch("offline", registry=reg, progress=False, cache=cache)
    with pytest.raises(KeyError, match="known: other, offline"):
        hub.fetch("nothing", registry=reg, cache=cache)


def test_fallback_says_so(archive, tmp_path, capsys):
    cache = tmp_path / "cache"
    reg = {"offline": hub.Weights("x", urls=((tmp_path / "nowhere").as_uri(),), member="a.pt"),
           "tiny": hub.Weights("tiny", urls=archive["urls"], member="checkpoints/stylegan2/tiny.pt")}
    G, _ = hub.load("offline", fallback="tiny", registry=reg, progress=False, cache=cache)
    assert G.size == 16
    assert "Using 'tiny' instead" in capsys.readouterr().out


def test_registry_names_the_papers_checkpoints():
    for name in ("celeba128", "synface128"):
        entry = hub.REGISTRY[name]
        assert entry.urls and all(u.startswith("https://github.com/XingangPan/GAN2Shape/")
                                  for u in entry.urls)
        assert entry.member.endswith("config-e.pt")


@pytest.mark.parametrize("name", ["synface64", "synface64_long"])
def test_bundled_synface64_matches_its_registered_hash_and_loads(name):
    entry = hub.REGISTRY[name]
    path = hub.fetch(name)
    assert entry.sha256 is not None and hub.sha256(path) == entry.sha256
    assert path.stat().st_size < 8 * 2**20  # "a few MB"
    G, D = hub.load(name)
    assert G.size == 64 and D is not None
    with torch.no_grad():
        img = G(torch.randn(4, G.style_dim))
    assert img.shape == (4, 3, 64, 64) and torch.isfinite(img).all()
    assert "wall time" in hub.model_card(name)


def test_a_damaged_bundled_file_is_refused(tmp_path):
    damaged = tmp_path / "synface64.pt"
    damaged.write_bytes(hub.fetch("synface64").read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="expected"):
        hub._verify(damaged, hub.REGISTRY["synface64"].sha256)


def test_the_cache_is_an_argument_and_only_entry_points_read_g2s_cache(archive, tmp_path,
                                                                      monkeypatch):
    """``G2S_CACHE`` is read by runtime.weights_cache (for a command line's main), never by
    the hub itself: without ``cache=`` a download goes to the default folder."""
    from g2s_lite import runtime

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "from_env"))
    reg = {"tiny": hub.Weights("tiny", urls=archive["urls"],
                               member="checkpoints/stylegan2/tiny.pt")}
    path = hub.fetch("tiny", registry=reg, progress=False)
    assert path == tmp_path / "home" / ".cache" / "g2s_lite" / "tiny.pt" and path.is_file()
    assert runtime.default_cache() == path.parent
    assert hub.recorded_hashes() == {"tiny": hub.sha256(path)}
    assert not (tmp_path / "from_env").exists()
    assert runtime.weights_cache() == tmp_path / "from_env"  # the entry point's reading
    monkeypatch.delenv(runtime.CACHE_ENV)
    assert runtime.weights_cache() == runtime.default_cache()
