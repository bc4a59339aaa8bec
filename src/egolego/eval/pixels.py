"""The pure pixel metrics, PSNR and SSIM, on [0, 1] images (paper §4.1).

Both take (B, 3, H, W) float tensors in [0, 1] and return one value per image. SSIM is Wang et al.'s: an 11-tap
Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, averaged over channels and *valid* positions, as in Wang et
al.'s MATLAB code and scikit-image. (torchmetrics 1.9 also averages the reflect-padded border, which gives
slightly different numbers; the tests compare with its SSIM map cropped to the valid positions.)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def to_unit(images: list[Image.Image], size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL images -> (B, 3, H, W) float in [0, 1]; resized (bicubic) to ``size`` = (W, H) when given."""
    arrs = []
    for im in images:
        im = im.convert("RGB")
        if size is not None and im.size != size:
            im = im.resize(size, Image.BICUBIC)
        arrs.append(np.asarray(im, dtype=np.float32) / 255.0)
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) dB with data range 1; identical images give +inf capped at 100 dB."""
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)  # (B,)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).float()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(B,) structural similarity of two (B, C, H, W) batches in [0, 1]."""
    return ssim_map(a, b, window, sigma).flatten(1).mean(1).float()


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(B, C, H - window + 1, W - window + 1) float64: SSIM at every valid window position (``eval.regions``
    averages it over a part of the frame)."""
    if min(a.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {tuple(a.shape[-2:])}")
    c = a.shape[1]
    w = _gaussian_window(window, sigma).to(torch.float64).expand(c, 1, window, window)
    x, y = a.double(), b.double()
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)  # (B, C, H', W')
    sxx = F.conv2d(x * x, w, groups=c) - mu_x ** 2
    syy = F.conv2d(y * y, w, groups=c) - mu_y ** 2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
