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
    """(bin index per value, the n_bins + 1 edges): thresholds at quantiles, so bins hold ~equal counts."""
    d = np.asarray(delta, dtype=np.float64)
    edges = np.quantile(d, np.linspace(0, 1, n_bins + 1))
    idx = np.clip(np.searchsorted(edges[1:-1], d, side="right"), 0, n_bins - 1)
    return idx, edges
