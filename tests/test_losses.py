"""Losses on hand-computed cases, the perceptual fallback's choice and announcement."""
import pytest
import torch
import torch.nn.functional as F

from g2s_lite import losses
from g2s_lite.losses import (PerceptualLoss, discriminator_feature_loss, photometric_l1,
                             resolve_perceptual, smoothness)


def test_photometric_l1_is_a_masked_mean():
    a = torch.zeros(1, 3, 2, 2)
    b = torch.zeros(1, 3, 2, 2)
    b[:, :, 0, 0] = 1.0
    b[:, :, 1, 1] = 3.0
    assert photometric_l1(a, b).item() == pytest.approx(1.0)  # (1 + 3) / 4
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert photometric_l1(a, b, mask).item() == pytest.approx(0.5)  # (1 + 0) / 2


def test_smoothness_is_zero_for_planes_and_positive_for_curves():
    v, u = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    assert smoothness((0.3 * u - 0.2 * v + 1)[None]).item() == pytest.approx(0.0, abs=1e-6)
    bowl = ((u - 3.5) ** 2 + (v - 3.5) ** 2)[None]
    # second differences of x² are 2 everywhere: 2 + 0 + 0 + 2
    assert smoothness(bowl).item() == pytest.approx(4.0)


def test_discriminator_feature_loss_with_known_features():
    def features(x, n):
        return [F.avg_pool2d(x, 2), F.avg_pool2d(x, 4)][:n]

    a = torch.zeros(1, 3, 8, 8)
    b = torch.ones(1, 3, 8, 8)
    assert discriminator_feature_loss(features, a, a).item() == 0.0
    assert discriminator_feature_loss(features, a, b, n_blocks=2).item() == pytest.approx(2.0)
    # masked: only the top half differs, and the mask keeps only the bottom half
    c = torch.zeros(1, 3, 8, 8)
    c[..., :4, :] = 1.0
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 4:, :] = 1.0
    assert discriminator_feature_loss(features, a, c, mask, n_blocks=1).item() == pytest.approx(0.0)


def test_ssim_perceptual_loss_measures_structure():
    loss = PerceptualLoss("ssim")
    torch.manual_seed(0)
    img = F.interpolate(torch.rand(1, 3, 8, 8) * 2 - 1, size=32, mode="bilinear")
    assert loss(img, img).item() == pytest.approx(0.0, abs=1e-5)
    noisy = (img + 0.3 * torch.randn_like(img)).clamp(-1, 1)
    assert loss(img, noisy) > 0.05
    assert loss(img, img.flip(-1)) > loss(img, noisy) / 2


def test_auto_falls_back_offline_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    # the environment's switch is for entry points: a library call reads only its argument
    monkeypatch.setenv(losses.DOWNLOADS_ENV, "1")
    assert PerceptualLoss("auto").kind == "ssim"
    out = capsys.readouterr().out
    assert "SSIM" in out and "LPIPS" in out and losses.DOWNLOADS_ENV in out
    # the choice is made per call, from the arguments: nothing is remembered
    assert resolve_perceptual("auto", downloads=True) == "lpips"
    assert "LPIPS" in capsys.readouterr().out
    assert resolve_perceptual("auto") == "ssim"
    assert not any(tmp_path.rglob("*.pth"))  # deciding downloads nothing


def test_auto_takes_lpips_when_its_backbone_is_cached(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(losses.DOWNLOADS_ENV, raising=False)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / losses._VGG16_FILE).write_bytes(b"")
    assert resolve_perceptual("auto") == "lpips"
    assert "LPIPS" in capsys.readouterr().out


def test_explicit_choices_and_errors():
    assert PerceptualLoss("ssim").kind == "ssim"
    with pytest.raises(ValueError, match="unknown perceptual"):
        PerceptualLoss("vgg")
    with pytest.raises(ValueError, match="discriminator=D"):
        PerceptualLoss("discriminator")
