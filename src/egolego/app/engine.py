"""The models behind ``egolego serve``, loaded once: the LEGO pipeline (``ldm.generate.load_pipeline``) and, when
the model folder holds one, its tuned VLLM.

``generate`` follows ``ldm.generate.generate_one`` step for step (same resize, same VLLM prompt, same pipeline
call), but keeps the models in memory and lets the person edit the description first: in the modes that use
H_t, the edited text is embedded by the same teacher-forced pass that embeds the VLLM's own description. With
the description left as the VLLM wrote it, the frame equals ``generate_one``'s (tests/app/test_engine.py).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch
from PIL import Image

from ..errors import InputError
from ..ldm.clip_file import strip
from ..ldm.components import takes_progress
from ..ldm.generate import clip_progress, load_pipeline, sample_clip, sampling_for
from ..ldm.modes import mode_uses
from ..ldm.vllm_link import missing_vllm_hint, refuse_other_vllm, vllm_folder


def _devnull():
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - one handle for the process
    return _DEVNULL


_DEVNULL = None


class Engine:
    def __init__(self, model: str | Path, vllm_precision: str = "auto"):
        self.model_dir = Path(model)
        self.pipe = load_pipeline(self.model_dir)
        self.sampling = sampling_for(self.model_dir, self.pipe)  # the model's own steps, sampler, guidance
        self.mode = self.pipe.conditioner.config.mode
        self.use_img, self.use_txt = mode_uses(self.mode)
        self.side = self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor
        self.vllm = None
        self.vllm_dir = vllm_folder(self.model_dir)
        if self.mode != "label" and self.vllm_dir is not None:
            from ..vllm.memory import load_vllm
            from ..vllm.settings import load_settings

            refuse_other_vllm(self.model_dir, self.vllm_dir)  # the VLLM that wrote the training embeddings, by its files
            self.vllm = load_vllm(self.vllm_dir, precision=vllm_precision)  # refused in one line if it cannot fit
            self.vllm_settings = load_settings(self.vllm_dir)  # its template and token budget, as `generate`'s
        elif self.use_img or self.use_txt:
            raise InputError("model", f"this model's mode {self.mode!r} needs VLLM embeddings, but "
                             f"{missing_vllm_hint(self.model_dir)}")
        self.lock = threading.Lock()  # one sampling at a time: the pipeline and its scheduler are stateful

    @property
    def needs_description(self) -> bool:
        return self.mode != "label"

    def square(self, image: Image.Image) -> Image.Image:
        return image.convert("RGB").resize((self.side, self.side), Image.LANCZOS)

    def describe(self, image: Image.Image, action: str) -> str:
        """The tuned VLLM's description ("" without a VLLM; the label itself in `label` mode)."""
        if self.mode == "label":
            return action
        if self.vllm is None:
            return ""
        from ..vllm.enrich import describe

        with self.lock, torch.no_grad():
            return describe(self.vllm, self.vllm_settings, self.square(image), action)

    def _embeddings(self, square: Image.Image, action: str, description: str) -> dict:
        """H_i, H_t of ``description`` (the VLLM's or the person's edit) by ``egolego generate``'s own pass."""
        from ..vllm.enrich import describe_and_embed

        return describe_and_embed(self.vllm_dir, square, action, rows=self.pipe.conditioner.config.text_tokens,
                                  description=description, loaded=self.vllm)[1]

    def generate(self, image: Image.Image, action: str, description: str | None = None, steps: int | None = None,
                 seed: int = 0, condition_guidance: float | None = None, image_guidance: float | None = None,
                 scheduler: str | None = None, progress=None, frames: int = 1) -> tuple[Image.Image, str]:
        """(action frame at the input's aspect ratio, the text it was conditioned on); sampling settings left at None
        are the model's own (``sampling_for``). ``frames`` > 1 (a model trained with ``ldm.progress``): the input and
        the action at progress 1/K … 1 side by side, as ``egolego generate --frames K --out strip.png`` writes it."""
        s = self.sampling.override(steps=steps, condition_guidance=condition_guidance, image_guidance=image_guidance,
                                   scheduler=scheduler)
        action = action.strip()
        if not action:
            raise ValueError("type an action, e.g. “open drawer”")
        square = self.square(image)
        if self.mode == "label":
            prompt = action
        else:
            prompt = (description or "").strip() or self.describe(image, action)
            if not prompt:
                raise ValueError(f"mode {self.mode!r} needs a description: this model has no VLLM, so type one")
        with self.lock, torch.no_grad():
            emb = self._embeddings(square, action, prompt) if self.vllm is not None and (self.use_img or self.use_txt) else {}
            self.pipe.use_scheduler(s.scheduler)
            if progress is not None:  # gradio's track_tqdm follows the pipeline's own bar, written nowhere
                self.pipe.set_progress_bar_config(disable=False, file=_devnull())
            try:
                outs = sample_clip(self.pipe, square, prompt, clip_progress(frames), int(seed), image.size,
                                   s.pipe_kwargs(), emb, bar=progress is not None, clip_start=s.clip_start)
            finally:
                self.pipe.set_progress_bar_config(disable=True)
        return (outs[0] if frames == 1 else strip([image.convert("RGB").resize(outs[0].size), *outs])), prompt

    @property
    def takes_progress(self) -> bool:
        """Whether the model draws the action part-way (trained with ``ldm.progress``): the app then offers clips."""
        return takes_progress(self.pipe.unet)
