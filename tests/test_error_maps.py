"""Per-pixel error maps (metrics.depth_error_maps) against a pixel-by-pixel computation."""
import math

import pytest
import torch

from g2s_lite.metrics import depth_error_maps, depth_errors
from g2s_lite.synth import SynFaces

from conftest import smooth_depth


def _brute_force(pred, gt, gt_mask, valid, normals_pred, normals_gt):
    """One image, plain Python: the protocol mask (each mask eroded by one pixel, the image
    border counting as outside), |Δ − mean Δ| and the normal angle on it."""
    h, w = len(gt), len(gt[0])

    def inside(m, i, j):
        return all(0 <= i + di < h and 0 <= j + dj < w and m[i + di][j + dj] > 0.5
                   for di in (-1, 0, 1) for dj in (-1, 0, 1))

    mask = [[inside(gt_mask, i, j) and inside(valid, i, j) for j in range(w)] for i in range(h)]
    on = [(i, j) for i in range(h) for j in range(w) if mask[i][j]]
    delta = {(i, j): math.log(pred[i][j]) - math.log(gt[i][j]) for i, j in on}
    mean = sum(delta.values()) / len(on)
    side_map = [[math.nan] * w for _ in range(h)]
    angle_map = [[math.nan] * w for _ in range(h)]
    for i, j in on:
        side_map[i][j] = abs(delta[i, j] - mean)
        a, b = normals_pred[i][j], normals_gt[i][j]
        cos = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a)
                                                            * sum(y * y for y in b))
        angle_map[i][j] = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    return mask, side_map, angle_map


def test_error_maps_match_pixel_by_pixel_computation_and_the_summary_numbers():
    world = SynFaces(16)
    faces = world.sample(2, seed=5)
    r = world.renderer
    gt = faces["depth"]
    pred = (1.0 + 0.5 * (smooth_depth(2, 16, seed=1) - 1.0)) * 1.3  # scaled, smooth, positive
    valid = torch.ones(2, 1, 16, 16)
    valid[0, :, :, 11:] = 0                                           # a part not reconstructed
    maps = depth_error_maps(pred, gt, faces["mask"], r, pred_valid=valid)
    errors = depth_errors(pred, gt, faces["mask"], r, pred_valid=valid)
    assert maps["side"].shape == maps["angle"].shape == maps["mask"].shape == (2, 16, 16)
    for b in range(2):
        mask, side_map, angle_map = _brute_force(
            pred[b].double().tolist(), gt[b].double().tolist(), faces["mask"][b, 0].tolist(),
            valid[b, 0].tolist(), r.normals(pred[b:b + 1])[0].double().tolist(),
            r.normals(gt[b:b + 1])[0].double().tolist())
        assert (maps["mask"][b] > 0).tolist() == mask
        assert sum(map(sum, mask)) > 10
        torch.testing.assert_close(maps["side"][b], torch.tensor(side_map, dtype=torch.float32),
                                   equal_nan=True, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(maps["angle"][b], torch.tensor(angle_map, dtype=torch.float32),
                                   equal_nan=True, atol=2e-2, rtol=1e-3)
        # the summary numbers are the maps' root mean square and mean over the mask
        on = maps["mask"][b] > 0
        assert maps["side"][b][~on].isnan().all() and maps["angle"][b][~on].isnan().all()
        assert maps["side"][b][on].pow(2).mean().sqrt().item() == pytest.approx(
            errors["side"][b].item(), rel=1e-5)
        assert maps["angle"][b][on].mean().item() == pytest.approx(errors["mad"][b].item(),
                                                                   rel=1e-5)
    assert not (maps["mask"][0][:, 10:] > 0).any()                   # the invalid part is out


def test_error_maps_of_the_truth_are_zero_and_a_global_scale_is_free():
    faces = SynFaces(16).sample(1, seed=2)
    r = SynFaces(16).renderer
    for scale in (1.0, 1.1):
        maps = depth_error_maps(scale * faces["depth"], faces["depth"], faces["mask"], r,
                                pred_valid=torch.ones(1, 1, 16, 16))
        assert maps["side"].nan_to_num(0).abs().max() < 1e-5
        assert maps["angle"].nan_to_num(0).max() < 0.5              # acos near 1 is coarse
