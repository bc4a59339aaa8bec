"""Caption–text similarity (paper §4.1, App. A): BLIP captions the generated frame, a text encoder compares
the caption with the action description.

Captioning follows the official metric: a transformers ``BlipForConditionalGeneration`` folder (local copies
of ``Salesforce/blip-image-captioning-base`` / ``-large``), 384 px bicubic input with CLIP normalisation, the
prompt "a picture of", beam search 3, length 5–20; the prompt is cut from the caption. The text encoder is
selectable: CLIP text (what the paper says) or EgoVLP's DistilBERT (what the official code does).
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from .clip_similarity import CLIP_MEAN, CLIP_STD
from .pixels import to_unit

PROMPT = "a picture of"


class BlipCaptioner:
    def __init__(self, folder: str | Path, num_beams: int = 3, min_length: int = 5, max_length: int = 20):
        from transformers import AutoTokenizer, BlipForConditionalGeneration

        self.model = BlipForConditionalGeneration.from_pretrained(str(folder), local_files_only=True).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.size = self.model.config.vision_config.image_size
        self.kw = {"num_beams": num_beams, "min_length": min_length, "max_length": max_length}

    @torch.no_grad()
    def __call__(self, images: list[Image.Image]) -> list[str]:
        mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        pixels = (to_unit(images, (self.size, self.size)) - mean) / std  # (B, 3, S, S)
        prompt = self.tokenizer([PROMPT] * len(images), return_tensors="pt")
        ids = self.model.generate(pixel_values=pixels, input_ids=prompt["input_ids"],
                                  attention_mask=prompt["attention_mask"], **self.kw)
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [strip_prompt(t) for t in texts]


def strip_prompt(caption: str, prompt: str = PROMPT) -> str:
    c = caption.strip()
    return c[len(prompt):].strip() if c.lower().startswith(prompt) else c
