"""Several noise draws per pair, merged into one score per pair.

Why: with a stochastic sampler (the tiny preset's ``flow_euler_a``, the paper's Euler-ancestral) each evaluated frame
is one draw of the model's distribution, so a 0/1 metric such as the action judge's is noisy per pair and a paired
comparison of two methods on ~400 pairs has intervals of about ±4 points. Scoring ``K`` draws per pair (noise seeds
``seed``, ``seed + 1`` …) and averaging each pair's values over them estimates each pair's expected score instead;
the pairs stay the unit the bootstrap resamples. Draw 0 is the ordinary run (``images/``); draw ``d`` writes
``draws/<d>/images/``, so a rerun with more draws reuses what is there.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def draw_dir(out: Path, d: int) -> Path:
    """The folder whose ``images/`` hold draw ``d`` (draw 0: the eval folder itself)."""
    return out if d == 0 else out / "draws" / str(d)


def is_numeric(values: list) -> bool:
    return bool(values) and all(isinstance(v, float) for v in values)


def merge_columns(draws: list[dict[str, list]]) -> dict[str, list]:
    """Per-pair columns of several draws → one: numeric columns averaged per pair (NaN where every draw is NaN),
    others (captions) taken from draw 0."""
    merged = {}
    for k, first in draws[0].items():
        if is_numeric(first) and all(is_numeric(d.get(k, [])) and len(d[k]) == len(first) for d in draws[1:]):
            stack = np.array([d[k] for d in draws], dtype=float)  # (K, N)
            ok = ~np.isnan(stack)
            with np.errstate(invalid="ignore"):
                mean = np.where(ok.any(0), np.nansum(stack, 0) / np.maximum(ok.sum(0), 1), math.nan)
            merged[k] = [float(v) for v in mean]
        else:
            merged[k] = first
    return merged


def merge_set_metrics(draws: list[dict[str, float]]) -> dict[str, float]:
    """Set-level numbers (FID, KID) of several draws: the mean of those every draw has."""
    keys = [k for k in draws[0] if all(k in d for d in draws)]
    return {k: float(np.mean([d[k] for d in draws])) for k in keys}


def per_draw_means(draws: list[dict[str, list]]) -> dict[str, list[float]]:
    """{metric: [mean over pairs of draw 0, of draw 1, …]}: how much the draws differ, for the record."""
    def mean(values: list[float]) -> float:
        kept = [v for v in values if not math.isnan(v)]
        return float(np.mean(kept)) if kept else math.nan

    return {k: [mean(d[k]) for d in draws] for k, v in draws[0].items()
            if is_numeric(v) and all(is_numeric(d.get(k, [])) for d in draws)}
