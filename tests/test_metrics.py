"""SIDE, MAD, Chamfer and erosion on hand-computed cases."""
import math

import pytest
import torch

from g2s_lite.metrics import chamfer, depth_errors, erode, mad, relief, side
from g2s_lite.synth import SynFaces


def test_side_is_scale_invariant_and_matches_hand_computation():
    gt = torch.full((1, 2, 2), 1.0)
    mask = torch.ones(1, 2, 2)
    assert side(gt * 1.7, gt, mask).item() == pytest.approx(0.0, abs=1e-6)
    # log-differences 0, 0, a, a → mean a/2, deviations ±a/2 → SIDE = a/2
    a = 0.1
    pred = gt.clone()
    pred[0, 1] = math.exp(a)
    assert side(pred, gt, mask).item() == pytest.approx(a / 2, rel=1e-5)
    # the mask picks pixels: only the two equal ones → zero error
    m = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    assert side(pred, gt, m).item() == pytest.approx(0.0, abs=1e-6)
    # per-image values, B×1×H×W masks accepted
    both = side(torch.cat([pred, gt]), torch.cat([gt, gt]), torch.ones(2, 1, 2, 2))
    assert both.shape == (2,) and both[1] == 0


def test_relief_splits_side_into_depth_and_shape():
    gt = 1 + 0.05 * torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 8, 8)
    mask[1, :3] = 0
    # the same shape 1.3 times as deep (and moved back): amplitude 1.3, nothing else wrong
    deep = 1.1 * gt ** 1.3
    r = relief(deep, gt, mask)
    assert r["amplitude"] == pytest.approx(torch.tensor([1.3, 1.3]), rel=1e-4)
    assert r["correlation"] == pytest.approx(torch.ones(2), rel=1e-5)
    assert r["scale"] == pytest.approx(torch.full((2,), 1 / 1.3), rel=1e-4)
    assert r["side_scaled"].abs().max() < 1e-5
    assert r["along"] == pytest.approx(torch.full((2,), 1.3), rel=1e-4)
    # against a brute-force reference on the masked pixels of a prediction with other shapes
    pred = 1 + 0.05 * torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(1)) + \
        0.5 * (gt - 1)
    r = relief(pred, gt, mask)
    for b in range(2):
        on = mask[b] > 0
        p, g = pred[b][on].log().double(), gt[b][on].log().double()
        assert r["amplitude"][b].item() == pytest.approx((p.std() / g.std()).item(), rel=1e-4)
        assert r["correlation"][b].item() == pytest.approx(
            torch.corrcoef(torch.stack([p, g]))[0, 1].item(), rel=1e-4)
        # along: the least-squares slope of p on g (p = β·g + α + ε)
        design = torch.stack([g, torch.ones_like(g)], 1)
        beta = torch.linalg.lstsq(design, p[:, None]).solution[0, 0]
        assert r["along"][b].item() == pytest.approx(beta.item(), rel=1e-4)
    # scaling the relief by k is raising the depth to the power k: SIDE then agrees
    k = r["scale"]
    assert r["side_scaled"] == pytest.approx(
        torch.stack([side(pred[b:b + 1] ** k[b], gt[b:b + 1], mask[b:b + 1])[0]
                     for b in range(2)]), rel=1e-4)
    # and SIDE² = side_scaled² + (std p − correlation · std g)², the part a deeper or
    # flatter relief adds
    std_g = torch.stack([gt[b][mask[b] > 0].log().std(unbiased=False) for b in range(2)])
    extra = (r["amplitude"] - r["correlation"]) * std_g
    assert side(pred, gt, mask) ** 2 == pytest.approx(r["side_scaled"] ** 2 + extra ** 2,
                                                      rel=1e-4)
    with pytest.raises(ValueError, match="positive"):
        relief(-pred, gt, mask)


def test_mad_hand_cases():
    n1 = torch.tensor([0.0, 0.0, -1.0]).expand(1, 1, 2, 3).clone()
    n2 = n1.clone()
    n2[0, 0, 1] = torch.tensor([math.sin(math.radians(30)), 0.0, -math.cos(math.radians(30))])
    mask = torch.ones(1, 1, 2)
    assert mad(n1, n2, mask).item() == pytest.approx(15.0, rel=1e-4)
    assert mad(n1, -n1, mask).item() == pytest.approx(180.0, rel=1e-4)
    assert mad(n1, 3 * n1, mask).item() == pytest.approx(0.0, abs=1e-2)  # lengths do not matter


def test_chamfer_hand_case():
    a = torch.tensor([[[0.0, 0.0, 0.0]]])
    b = torch.tensor([[[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]]])
    # A→B: 1; B→A: (1 + 3)/2 = 2
    assert chamfer(a, b).item() == pytest.approx(3.0)
    assert chamfer(b, b).item() == 0.0


def test_erode_square():
    m = torch.zeros(1, 7, 7)
    m[0, 1:6, 1:6] = 1
    e = erode(m)
    assert e.sum() == 9 and e[0, 2:5, 2:5].all()
    full = torch.ones(1, 1, 4, 4)
    assert erode(full).sum() == 4  # the image border counts as outside


def test_empty_mask_and_bad_shapes_raise():
    with pytest.raises(ValueError, match="empty"):
        side(torch.ones(1, 2, 2), torch.ones(1, 2, 2), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="same shape"):
        side(torch.ones(1, 2, 2), torch.ones(1, 3, 3), torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="B×H×W×3"):
        mad(torch.ones(1, 2, 2), torch.ones(1, 2, 2), torch.ones(1, 2, 2))


def test_protocol_on_synfaces_orders_trivial_baselines():
    """Perfect depth scores zero; a constant depth scores worse than the ground truth's own
    canonical shape would, and both errors are in plausible ranges."""
    world = SynFaces(64)
    b = world.sample(6, seed=3)
    r = world.renderer
    perfect = depth_errors(b["depth"], b["depth"], b["mask"], r)
    assert perfect["side"].max() < 1e-6 and perfect["mad"].max() < 0.05
    flat = torch.full_like(b["depth"], 1.0)
    null = depth_errors(flat, b["depth"], b["mask"], r)
    assert (null["side"] > 0.005).all() and (null["mad"] > 15).all()
