"""Single-image inference: ``egolego generate --model DIR --image IMG --action "open drawer" --out OUT.png``.

A model folder samples the way it was trained: its ``lego_config.yaml`` holds the sampler, the step count and
both guidance scales (``ldm.scheduler``, ``ldm.steps``, ``ldm.condition_guidance``, ``ldm.image_guidance``); a
flag overrides each. With the model's tuned VLLM (``ldm/vllm_link.py``: the one that wrote its training
embeddings, or a copy in ``<model>/vllm``) the VLLM writes the description — or embeds the one given with
``--description`` — and the embeddings; without one, the modes that need no embeddings (``label``, ``desc``)
run on the label or on ``--description``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import yaml
from PIL import Image

from ..config import LdmConfig
from ..errors import InputError, MissingInput
from ..safe_load import first_line
from .modes import mode_text, needs_embeddings, text_key
from .pipeline import LegoPipeline
from .vllm_link import missing_vllm_hint, recorded_vllm, vllm_folder


@dataclass(frozen=True)
class Sampling:
    """How to sample: the model's own settings, each overridable."""

    steps: int
    scheduler: str
    condition_guidance: float
    image_guidance: float

    def override(self, **values) -> Sampling:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def model_ldm_settings(model: str | Path) -> dict:
    """The ``ldm`` section of the model's saved config ({} for a folder without one)."""
    f = Path(model) / "lego_config.yaml"
    data = yaml.safe_load(f.read_text()) if f.is_file() else None
    return (data or {}).get("ldm") or {}


def sampling_for(model: str | Path, pipe: LegoPipeline | None = None, **overrides) -> Sampling:
    """The model's sampling settings (paper defaults for a folder without a config), then ``overrides``."""
    saved, paper = model_ldm_settings(model), LdmConfig()
    scheduler = saved.get("scheduler") or ("flow_euler" if pipe is not None and pipe.is_flow else paper.scheduler)
    s = Sampling(int(saved.get("steps", paper.steps)), scheduler,
                 float(saved.get("condition_guidance", paper.condition_guidance)),
                 float(saved.get("image_guidance", paper.image_guidance)))
    s = s.override(**overrides)
    if s.steps < 1:
        raise InputError("steps", f"must be at least 1, got {s.steps}")
    return s


def open_image(path: str | Path) -> Image.Image:
    p = Path(path)
    if not p.is_file():
        raise MissingInput("image", f"{p} does not exist")
    try:
        im = Image.open(p)
        im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise InputError("image", f"{p} is not a readable image ({e})") from None
    return im.convert("RGB")


def load_pipeline(model: str | Path) -> LegoPipeline:
    d = Path(model)
    if not (d / "model_index.json").is_file():
        raise MissingInput("model", f"{d} is not a LEGO model folder (no model_index.json); "
                           "it is written by `egolego train` as <out>/model")
    from ..hf_quiet import quiet_loading

    try:
        with quiet_loading():
            pipe = LegoPipeline.from_pretrained(str(d), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:  # a broken or foreign folder
        raise InputError("model", f"{d} is not a loadable LEGO model ({first_line(e)})") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


class FrameGenerator:
    """A model loaded once (pipeline, and its VLLM when the mode or a missing description needs it)."""

    def __init__(self, model: str | Path, device: str | None = None, **sampling):
        self.model = Path(model)
        self.pipe = load_pipeline(model)
        if device:
            self.pipe.to(device)
        self.sampling = sampling_for(model, self.pipe, **sampling)
        self.pipe.use_scheduler(self.sampling.scheduler)
        self.mode = self.pipe.conditioner.config.mode
        self.vllm_dir = vllm_folder(model)
        self._vllm = None

    def load_vllm(self):
        """(model, processor) of the model's VLLM, loaded once; refuses a VLLM other than the recorded one."""
        from ..vllm.model import fingerprint, load_llava

        if self._vllm is None:
            if self.vllm_dir is None:
                raise InputError("model", f"mode {self.mode!r} needs the model's tuned VLLM, but {missing_vllm_hint(self.model)}")
            self._vllm = load_llava(self.vllm_dir)
            want = (recorded_vllm(self.model) or {}).get("fingerprint")
            if want and fingerprint(self._vllm[0]) != want:
                raise InputError("model", f"the VLLM in {self.vllm_dir} is not the one that wrote this model's training "
                                 f"embeddings (fingerprint {fingerprint(self._vllm[0])}, recorded {want})")
        return self._vllm

    def describe(self, square: Image.Image, action: str, description: str | None = None) -> tuple[str, dict]:
        """(description — the VLLM's, or the given one —, its embeddings) for a square frame; the VLLM loads once."""
        from ..vllm.enrich import describe_and_embed

        return describe_and_embed(self.vllm_dir, square, action, rows=self.pipe.conditioner.config.text_tokens,
                                  description=description, loaded=self.load_vllm())

    def __call__(self, image: Image.Image, action: str, description: str | None = None, seed: int = 0,
                 size: int | None = None) -> tuple[Image.Image, str]:
        """(action frame at the input's aspect ratio, the text it was conditioned on)."""
        side = size or self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor
        square = image.resize((side, side), Image.LANCZOS)
        emb = {}
        wants_description = text_key(self.mode) == "description" and description is None
        if needs_embeddings(self.mode) or (wants_description and self.vllm_dir is not None):
            description, emb = self.describe(square, action, description)
        try:
            prompt = mode_text(self.mode, action, description)
        except ValueError as e:
            raise InputError("description", str(e)) from None
        s = self.sampling
        out = self.pipe(square, prompt, num_inference_steps=s.steps, condition_guidance_scale=s.condition_guidance,
                        image_guidance_scale=s.image_guidance, generator=torch.Generator().manual_seed(seed),
                        original_size=image.size, progress=False, **emb).images[0]
        return out, prompt


def generate_one(model: str | Path, image: str | Path, action: str, description: str | None = None,
                 seed: int = 0, size: int | None = None, **sampling) -> tuple[Image.Image, str]:
    """One frame from a model folder (loads it); ``sampling`` overrides steps / scheduler / guidance scales."""
    return FrameGenerator(model, **sampling)(open_image(image), action, description, seed, size)
