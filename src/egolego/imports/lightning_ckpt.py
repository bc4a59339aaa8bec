"""Read a PyTorch-Lightning ``.ckpt`` downloaded from the internet, running none of its code.

A ``.ckpt`` is a pickle, and a pickle can call any function while it loads. ``torch.load(weights_only=True)``
resolves only tensors, storages and plain containers, and refuses everything else. A real Lightning 1.4
checkpoint (the release was trained with PL 1.4.2) also names one class: it keys the callback states by the
callback's *class* (``checkpoint["callbacks"][ModelCheckpoint] = {...}``). That name is allow-listed here as an
inert stand-in (``LightningName``): unpickling it creates nothing of Lightning's, and even a crafted file that
"calls" it only builds an empty object. Every other global is refused, and the refusal is one ``InputError``.

The file is memory-mapped where it can be, so the optimizer states of a training checkpoint are never read.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError, MissingInput
from ..safe_load import LOAD_ERRORS

# the globals a Lightning 1.4 checkpoint of the release may name (callback-state keys), and nothing else
LIGHTNING_NAMES = ("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
                   "pytorch_lightning.callbacks.early_stopping.EarlyStopping")


class LightningName:
    """An inert stand-in for a class a checkpoint names: constructing it or setting its state keeps nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _refusal(e: BaseException) -> str:
    """The informative line of torch's refusal (it names the global), else its first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    named = [ln for ln in lines if "GLOBAL" in ln]
    return (named or lines or [type(e).__name__])[0]


def load_lightning(path: str | Path, arg: str = "ldm") -> dict:
    """The checkpoint's object (a dict) on the CPU; ``arg`` names the flag in errors."""
    p = Path(path)
    if not p.is_file():
        raise MissingInput(arg, f"{p} is not a file")
    allow = [(LightningName, name) for name in LIGHTNING_NAMES]
    try:
        with torch.serialization.safe_globals(allow):
            try:
                obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):  # only a legacy (non-zip) file cannot be memory-mapped: read it whole
                    raise
                obj = torch.load(p, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as e:
        raise InputError(arg, f"{p}: refused by torch's safe loader ({_refusal(e)}); a checkpoint of the release "
                         "holds only tensors, plain values and Lightning's callback names") from None
    if not isinstance(obj, dict):
        raise InputError(arg, f"{p}: not a Lightning checkpoint (a {type(obj).__name__}, not a dict)")
    return obj


def state_dict_of(obj: dict, path: str | Path, arg: str = "ldm") -> dict[str, torch.Tensor]:
    """``obj["state_dict"]`` (or ``obj`` itself when it is already a bare state dict), every value a tensor."""
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, dict) or not sd:
        raise InputError(arg, f"{path}: holds no state_dict")
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor) or v.is_meta:
            what = "a tensor without data" if isinstance(v, torch.Tensor) else f"a {type(v).__name__}"
            raise InputError(arg, f"{path}: state_dict entry {k!r} is {what}, not a tensor")
    return sd
