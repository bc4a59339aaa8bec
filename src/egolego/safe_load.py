"""One way to read a ``.pt``/``.pth`` file someone else made: ``torch.load(weights_only=True)``.

A pickle can call any function on load; torch's restricted unpickler resolves only tensors, storages and a
few plain containers, so a crafted file is refused instead of running code. Refusals (and truncated or
non-torch files) become one ``ValueError`` naming the file, which the CLI prints as one line.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError,
               KeyError, IndexError)


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_weights(path: str | Path, what: str = "weights"):
    """The object in ``path`` (tensors, dicts, lists), loaded on the CPU with no code from the file run."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as e:
        raise ValueError(f"{path}: not a loadable {what} file (torch's safe loader: {first_line(e)})") from None


def load_state(module: torch.nn.Module, state, path: str | Path, what: str) -> None:
    """``module.load_state_dict(state)``, a wrong file reported as one ``ValueError`` naming it."""
    try:
        module.load_state_dict(state)
    except LOAD_ERRORS as e:
        raise ValueError(f"{path}: not {what} weights ({first_line(e)})") from None
