"""Fréchet distance and kernel inception distance on any features (paper §4.1: FID).

``frechet_distance`` is Heusel et al.'s closed form between two Gaussians,
‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}); the trace of the square root is taken from the eigenvalues of Σ₁Σ₂
(real and non-negative for two PSD matrices), so scipy is not needed. ``kid`` is Bińkowski et al.'s unbiased
MMD² with the cubic polynomial kernel, averaged over random subsets. Both work with any feature extractor: the
Inception pool features (``inception.py``) for numbers comparable with papers, or an offline one.
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD² over ``subsets`` random subsets (the whole sets when smaller)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    k = min(subset_size, len(real), len(fake))
    if k < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    vals = [_mmd2_unbiased(real[rng.choice(len(real), k, replace=False)], fake[rng.choice(len(fake), k, replace=False)])
            for _ in range(subsets)]
    return float(np.mean(vals)), float(np.std(vals))
