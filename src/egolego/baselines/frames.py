"""SDEdit and ProxNPI behind the interface ``egolego eval`` uses for LEGO models (``FrameGenerator``'s).

``BaselineGenerator(model, "sdedit" | "proxnpi")`` loads the fine-tuned text-to-image model once; ``batch`` edits a
batch of input frames with their labels, ``__call__`` one frame (the new-actions strip). Both read the action label
only (as InstructPix2Pix): they have no VLLM and no description. Steps and guidance default to the t2i model's own
(``lego_config.yaml``: ``ldm.steps``, ``ldm.condition_guidance``); ``strength`` (SDEdit) to the sweep's value.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..data.manifest import resolve
from ..errors import InputError
from ..ldm.generate import model_ldm_settings
from ..names import safe_name
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
                 scheduler: str | None = None, image_guidance: float | None = None):
        if baseline not in BASELINES:
            raise InputError("baseline", f"must be one of {', '.join(BASELINES)}, got {baseline!r}")
        if image_guidance is not None:
            raise InputError("image_guidance", "SDEdit and ProxNPI have no image guidance (only a condition guidance)")
        if scheduler not in (None, "ddim"):
            raise InputError("scheduler", f"SDEdit and ProxNPI sample with ddim (ProxNPI inverts with it), got {scheduler!r}")
        if strength is not None and baseline != "sdedit":
            raise InputError("strength", f"is SDEdit's; baseline {baseline} does not read it")
        self.model, self.mode = Path(model), baseline
        self.pipe = load_t2i(model)
        if device:
            self.pipe.to(device)
        saved = model_ldm_settings(model)
        kw = {"steps": int(steps or saved.get("steps", 20)),
              "guidance": float(condition_guidance if condition_guidance is not None
                                else saved.get("condition_guidance", 7.5))}
        if baseline == "sdedit":
            self.method = SDEdit(self.pipe, SdeditSettings(**kw, **({"strength": strength} if strength else {})))
        else:
            self.method = ProxNPI(self.pipe, ProxSettings(**kw))
        self.sampling = self.method.s
        self.side = self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor

    def batch(self, images: list[Image.Image], labels: list[str], generators: list[torch.Generator]) -> list[Image.Image]:
        """Edited frames at the model's square size, one per (image, label)."""
        x = _pixels(images, self.side).to(self.pipe.device)
        out = self.method(x, labels, generators) if self.mode == "sdedit" else self.method(x, labels)
        return _pil(out)

    def __call__(self, image: Image.Image, action: str, description: str | None = None, seed: int = 0,
                 size: int | None = None) -> tuple[Image.Image, str]:
        """(edited frame at the input's aspect ratio, the prompt) — ``FrameGenerator``'s signature."""
        out = self.batch([image], [action], [torch.Generator().manual_seed(seed)])[0]
        return out.resize(image.size, Image.BICUBIC), action


def write_baseline_set(gen: BaselineGenerator, pairs: Path, todo: list[dict], n_rows: int, img_dir: Path,
                       batch_size: int, seed: int, progress: bool, save) -> dict:
    """``generate_set`` for a baseline: ``img_dir/<pair_id>.png`` for the ``todo`` rows, per-pair seeds."""
    from ..eval.generate_set import hash_id

    bar = tqdm(total=len(todo), desc=f"generate ({gen.mode})", disable=not progress, unit="frame")
    for i in range(0, len(todo), batch_size):
        rows = todo[i:i + batch_size]
        squares = [Image.open(resolve(pairs, r["input_path"])).convert("RGB") for r in rows]
        gens = [torch.Generator().manual_seed(seed * 1_000_003 + hash_id(r["pair_id"])) for r in rows]
        for r, im in zip(rows, gen.batch(squares, [r["label"] for r in rows], gens)):
            save(im, img_dir / f"{safe_name(r['pair_id'])}.png")
        bar.update(len(rows))
    bar.close()
    return {"mode": gen.mode, "generated": len(todo), "reused": n_rows - len(todo), "sampling": asdict(gen.sampling)}
