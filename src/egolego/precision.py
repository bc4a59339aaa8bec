"""Mixed precision for training: the ``auto`` setting, and one accelerate state per stage in one process.

``auto`` asks for bf16 where the device computes it natively (a CUDA GPU that supports bf16; a CPU whose flags
say AVX512-BF16 or AMX-BF16), and full precision elsewhere: bf16 autocast emulated in software would be slower.
On the project's 2-core Xeon (AVX512-BF16) it trains the tiny UNet 1.4x faster at the same action accuracy
(benchmarks/RESULTS.md, 2026-11-29 ψ and bf16 study).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState

CHOICES = ("no", "fp16", "bf16", "auto")


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True where /proc/cpuinfo lists avx512_bf16 or amx_bf16 (Linux); False where it cannot tell."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve(value: str) -> str:
    """``no`` / ``fp16`` / ``bf16`` as given; ``auto`` -> ``bf16`` on a device that runs it natively, else ``no``."""
    if value not in CHOICES:
        raise ValueError(f"mixed precision must be one of {', '.join(CHOICES)}, got {value!r}")
    if value != "auto":
        return value
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_has_bf16() else "no"


def accelerator(mixed_precision: str, grad_accum: int) -> Accelerator:
    """An ``Accelerator`` with the resolved precision.

    accelerate keeps one state per process and refuses a second precision. ``egolego demo`` / ``reproduce`` run
    their stages in one process (the VLLM in fp32, the tiny LDM in bf16 on this CPU), so a single-process run
    starts a stage with another precision from a fresh state; several processes (``accelerate launch``) run
    one stage each and keep theirs.
    """
    precision = resolve(mixed_precision)
    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") not in (None, precision) and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=precision, gradient_accumulation_steps=grad_accum)
