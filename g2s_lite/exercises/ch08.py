"""Checks of Chapter 8's exercises (3D-aware editing). Each recomputes what is expected
its own way: by rendering, by rotating a vector by hand, or by reading the results file."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

#: Exercise 8.1: the albedo is scaled by this.
ALBEDO_SCALE = 0.5
#: Exercise 8.2: the view's yaw (degrees) and the light's direction in the image's frame.
YAW_82, LIGHT_82 = 30.0, (0.5, 0.0)


def scale_ambiguity(answer, rec) -> tuple[bool, str]:
    """8.1: the (ambient, diffuse) that give the same image when the albedo's brightness
    (albedo + 1)/2 is scaled by :data:`ALBEDO_SCALE`."""
    from ..render import Renderer

    try:
        a, b = (float(x) for x in answer)
    except (TypeError, ValueError):
        return False, "answer with two numbers: (ambient, diffuse)"
    bright = (rec.albedo + 1) / 2 * ALBEDO_SCALE
    light = torch.cat([torch.tensor([[a, b]]).to(rec.light), rec.light[:, 2:]], 1)
    image, _ = Renderer(rec.albedo.shape[-1]).render(rec.depth_canon, bright * 2 - 1, light,
                                                     rec.view)
    err = (image - rec.reconstruction).abs().max().item()
    want = (rec.light[0, 0].item() / ALBEDO_SCALE, rec.light[0, 1].item() / ALBEDO_SCALE)
    if err < 1e-4:
        return True, (f"with ({a:.3f}, {b:.3f}) the image is unchanged (largest difference "
                      f"{err:.1e}): only albedo × strengths is seen")
    return False, (f"the image changes by up to {err:.3f}; both strengths scale by "
                   f"1/{ALBEDO_SCALE:g}: ({want[0]:.3f}, {want[1]:.3f})")


def canonical_direction(answer) -> tuple[bool, str]:
    """8.2: the canonical (dx, dy) of the image-frame light :data:`LIGHT_82` for a view of
    :data:`YAW_82` degrees of yaw (a turn about y, worked out by hand here)."""
    try:
        dx, dy = (float(x) for x in answer)
    except (TypeError, ValueError):
        return False, "answer with two numbers: (dx, dy) in the canonical frame"
    t = math.radians(YAW_82)
    x, y, z = LIGHT_82[0], LIGHT_82[1], 1.0
    # Rᵀ of a turn by t about y is the turn by −t
    xc, zc = x * math.cos(t) - z * math.sin(t), x * math.sin(t) + z * math.cos(t)
    want = (xc / zc, y / zc)
    ok = abs(dx - want[0]) < 1e-3 and abs(dy - want[1]) < 1e-3
    return ok, (f"Rᵀ(0.5, 0, 1) = ({xc:.3f}, 0, {zc:.3f}), so (dx, dy) = ({want[0]:.3f}, "
                f"{want[1]:.3f})" + ("" if ok else f", not ({dx:.3f}, {dy:.3f})"))


def uncovered_share(answer, rec) -> tuple[bool, str]:
    """8.3: the share of the image that the mesh route leaves uncovered at +45° of yaw
    (no surface behind the pixel), recomputed by warping the canonical depth."""
    from ..edit import edit_view
    from ..render import Renderer

    r = Renderer(rec.depth_canon.shape[-1])
    view = edit_view(rec.view, 45.0)
    with torch.no_grad():
        covered = r.valid_mask(r.warp_depth(rec.depth_canon, view))
    want = 1 - covered.mean().item()
    try:
        got = float(answer)
    except (TypeError, ValueError):
        return False, "answer with one number in [0, 1]"
    ok = abs(got - want) < 2e-3
    return ok, f"{want:.1%} of the pixels have no surface behind them at +45°" + (
        "" if ok else f", not {got:.1%}")


def closest_at_30(answer, results: str | Path) -> tuple[bool, str]:
    """8.4: which method of the results file is nearest the truly turned face at ±30° of
    yaw (L1 on the true mask)."""
    summary = json.loads(Path(results).read_text())["summary"]["yaw±30"]
    l1 = {m: row["l1"] for m, row in summary.items() if isinstance(row, dict) and "l1" in row}
    best = min(l1, key=l1.get)
    ranking = ", ".join(f"{m} {v:.3f}" for m, v in sorted(l1.items(), key=lambda kv: kv[1]))
    return answer == best, f"the L1s at ±30° are {ranking}"


CHECKS = {"8.1": scale_ambiguity, "8.2": canonical_direction, "8.3": uncovered_share,
          "8.4": closest_at_30}
