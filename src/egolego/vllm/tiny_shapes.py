"""The tiny LLaVA's vision shapes, read by the model builder (``vllm.model``) and by the vision tower's
pre-training (``vllm.vision_pretrain``), so that neither has to import the other for them."""

from __future__ import annotations

from transformers import CLIPImageProcessor, CLIPVisionConfig

from ..config import TinyLlavaShapes

TINY_FEATURE_LAYER = -2  # the tower's hidden state the tiny LLaVA's projector reads (LLaVA's default)


def hidden_state_index(layer: int, n_layers: int) -> int:
    """``hidden_states[layer]`` of an ``n_layers`` tower counted from the start (entry k: after the first k layers)."""
    return layer if layer >= 0 else layer + n_layers + 1


def tiny_vision_config(s: TinyLlavaShapes = TinyLlavaShapes()) -> CLIPVisionConfig:
    return CLIPVisionConfig(hidden_size=s.vision_dim, intermediate_size=2 * s.vision_dim,
                            num_hidden_layers=s.vision_layers, num_attention_heads=s.heads, image_size=s.image_size,
                            patch_size=s.patch_size)


def tiny_image_processor(s: TinyLlavaShapes = TinyLlavaShapes()) -> CLIPImageProcessor:
    return CLIPImageProcessor(size={"shortest_edge": s.image_size},
                              crop_size={"height": s.image_size, "width": s.image_size})
