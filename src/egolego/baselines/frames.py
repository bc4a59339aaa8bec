"""SDEdit and ProxNPI behind the interface ``egolego eval`` uses for LEGO models (``FrameGenerator``'s).

``BaselineGenerator(model, "sdedit" | "proxnpi")`` loads the fine-tuned text-to-image model once; ``batch`` edits a
batch of input frames with their labels, ``__call__`` one frame (the new-actions strip). Both read the action label
only (as InstructPix2Pix): they have no VLLM and no description. Steps and guidance default to the t2i model's own
(``lego_config.yaml``: ``ldm.steps``, ``ldm.condition_guidance``); ``strength`` (SDEdit) to the sweep's value.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..errors import InputError
from ..ldm.generate import model_ldm_settings
from . import BASELINES
from .proxnpi import ProxNPI, ProxSettings
from .sdedit import SDEdit, SdeditSettings
from .t2i import load_t2i


def _pixels(images: list[Image.Image], side: int) -> torch.Tensor:
    """PIL frames -> (b, 3, side, side) in [-1, 1]."""
    import numpy as np

    arr = np.stack([np.asarray(im.convert("RGB").resize((side, side), Image.LANCZOS), dtype=np.float32) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0


def _pil(x: torch.Tensor) -> list[Image.Image]:
    """(b, 3, H, W) in [-1, 1] -> PIL images."""
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


class BaselineGenerator:
    """A baseline on a t2i model folder, loaded once. ``mode`` is the baseline's name (eval.json's ``mode``)."""

    vllm_dir = None  # no VLLM: the prompt is the label

    def __init__(self, model: str | Path, baseline: str, device: str | None = None, steps: int | None = None,
                 condition_guidance: float | None = None, strength: float | None = None,
                 scheduler: str | None = None, image_guidance: float | None = None,
                 guidance_rescale: float | None = None, guidance_interval: tuple[float, float] | None = None,
                 keep_input: float | None = None, change_mask: bool | None = None):
        if baseline not in BASELINES:
            raise InputError("baseline", f"must be one of {', '.join(BASELINES)}, got {baseline!r}")
        for key, v, what in (("image_guidance", image_guidance, "image guidance"),
                             ("guidance_rescale", guidance_rescale, "guidance rescale"),
                             ("guidance_interval", guidance_interval, "guidance interval"),
                             ("keep_input", keep_input, "input-keeping composite"),
                             ("change_mask", change_mask, "learnt change mask")):
            if v is not None:
                raise InputError(key, f"SDEdit and ProxNPI have no {what} (only steps and a condition guidance)")
        if scheduler not in (None, "ddim"):
            raise InputError("scheduler", f"SDEdit and ProxNPI sample with ddim (ProxNPI inverts with it), got {scheduler!r}")
        if strength is not None and baseline != "sdedit":
            raise InputError("strength", f"is SDEdit's; baseline {baseline} does not read it")
        self.model, self.mode = Path(model), baseline
        # whether the noise seed changes the frame (``eval --draws``): ProxNPI starts from the input's DDIM inversion
        self.seeded = baseline != "proxnpi"
        self.pipe = load_t2i(model)
        if device:
            self.pipe.to(device)
        saved = model_ldm_settings(model)
        steps = steps or saved.get("steps")
        guidance = condition_guidance if condition_guidance is not None else saved.get("condition_guidance")
        kw = {**({"steps": int(steps)} if steps else {}),  # what neither says: the method's own settings' defaults
              **({"guidance": float(guidance)} if guidance is not None else {})}
        if baseline == "sdedit":
            self.method = SDEdit(self.pipe, SdeditSettings(**kw, **({"strength": strength} if strength else {})))
        else:
            self.method = ProxNPI(self.pipe, ProxSettings(**kw))
        self.sampling = self.method.s
        self.side = self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor

    def check_rows(self, rows: list[dict], store=None) -> None:
        """Every manifest row has its label, all a baseline reads: nothing to refuse (``FrameGenerator``'s)."""

    def batch(self, images: list[Image.Image], rows: list[dict], generators: list[torch.Generator],
              store=None) -> list[Image.Image]:
        """Edited frames at the model's square size, one per (image, manifest row: its label)."""
        return self.edit(images, [r["label"] for r in rows], generators)

    def edit(self, images: list[Image.Image], labels: list[str], generators: list[torch.Generator]) -> list[Image.Image]:
        """Edited frames at the model's square size, one per (image, label)."""
        x = _pixels(images, self.side).to(self.pipe.device)
        out = self.method(x, labels, generators) if self.mode == "sdedit" else self.method(x, labels)
        return _pil(out)

    def __call__(self, image: Image.Image, action: str, description: str | None = None, seed: int = 0,
                 size: int | None = None) -> tuple[Image.Image, str]:
        """(edited frame at the input's aspect ratio, the prompt) — ``FrameGenerator``'s signature."""
        out = self.edit([image], [action], [torch.Generator().manual_seed(seed)])[0]
        return out.resize(image.size, Image.BICUBIC), action
