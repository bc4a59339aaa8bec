"""CLIP-based scorers from local weights: image-image similarity and the LAION improved-aesthetic predictor.

``--similarity clip`` uses the cosine of CLIP image embeddings (the paper keeps pairs in [0.81, 0.97]);
``--quality laion`` scores frames with the LAION "improved aesthetic predictor" MLP on L2-normalised CLIP
ViT-L/14 image embeddings (768 -> 1024 -> 128 -> 64 -> 16 -> 1; its ``.pth`` state dict loads as is).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import MissingInput
from ..safe_load import load_state, load_weights


class AestheticMLP(nn.Module):
    def __init__(self, dim: int = 768):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, x):
        return self.layers(x)


class ClipScorers:
    def __init__(self, clip_weights: str | None, quality_weights: str | None = None):
        from transformers import CLIPImageProcessor, CLIPModel
        if not clip_weights or not (Path(clip_weights) / "config.json").is_file():
            raise MissingInput("clip_weights", f"{clip_weights} is not a local CLIP folder (config.json + weights)")
        self.model = CLIPModel.from_pretrained(clip_weights, local_files_only=True).eval()
        self.proc = CLIPImageProcessor.from_pretrained(clip_weights, local_files_only=True)
        self.mlp = None
        if quality_weights and Path(quality_weights).is_file() and Path(quality_weights).suffix in (".pth", ".pt"):
            self.mlp = AestheticMLP(self.model.config.projection_dim)
            load_state(self.mlp, load_weights(quality_weights, "aesthetic MLP"), quality_weights, "aesthetic MLP")
            self.mlp.eval()

    @torch.no_grad()
    def embed(self, img: np.ndarray) -> torch.Tensor:
        px = self.proc(images=[Image.fromarray(img)], return_tensors="pt")["pixel_values"]
        out = self.model.get_image_features(pixel_values=px)
        e = out.pooler_output if hasattr(out, "pooler_output") else out
        return torch.nn.functional.normalize(e.float(), dim=-1)[0]

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(self.embed(a) @ self.embed(b))

    @torch.no_grad()
    def aesthetic(self, img: np.ndarray) -> float:
        if self.mlp is None:
            raise MissingInput("quality_weights", "quality laion needs the improved-aesthetic MLP .pth file")
        return float(self.mlp(self.embed(img)[None])[0, 0].detach())
