"""The pose-and-light regressor (g2s_lite.pose_regressor): its shapes and units, targets
read off SynFaces and mirrored with their images, a short training that learns, and its
outputs in any batching. Tiny sizes: a few seconds on a CPU."""
import math

import numpy as np
import pytest
import torch

from g2s_lite import pose_regressor as pr

pytestmark = pytest.mark.usefixtures("one_thread")


def test_regressor_shapes_and_units():
    reg = pr.PoseLightRegressor().eval()
    x = torch.randn(2, 3, 64, 64)
    assert reg(x).shape == (2, 4)
    assert reg.features(x).shape == (2, reg.feature_dim) == (2, 64)
    assert reg(torch.randn(2, 3, 32, 48)).shape == (2, 4)  # any size divisible by 16
    # outputs are standardised predictions brought back to the targets' units
    reg.target_mean.copy_(torch.tensor([10.0, -5.0, 0.2, 0.3]))
    reg.target_std.copy_(torch.tensor([20.0, 8.0, 0.5, 0.3]))
    torch.testing.assert_close(reg(x), reg.standardised(x) * reg.target_std + reg.target_mean)
    with pytest.raises(ValueError, match="multiples of 16"):
        reg(torch.randn(1, 3, 40, 40))


def test_targets_and_mirroring():
    batch = {"view": torch.tensor([[0.1, -0.5, 0.0, 0, 0, 0]]),
             "light": torch.tensor([[0.4, 0.3, 0.6, -0.2]])}
    t = pr.pose_light_targets(batch)
    torch.testing.assert_close(t, torch.tensor([[math.degrees(-0.5), math.degrees(0.1),
                                                 0.6, -0.2]]))
    img = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 2, 4)
    img_m, t_m = pr._mirror(img, t)
    assert torch.equal(img_m[0, 0, 0], torch.tensor([3.0, 2.0, 1.0, 0.0]))
    torch.testing.assert_close(t_m, t * torch.tensor([-1.0, 1.0, -1.0, 1.0]))


def test_short_regressor_training_lowers_loss():
    history: list[float] = []
    reg = pr.train_regressor(steps=40, batch=8, pool=16, size=32, progress=False,
                             history=history)
    assert len(history) == 40 and not reg.training
    assert np.mean(history[-8:]) < 0.7 * np.mean(history[:8])
    # standardisation statistics come from the (mirrored) training faces
    assert reg.target_std.min() > 0 and abs(reg.target_mean[0]) < 1e-3  # mirrored yaw: mean 0


def test_regressor_outputs_match_the_regressor_in_any_batching():
    reg = pr.PoseLightRegressor().eval()
    reg.target_mean.copy_(torch.tensor([10.0, -5.0, 0.2, 0.3]))
    reg.target_std.copy_(torch.tensor([20.0, 8.0, 0.5, 0.3]))
    x = torch.randn(7, 3, 32, 32)
    out = pr.regressor_outputs(reg, x, batch=3)
    with torch.no_grad():
        torch.testing.assert_close(out.predictions, reg(x))
        torch.testing.assert_close(out.features, reg.features(x))
    whole = pr.regressor_outputs(reg, x, batch=100)
    torch.testing.assert_close(out.predictions, whole.predictions)
