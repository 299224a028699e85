"""Chapter 10's exercise checks accept the hand-worked answers and refuse wrong ones."""
import math

import pytest

from g2s_lite.exercises import check


@pytest.mark.parametrize("exercise, right, wrong", [
    ("10.1", 1 / 3 + 3, 3.0),  # 1/3 from X to Y, 9/3 back
    ("10.2", 1.0, 5 / 3),  # (0 + 0 + 3) / 3; the matching 1→5, 2→1 costs 5/3
    ("10.3", ([(0, 0), (0, 0), (1, 0)], [(0, 0), (1, 0), (1, 0)]),
     ([(0, 0), (1, 0)], [(0, 0), (1, 0)])),  # the same set: EMD 0 too
    ("10.4", math.sqrt(2) * 0.3, 0.3),
    ("10.5", math.degrees(math.asin(math.sin(math.radians(20)) / 1.5)), 20 * 1.5),
])
def test_checks_tell_right_from_wrong(exercise, right, wrong, capsys):
    assert check(exercise, right)
    assert not check(exercise, wrong)
    out = capsys.readouterr().out
    assert out.startswith("✓ right") and "✗ not yet" in out


def test_a_pair_with_a_nonzero_chamfer_is_refused_with_the_reason(capsys):
    assert not check("10.3", ([(0, 0)], [(1, 0)]))
    assert "Chamfer distance is 2" in capsys.readouterr().out
