"""Aggregation: bootstrap confidence intervals and the transition-time bins of App. C.1."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Mean and percentile-bootstrap interval of the mean; NaNs (a metric that failed on a pair) are dropped."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(1)
    a = (1 - level) / 2
    return {"mean": float(v.mean()), "lo": float(np.quantile(means, a)), "hi": float(np.quantile(means, 1 - a)),
            "n": int(len(v))}


def equal_count_bins(delta, n_bins: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(bin index per value, the n_bins + 1 edges): bins by rank, so counts differ by at most one even when
    many δ are equal (ties go by order); edge k is the smallest δ of bin k, the last edge the largest δ."""
    d = np.asarray(delta, dtype=np.float64)
    order = np.argsort(d, kind="stable")
    idx = np.empty(len(d), dtype=np.int64)
    idx[order] = np.arange(len(d)) * n_bins // max(len(d), 1)
    edges = np.array([d[idx == b].min() for b in range(n_bins)] + [d.max()])
    return idx, edges


def paired_bootstrap(a, b, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Mean of a − b over the same items, with a percentile-bootstrap interval that resamples items (pairs), so the
    two methods' per-pair correlation is kept; items where either value is NaN are dropped."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return bootstrap_ci(d, n_boot, level, seed)
