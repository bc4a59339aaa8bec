"""Single-image inference: ``egolego generate --model DIR --image IMG --action "open drawer" --out OUT.png``.

With a tuned VLLM in ``<model>/vllm`` the VLLM writes the description and the embeddings itself; without
one, the modes that need no embeddings (``label``, ``desc``) run on the label or on ``--description``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..safe_load import first_line
from .conditioner import mode_uses
from .pipeline import LegoPipeline


def open_image(path: str | Path) -> Image.Image:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--image: {p} does not exist")
    try:
        im = Image.open(p)
        im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"--image: {p} is not a readable image ({e})") from None
    return im.convert("RGB")


def load_pipeline(model: str | Path) -> LegoPipeline:
    d = Path(model)
    if not (d / "model_index.json").is_file():
        raise FileNotFoundError(f"--model: {d} is not a LEGO model folder (no model_index.json); "
                                "it is written by `egolego train` as <out>/model")
    from ..hf_quiet import quiet_loading

    try:
        with quiet_loading():
            pipe = LegoPipeline.from_pretrained(str(d), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:  # a broken or foreign folder
        raise ValueError(f"--model: {d} is not a loadable LEGO model ({first_line(e)})") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate_one(model: str | Path, image: str | Path, action: str, description: str | None = None,
                 steps: int = 100, seed: int = 0, size: int | None = None, scheduler: str = "euler_a",
                 condition_guidance: float = 7.5, image_guidance: float = 1.5) -> tuple[Image.Image, str]:
    """(action frame at the input's aspect ratio, the text it was conditioned on)."""
    pipe = load_pipeline(model)
    pipe.use_scheduler(scheduler)
    mode = pipe.conditioner.config.mode
    use_img, use_txt = mode_uses(mode)
    src = open_image(image)
    side = size or pipe.unet.config.sample_size * pipe.vae_scale_factor
    square = src.resize((side, side), Image.LANCZOS)
    emb = {}
    vllm_dir = Path(model) / "vllm"
    if vllm_dir.is_dir() and (mode != "label" and (description is None or use_img or use_txt)):
        from ..vllm.enrich import describe_and_embed

        description, emb = describe_and_embed(vllm_dir, square, action, rows=pipe.conditioner.config.text_tokens)
    elif use_img or use_txt:
        raise ValueError(f"this model's mode {mode!r} needs VLLM embeddings, but {model} holds no tuned VLLM "
                         "(a `vllm/` folder); train a `label` or `desc` model, or add the VLLM")
    if mode == "label":
        prompt = action
    elif description:
        prompt = description
    else:
        raise ValueError(f"mode {mode!r} needs a description: pass --description, or use a model with a tuned VLLM")
    out = pipe(square, prompt, num_inference_steps=steps, condition_guidance_scale=condition_guidance,
               image_guidance_scale=image_guidance, generator=torch.Generator().manual_seed(seed),
               original_size=src.size, **emb).images[0]
    return out, prompt
