"""AdamW and EMA with their one-kernel update paths.

PyTorch's AdamW takes its per-parameter Python loop on the CPU unless asked otherwise, and diffusers' ``EMAModel``
does the same unless ``foreach``. For the tiny models every update touches hundreds of small tensors, so the loop
costs about a tenth of a training step on the 2-core dev box (``benchmarks/bench_optim.py``). The fused AdamW
and the foreach EMA compute the same update.
"""

from __future__ import annotations

import torch
from diffusers.training_utils import EMAModel


def adamw(params, lr: float, **kwargs) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` with ``fused=True`` where the parameters' device has the fused kernel (CPU, CUDA),
    the plain one elsewhere."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, fused=True, **kwargs)
    except RuntimeError:  # a device without the fused kernel
        return torch.optim.AdamW(params, lr=lr, **kwargs)


def ema(params, decay: float) -> EMAModel:
    """diffusers' ``EMAModel`` updating all shadows with foreach ops."""
    return EMAModel(list(params), decay=decay, foreach=True)
