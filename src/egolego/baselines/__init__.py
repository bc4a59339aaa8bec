"""The paper's two inversion / noising baselines (§4.2, Tab. 1–2) on a text-to-image LDM fine-tuned on the frames.

``t2i``: the text-to-image model (``egolego train --conditioning t2i``), saved as a diffusers
``StableDiffusionPipeline`` folder. ``sdedit``: SDEdit through diffusers' ``StableDiffusionImg2ImgPipeline``.
``proxnpi``: negative-prompt inversion + proximal guidance (``inversion``, ``proxnpi``) with Prompt-to-Prompt
attention control (``p2p``). ``frames``: both behind one interface for ``egolego eval``.
(InstructPix2Pix, the third baseline, is the ``label`` mode of ``egolego.ldm``.)
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

BASELINES = ("proxnpi", "sdedit")  # the paper's column order: ProxNPI, SDEdit, IP2P, LEGO
DISPLAY = {"proxnpi": "ProxNPI", "sdedit": "SDEdit"}
T2I_PIPELINE = "StableDiffusionPipeline"  # what `egolego train --conditioning t2i` saves


def model_kind(model: str | Path) -> str:
    """The pipeline class a model folder holds ("" when it is not a readable diffusers folder)."""
    try:
        return str(json.loads((Path(model) / "model_index.json").read_text()).get("_class_name", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def check_model_kind(model: str | Path, baseline: str | None, arg: str = "model") -> None:
    """A baseline needs a text-to-image model folder; a text-to-image model folder is only evaluated as a baseline."""
    kind = model_kind(model)
    if baseline and kind != T2I_PIPELINE:
        found = f"a {kind} folder" if kind else "no diffusers model (no readable model_index.json)"
        raise InputError(arg, f"baseline {baseline} needs a text-to-image model (`egolego train --conditioning t2i`, "
                         f"<out>/model); {model} holds {found}")
    if not baseline and kind == T2I_PIPELINE:
        raise InputError(arg, f"{model} is a text-to-image model (`egolego train --conditioning t2i`): it is "
                         f"evaluated through a baseline, {' or '.join(BASELINES)}")
