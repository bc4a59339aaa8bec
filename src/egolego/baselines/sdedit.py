"""SDEdit (Meng et al. 2022) on the fine-tuned text-to-image model: diffusers' ``StableDiffusionImg2ImgPipeline``.

The input frame's latent is noised to strength s (the DDIM level round(s · steps) steps from the end) and denoised
with the action label as the prompt and classifier-free guidance w. s trades faithfulness to the input (small s)
for following the prompt (s → 1 is plain text-to-image). The strength default is provisional: the validation sweep
(benchmarks/sweep_sdedit.py) is written but has not run yet (benchmarks/RESULTS.md, "SDEdit sweep").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import StableDiffusionImg2ImgPipeline

from ..errors import InputError


@dataclass(frozen=True)
class SdeditSettings:
    steps: int = 20  # nominal DDIM steps; round(strength · steps) of them run
    guidance: float = 3.0
    strength: float = 0.6


class SDEdit:
    """``StableDiffusionImg2ImgPipeline`` sharing the text-to-image pipeline's modules (no copy of the weights)."""

    def __init__(self, pipe, settings: SdeditSettings = SdeditSettings()):
        if not 0.0 < settings.strength <= 1.0:
            raise InputError("strength", f"must be in (0, 1], got {settings.strength}")
        if settings.steps < 1:
            raise ValueError(f"SDEdit steps must be at least 1, got {settings.steps}")
        self.s = settings
        self.pipe = StableDiffusionImg2ImgPipeline(**pipe.components)
        self.pipe.set_progress_bar_config(disable=True)

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor, labels: list[str], generators: list[torch.Generator]) -> torch.Tensor:
        """pixels (b, 3, H, W) in [-1, 1], labels (b,), one generator per image -> (b, 3, H, W) in [-1, 1]."""
        out = self.pipe(prompt=list(labels), image=(pixels + 1) / 2, strength=self.s.strength,
                        num_inference_steps=self.s.steps, guidance_scale=self.s.guidance, generator=generators,
                        output_type="pt").images
        return out * 2 - 1  # diffusers takes and returns tensors in [0, 1]
