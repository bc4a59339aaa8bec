"""The visual LLM: transformers' ``LlavaForConditionalGeneration`` + ``LlavaProcessor``.

``paper`` loads any local HF-format LLaVA folder (LLaVA-1.5-7B/13B: 576 x 4096 image tokens; the official
release's Llama-2-13B with a 224 px CLIP: 256 x 5120). ``tiny`` builds a small CLIP vision tower and a small
Llama with the project's tokenizer (which has an ``<image>`` token).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from transformers import (
    AutoProcessor,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from ..config import TinyLlavaShapes
from ..safe_load import first_line
from ..tokenizer import IMAGE_TOKEN
from .tiny_shapes import TINY_FEATURE_LAYER, hidden_state_index, tiny_image_processor, tiny_vision_config


def build_tiny_llava(tokenizer, s: TinyLlavaShapes = TinyLlavaShapes(), seed: int = 0,
                     vision_tower: str | Path | None = None):
    """(model, processor); the tokenizer must hold ``<image>`` and a pad token.

    Random weights, but for the vision tower when ``vision_tower`` names a folder from
    ``egolego vllm pretrain-vision`` (``vision_pretrain.load_vision_tower`` checks that its shapes match).
    """
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if image_id is None or image_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no {IMAGE_TOKEN} token")
    vc = tiny_vision_config(s)
    tc = LlamaConfig(vocab_size=len(tokenizer), hidden_size=s.text_dim, intermediate_size=2 * s.text_dim,
                     num_hidden_layers=s.text_layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
                     max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                     bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_id=image_id, vision_feature_layer=TINY_FEATURE_LAYER,
                      vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg)
    if vision_tower is not None:
        from .vision_pretrain import load_vision_tower

        load_vision_tower(model.model.vision_tower, vision_tower)
    proc = LlavaProcessor(image_processor=tiny_image_processor(s), tokenizer=tokenizer, patch_size=s.patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1)
    return model, proc


def load_llava(folder: str | Path, dtype: torch.dtype = torch.float32, **options):
    """(model, processor) from a local HF-format LLaVA folder; ``options`` go to ``from_pretrained``
    (``memory.load_options``: a 4-bit quantisation config and its device map)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a HF-format LLaVA folder (no config.json)")
    from ..hf_quiet import quiet_loading

    try:
        with quiet_loading():
            model = LlavaForConditionalGeneration.from_pretrained(str(folder), **{"dtype": dtype, **options},
                                                                  local_files_only=True)
            proc = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:  # broken or foreign folder
        raise ValueError(f"{folder} is not a loadable LLaVA folder ({first_line(e)})") from None
    return model, proc


def image_tokens(model) -> int:
    """M: projected image tokens per image."""
    v = model.config.vision_config
    n = (v.image_size // v.patch_size) ** 2
    return n if model.config.vision_feature_select_strategy == "default" else n + 1


def _portable(d, drop: tuple[str, ...] = ("_name_or_path", "transformers_version")):
    """A config dict without what depends on where the model was loaded from (``_name_or_path``) or by which
    library version: a copied or moved VLLM folder keeps its fingerprint."""
    if isinstance(d, dict):
        return {k: _portable(v, drop) for k, v in d.items() if k not in drop}
    return d


# What loading in another precision writes into a config: not part of which model it is
LOAD_KEYS = ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "quantization_config",
             "_pre_quantization_dtype")


def folder_fingerprint(folder: str | Path) -> str | None:
    """A short id of a saved VLLM's *files* (its ``config.json`` and the first values of eight stored tensors), the
    same whatever precision the folder is later loaded in — unlike ``fingerprint``, which hashes a loaded model and
    so changes when ``generate --vllm-precision bfloat16`` or 4-bit loads it. None for a folder without
    safetensors weights. Reads a few kilobytes, so a wrong VLLM is refused before it is loaded."""
    from safetensors import safe_open

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files or not (folder / "config.json").is_file():
        return None
    cfg = json.loads((folder / "config.json").read_text())
    h = hashlib.sha256(json.dumps(_portable(cfg, LOAD_KEYS), sort_keys=True, default=str).encode())
    where = {}
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            where.update({name: f for name in st.keys()})
    for name in sorted(where)[:8]:
        with safe_open(str(where[name]), framework="pt") as st:
            sl = st.get_slice(name)
            ndim = len(sl.get_shape())
            first = sl[:1] if ndim > 1 else sl[:64] if ndim == 1 else st.get_tensor(name)  # one row: 64 values
        h.update(name.encode())
        h.update(first.float().flatten()[:64].numpy().tobytes())
    return h.hexdigest()[:16]


def fingerprint(model) -> str:
    """A short id of the model's config and a sample of its weights, stored with every embedding."""
    h = hashlib.sha256(json.dumps(_portable(model.config.to_dict()), sort_keys=True, default=str).encode())
    for name, p in sorted(model.named_parameters())[:8]:
        h.update(name.encode())
        h.update(p.detach().float().flatten()[:64].numpy().tobytes())
    return h.hexdigest()[:16]


def freeze_unused_vision(model) -> list[str]:
    """Stop training the vision-tower parameters that can never reach the loss; returns their names.

    LLaVA feeds the projector the tower's hidden state number ``vision_feature_layer`` (default -2), never its
    last layers nor its ``post_layernorm`` (nor a pooling ``head``). When the tower is trained (the tiny preset),
    those parameters get no gradient, and DDP stops at the second step with "parameters that were not used in
    producing loss". Making them not require grad is exact; ``find_unused_parameters=True`` would instead
    cost a graph traversal every step to rediscover the same fixed set.
    """
    sel = model.config.vision_feature_layer
    sel = list(sel) if isinstance(sel, (list, tuple)) else [sel]
    n = model.config.vision_config.num_hidden_layers
    used = max(hidden_state_index(k, n) for k in sel)
    towers = [m for name, m in model.named_modules() if name.endswith("vision_tower")]
    if not towers:
        raise ValueError("no vision_tower in this model")
    frozen = []
    for name, p in towers[0].named_parameters():
        parts = name.split(".")
        layer = next((int(parts[i + 1]) for i in range(len(parts) - 1)
                      if parts[i] == "layers" and parts[i + 1].isdigit()), None)
        if (layer is not None and layer >= used) or "post_layernorm" in parts or "head" in parts:
            if p.requires_grad:
                p.requires_grad_(False)
                frozen.append(name)
    return frozen
