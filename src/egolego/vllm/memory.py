"""How the VLLM is held in memory: precision tiers, chosen before loading so a model that cannot fit is refused in
one line instead of crashing mid-way.

The released LEGO VLLM is LLaMA-2-13B: 13.3 B parameters are 53 GB in float32 and 27 GB in bfloat16 / float16,
more than a 24 GB laptop holds; in 4-bit (bitsandbytes NF4, as the release's own builder offers) ~7.5 GB on a GPU.
Tiers: ``float32`` (CPU default while it fits), ``bfloat16`` (CPU, AVX512-BF16 / AMX make it fast), ``float16`` (GPU
default), ``4bit`` (GPU with bitsandbytes). ``auto`` takes the first that fits where the model runs.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ..errors import InputError  # torch is imported where used: the CLI reads PRECISIONS for --help

PRECISIONS = ("auto", "float32", "bfloat16", "float16", "4bit")
BYTES_PER_PARAM = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "4bit": 0.56}  # NF4 + per-block scales
HEADROOM = 1.15  # activations, the KV cache of a 1,024-token answer, allocator slack


def parameter_count(folder: str | Path) -> int:
    """Parameters stored in a transformers folder, read from the safetensors headers (no tensor is loaded)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise InputError("vllm", f"{folder} holds no .safetensors weights to size the VLLM by")
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, meta in header.items():
            if name != "__metadata__":
                count = 1
                for s in meta["shape"]:
                    count *= s
                n += count
    return n


def available_bytes(device: str) -> int:
    """Free memory where the model will run: the GPU's free memory, else the system's MemAvailable."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def needed_bytes(params: int, precision: str) -> float:
    return params * BYTES_PER_PARAM[precision] * HEADROOM


def _has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def choose_precision(folder: str | Path, device: str, requested: str = "auto", free: int | None = None) -> str:
    """The precision to load the VLLM in, or an ``InputError`` saying in one line why it cannot run here."""
    if requested not in PRECISIONS:
        raise InputError("vllm_precision", f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    gpu = device.startswith("cuda")
    if requested == "4bit" and not (gpu and _has_bitsandbytes()):
        raise InputError("vllm_precision", "4bit needs a GPU (--device cuda) and the bitsandbytes package")
    if requested == "float16" and not gpu:
        raise InputError("vllm_precision", "float16 is for GPUs; on a CPU use bfloat16 (half the memory of float32)")
    params = parameter_count(folder)
    free = available_bytes(device) if free is None else free
    if requested != "auto":
        tiers = [requested]
    else:
        tiers = ["float16", "4bit"] if gpu else ["float32", "bfloat16"]
        tiers = [t for t in tiers if t != "4bit" or _has_bitsandbytes()]
    for t in tiers:
        if needed_bytes(params, t) <= free:
            return t
    t = tiers[-1]
    hint = ("run it on a GPU (--device cuda: float16, or 4bit with bitsandbytes), or score the released features "
            "with `egolego eval` instead" if not gpu else "try --vllm-precision 4bit (bitsandbytes) or a larger GPU")
    raise InputError("vllm_precision", f"the VLLM in {folder} ({params / 1e9:.1f} B parameters) needs "
                     f"~{needed_bytes(params, t) / 2**30:.1f} GiB in {t}, but {device} has "
                     f"{free / 2**30:.1f} GiB free: {hint}")


def load_vllm(folder: str | Path, device: str = "cpu", precision: str = "auto"):
    """(model, processor) in eval mode on ``device``, in the first precision tier that fits (refused before loading
    when none does): how ``generate``, ``eval`` and the web app load a model's VLLM."""
    from .model import load_llava

    tier = choose_precision(folder, device, precision)
    model, proc = load_llava(folder, **load_options(tier, device))
    if tier != "4bit":  # a quantised model is placed by its device map
        model.to(device)
    return model.eval(), proc


def load_options(precision: str, device: str) -> dict:
    """``from_pretrained`` keyword arguments for a precision tier."""
    import torch

    if precision == "4bit":
        from transformers import BitsAndBytesConfig

        return {"dtype": torch.float16, "device_map": {"": device},
                "quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16,
                                                          bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)}
    return {"dtype": getattr(torch, precision)}
