"""Chapter 7's checked exercises (the benchmark), recomputed from the committed per-face
numbers and depth maps of ``synface64_joint.json`` by plain arithmetic, not with
``benchmark``'s code."""
from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import torch

from ._common import Draw, Exercise, judge_number, judge_numbers

#: Rows of the joint file a student's seed picks from (every one covers all 50 faces).
METHODS = ("g2s_joint", "g2s_pretrained_nosym", "ellipsoid_prior", "mean_gt_depth",
           "supervised", "g2s_pretrained_prior_weak", "g2s_pretrained_prior_flat",
           "g2s_pretrained_prior_asymmetric", "g2s_pretrained_prior_shift6",
           "g2s_pretrained_prior_shift4")
#: Exercise 7.4's paired differences (first row − second row).
PAIRS = (("g2s_pretrained_nosym", "g2s_joint"),
         ("g2s_pretrained_prior_flat", "g2s_joint"),
         ("g2s_pretrained_prior_weak", "g2s_joint"),
         ("g2s_pretrained_prior_asymmetric", "g2s_joint"),
         ("g2s_pretrained_prior_shift6", "g2s_joint"),
         ("ellipsoid_prior", "g2s_joint"),
         ("g2s_joint", "supervised"))
#: How many consecutive faces a student's seed takes (all 50 for the book's example).
FACES = 30
METRICS = ("side", "mad")


@lru_cache(maxsize=1)
def _images() -> dict:
    from ..results import committed
    return json.loads(committed("synface64_joint.json").read_text())["images"]


def _column(method: str, metric: str, faces: range) -> list[float]:
    images = _images()
    return [images[str(i)][method][metric] for i in faces]


def _faces(draw: Draw) -> dict:
    n = len(_images())
    first = draw.integer(0, n - FACES, book=0)
    return {"first": first, "last": n - 1 if draw.book else first + FACES - 1}


def _span(p: dict) -> range:
    return range(p["first"], p["last"] + 1)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


# ----------------------------------------------------------------------------- 7.1
def _ratio_params(draw: Draw) -> dict:
    return {"method": draw.choice(METHODS, book="g2s_joint"),
            "metric": draw.choice(METRICS, book="side"), **_faces(draw)}


def _ratio(p: dict, *, metric: str | None = None, faces: range | None = None) -> float:
    """The method's mean over the faces divided by null_depth's on the same faces."""
    metric, faces = metric or p["metric"], faces or _span(p)
    return (_mean(_column(p["method"], metric, faces))
            / _mean(_column("null_depth", metric, faces)))


def _judge_ratio(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    other = METRICS[1 - METRICS.index(p["metric"])]
    return judge_number(
        answer, want, "the ratio", rel=0.005,
        hint="average the per-face numbers of images[i][method] over your faces only, then "
             "divide",
        mistakes=[(1 / want, "that is null_depth's mean over the method's: put the method on "
                             "top"),
                  (_ratio(p, metric=other), f"that is the ratio in {other.upper()}, not in "
                                     f"{p['metric'].upper()}"),
                  (_ratio(p, faces=range(len(_images()))),
                   f"that averages all faces; take only faces {p['first']} to {p['last']}")])


# ----------------------------------------------------------------------------- 7.2
def _null_params(draw: Draw) -> dict:
    return {"face": draw.integer(1, 199, book=0)}


def _null_side(p: dict) -> float:
    """The null depth's SIDE (×10⁻²) through the metrics' own code (the student computes the
    standard deviation of the log true depth by hand)."""
    from .. import metrics
    from ..synth import SynFaces
    world = SynFaces(64)
    face = world.sample(1, seed=0, start=p["face"])
    # a constant in the renderer's valid range (SIDE cannot see which one)
    errors = metrics.depth_errors(torch.ones(1, 64, 64), face["depth"], face["mask"],
                                  world.renderer)
    return 100 * errors["side"].item()


def _judge_null(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, "the null SIDE ×10⁻²", rel=0.01,
        hint="the standard deviation (divide by n) of log d_gt over M, the product of both "
             "eroded masks, as metrics.depth_errors builds it",
        mistakes=[(want / 100, "SIDE is reported ×10⁻²: multiply by 100")])


# ----------------------------------------------------------------------------- 7.3
def _correlation_params(draw: Draw) -> dict:
    return {"method": draw.choice(METHODS[:7], book="g2s_joint"),
            "metric": draw.choice(METRICS, book="side"),
            "angle": draw.choice(("yaw", "pitch"), book="yaw")}


@lru_cache(maxsize=1)
def _held_out() -> dict:
    """The held-out faces the joint file scores (``world.sample``'s dict, 50 faces)."""
    from ..benchmark import BENCHMARK_SEED
    from ..synth import SynFaces
    return SynFaces(64).sample(len(_images()), seed=BENCHMARK_SEED)


def _held_out_views() -> torch.Tensor:
    """The true views ``50×6`` of the held-out faces."""
    return _held_out()["view"].double()


def _correlation(p: dict, *, absolute: bool = True) -> float:
    """Pearson's correlation over the 50 faces of the metric with |angle| (radians)."""
    angle = _held_out_views()[:, ("pitch", "yaw").index(p["angle"])]
    x = angle.abs() if absolute else angle
    y = torch.tensor(_column(p["method"], p["metric"], range(len(_images()))),
                     dtype=torch.float64)
    x, y = x - x.mean(), y - y.mean()
    return ((x * y).sum() / (x.norm() * y.norm())).item()


def _judge_correlation(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    return judge_number(
        answer, want, "the correlation", rel=0.02, abs_tol=0.01,
        hint=f"correlate the per-face {p['metric'].upper()} of {p['method']} with the "
             f"absolute true {p['angle']} of the same faces, in the file's order",
        mistakes=[(_correlation(p, absolute=False), f"take the absolute {p['angle']}: a turn "
                                                    "either way is a turn")])


# ----------------------------------------------------------------------------- 7.4
def _gap_params(draw: Draw) -> dict:
    first, second = draw.choice(PAIRS, book=PAIRS[0])
    return {"first": first, "second": second, "metric": draw.choice(METRICS, book="side"),
            **{f"face_{k}": v for k, v in _faces(draw).items()}}


def _gap(p: dict, *, ddof: int = 1) -> tuple[float, float]:
    """The mean face-by-face difference and its standard error (sample s.d. ÷ √n)."""
    faces = range(p["face_first"], p["face_last"] + 1)
    diff = [a - b for a, b in zip(_column(p["first"], p["metric"], faces),
                                  _column(p["second"], p["metric"], faces))]
    n, mean = len(diff), _mean(diff)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - ddof))
    return mean, sd / math.sqrt(n)


def _judge_gap(answer: Any, want: tuple[float, float], p: dict) -> tuple[bool, str]:
    mean, se = want
    n = p["face_last"] - p["face_first"] + 1
    return judge_numbers(
        answer, want, ("the mean difference", "its standard error"), rel=0.01,
        hints=(f"subtract {p['second']} from {p['first']} face by face, on your faces only",
               "the sample standard deviation (n − 1) of the differences, divided by √n"),
        mistakes=[((-mean, se), f"the difference is {p['first']} − {p['second']}"),
                  ((mean, se * math.sqrt(n)), "that is the standard deviation: the standard "
                                              "error divides it by √n"),
                  ((mean, _gap(p, ddof=0)[1]), "the standard error uses the sample standard "
                                               "deviation (divide by n − 1)")])


# ----------------------------------------------------------------------------- 7.7
#: Exercise 7.7's rows: learned rows whose depth maps the joint file keeps.
RELIEF_METHODS = ("g2s_joint", "supervised", "g2s_pretrained_prior_weak",
                  "g2s_pretrained_nosym", "pretrained_start")


def _relief_params(draw: Draw) -> dict:
    return {"method": draw.choice(RELIEF_METHODS, book="g2s_joint"),
            "face": draw.integer(0, len(_images()) - 1, book=0)}


@lru_cache(maxsize=1)
def _depths() -> dict:
    from ..results import committed
    return torch.load(committed("synface64_joint.depths.pt"), weights_only=True)


def _log_reliefs(p: dict, log: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """p and g: the stored and true (log) depths on the protocol's mask, less their means."""
    from .. import metrics
    from ..results import unkept
    from ..synth import SynFaces
    faces, i = _held_out(), p["face"]
    depth, valid = unkept(_depths()[str(i)][p["method"]])
    on = metrics.protocol_mask(depth, faces["mask"][i:i + 1], SynFaces(64).renderer,
                               valid)[0] > 0
    pred, true = depth[0][on].double(), faces["depth"][i].double()[on]
    if log:
        pred, true = pred.log(), true.log()
    return pred - pred.mean(), true - true.mean()


def _along(p: dict, *, log: bool = True) -> float:
    """β: the least-squares slope of p on g (the student derives it as η·ρ)."""
    pred, true = _log_reliefs(p, log)
    return ((pred * true).sum() / (true * true).sum()).item()


def _judge_along(answer: Any, want: float, p: dict) -> tuple[bool, str]:
    pred, true = _log_reliefs(p)
    amplitude = (pred.norm() / true.norm()).item()
    correlation = ((pred * true).sum() / (pred.norm() * true.norm())).item()
    return judge_number(
        answer, want, "β", rel=0.005,
        hint="on the protocol's mask, β = Σ p·g / Σ g² with p and g the log depths less "
             "their means (or the depth ratio η times the correlation ρ)",
        mistakes=[(amplitude, "that is the depth ratio η alone: multiply by the correlation"),
                  (correlation, "that is the correlation ρ alone: multiply by the depth "
                                "ratio η"),
                  (correlation / amplitude, "that is the slope of g on p: regress the "
                                            "prediction on the truth"),
                  (_along(p, log=False), "take the log of both depths first")])


EXERCISES = {
    "7.1": Exercise(
        params=_ratio_params,
        statement="in synface64_joint.json, the mean {metric} of {method} over faces {first} "
                  "to {last}, divided by null_depth's mean over the same faces: give the "
                  "ratio.",
        expected=_ratio, judge=_judge_ratio),
    "7.2": Exercise(
        params=_null_params,
        statement="face {face} of SynFaces(64) seed 0 (world.sample(1, seed=0, start={face})):"
                  " give the SIDE (×10⁻²) of a constant depth, computed by hand.",
        expected=_null_side, judge=_judge_null),
    "7.3": Exercise(
        params=_correlation_params,
        statement="over the 50 held-out faces, give the correlation of {method}'s per-face "
                  "{metric} with the face's absolute true {angle}.",
        expected=_correlation, judge=_judge_correlation),
    "7.4": Exercise(
        params=_gap_params,
        statement="over faces {face_first} to {face_last}, the face-by-face difference "
                  "{first} − {second} in {metric}: give its mean and the standard error of "
                  "the mean.",
        expected=_gap, judge=_judge_gap),
    "7.7": Exercise(
        params=_relief_params,
        statement="held-out face {face}, the depth map of {method} stored in "
                  "synface64_joint.depths.pt: give β, the depth of its relief along the true "
                  "one, computed by hand on the protocol's mask.",
        expected=_along, judge=_judge_along),
}
