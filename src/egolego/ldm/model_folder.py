"""What makes a folder a LEGO model, checked in one place and light to import.

Why its own module: the commands that load a model (`generate`, `eval-timeline`, `train-mask`) import torch and
diffusers, seconds on a slow box; checking the folder before those imports answers a wrong path at once.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingInput


def lego_model_folder(model: str | Path) -> Path:
    """``model`` as a Path, if it holds a saved ``LegoPipeline`` (``model_index.json``); else ``MissingInput``."""
    d = Path(model)
    if not (d / "model_index.json").is_file():
        raise MissingInput("model", f"{d} is not a LEGO model folder (no model_index.json); "
                           "it is written by `egolego train` as <out>/model")
    return d
