"""CLIP image–image similarity (paper §4.1) and CLIP text–text similarity (for the BLIP caption metric).

The model is a transformers ``CLIPModel`` folder (e.g. a local copy of ``openai/clip-vit-large-patch14``).
As in the official metric, images are resized bicubically to the model's square input (squashed, not
cropped) and normalised with CLIP's mean and std; the score is the cosine of the projected embeddings.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .pixels import to_unit

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipSimilarity:
    def __init__(self, folder: str | Path):
        from transformers import AutoTokenizer, CLIPModel

        self.folder = Path(folder)
        self.model = CLIPModel.from_pretrained(str(self.folder), local_files_only=True).eval()
        self.size = self.model.config.vision_config.image_size
        mean, std = CLIP_MEAN, CLIP_STD
        pp = self.folder / "preprocessor_config.json"
        if pp.is_file():
            cfg = json.loads(pp.read_text())
            mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
        self.mean, self.std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
        self._tokenizer = None
        self._tok_cls = AutoTokenizer

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        return (to_unit(images, (self.size, self.size)) - self.mean) / self.std  # (B, 3, S, S)

    @torch.no_grad()
    def image_embeddings(self, images: list[Image.Image]) -> torch.Tensor:
        pooled = self.model.vision_model(pixel_values=self.pixel_values(images)).pooler_output  # (B, Dv)
        return F.normalize(self.model.visual_projection(pooled), dim=-1)  # (B, D)

    @torch.no_grad()
    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        if self._tokenizer is None:
            self._tokenizer = self._tok_cls.from_pretrained(str(self.folder), local_files_only=True)
        n = self.model.config.text_config.max_position_embeddings
        tok = self._tokenizer(texts, padding=True, truncation=True, max_length=n, return_tensors="pt")
        pooled = self.model.text_model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).pooler_output
        return F.normalize(self.model.text_projection(pooled), dim=-1)  # (B, D)

    def image_image(self, a: list[Image.Image], b: list[Image.Image]) -> torch.Tensor:
        """(B,) cosine similarity of generated vs target frames."""
        return (self.image_embeddings(a) * self.image_embeddings(b)).sum(-1)

    def text_text(self, a: list[str], b: list[str]) -> torch.Tensor:
        return (self.text_embeddings(a) * self.text_embeddings(b)).sum(-1)
