"""What every chapter's checks share: comparing a student's number with the expected one."""
from __future__ import annotations

from typing import Any

import torch


def close(answer: Any, expected: float, what: str, rel: float = 0.02,
          abs_tol: float = 1e-6) -> tuple[bool, str]:
    """Whether ``answer`` is ``expected`` within ``rel`` (relative) or ``abs_tol``, and why."""
    try:
        value = float(torch.as_tensor(answer, dtype=torch.float64))
    except (TypeError, ValueError, RuntimeError):
        return False, f"{what} is one number; got {answer!r}"
    right = abs(value - expected) <= max(rel * abs(expected), abs_tol)
    return right, (f"{what} is {expected:.4g}" if right
                   else f"{what} is {expected:.4g}, not {value:.4g}")


def pair(answer: Any, expected: tuple[float, float], names: tuple[str, str],
         rel: float = 0.02, abs_tol: float = 1e-6) -> tuple[bool, str]:
    """Two numbers checked with :func:`close`, each with its name."""
    try:
        first, second = answer
    except (TypeError, ValueError):
        return False, f"the answer is two numbers ({names[0]}, {names[1]}); got {answer!r}"
    results = [close(a, e, n, rel, abs_tol) for a, e, n in zip((first, second), expected, names)]
    return all(ok for ok, _ in results), "; ".join(why for _, why in results)
