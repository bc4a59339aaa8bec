"""Random-weight model folders with the *architectures* of the paper's models, at any width.

- ``write_sd15``: a diffusers folder shaped as Stable Diffusion 1.5 — UNet2DConditionModel (4 input channels, the
  SD block layout, cross-attention), AutoencoderKL f8, CLIP text encoder, a tokenizer, SD's PNDM scheduler config.
- ``write_llava15``: a HF folder shaped as LLaVA-1.5 — LlavaForConditionalGeneration with a CLIP ViT vision tower
  (336 px, patch 14: 576 image tokens, feature layer -2), the 2-layer GELU projector and a Llama language model,
  with a ``LlavaProcessor``.

``scale=1`` gives the real sizes (SD-1.5: 860 M UNet; LLaVA-1.5-7B), for ``benchmarks/gpu_check.py``; tests use
``tiny=True`` (a few channels, 1-2 layers) so that ``--preset paper`` runs end to end on a CPU in seconds. No
weights are downloaded: tokenizers are the project's own (``tokenizer.py``), trained on the caller's texts.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from .tokenizer import IMAGE_TOKEN

CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def sd15_configs(tiny: bool = False) -> dict:
    """The constructor arguments of SD-1.5's UNet, VAE and CLIP text model (tiny: same layout, few channels)."""
    down = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    up = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    unet = dict(sample_size=64, in_channels=4, out_channels=4, down_block_types=down, up_block_types=up,
                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
                attention_head_dim=8, norm_num_groups=32)
    vae = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
               up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
               latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
    text = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
    if tiny:
        unet.update(block_out_channels=(32, 32, 64, 64), layers_per_block=1, cross_attention_dim=32)
        vae.update(block_out_channels=(32, 32, 32, 32), layers_per_block=1)
        text.update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=32)
    return {"unet": unet, "vae": vae, "text": text}


def write_sd15(out: str | Path, tokenizer, tiny: bool = False) -> Path:
    """A random SD-1.5-shaped diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/)."""
    out = Path(out)
    c = sd15_configs(tiny)
    UNet2DConditionModel(**c["unet"]).save_pretrained(out / "unet")
    AutoencoderKL(**c["vae"]).save_pretrained(out / "vae")
    CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                 **c["text"])).save_pretrained(out / "text_encoder")
    tokenizer.save_pretrained(out / "tokenizer")
    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                  skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False).save_pretrained(out / "scheduler")
    (out / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"], "scheduler": ["diffusers", "PNDMScheduler"]}))
    return out


def llava15_config(tokenizer, tiny: bool = False) -> LlavaConfig:
    """LLaVA-1.5-7B's config (tiny: 336 px / patch 14 kept, so 576 image tokens; narrow, 2 layers each)."""
    vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                  image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    text = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5)
    if tiny:
        vision.update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=32)
        text.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=4, max_position_embeddings=2048)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if image_id is None or image_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no {IMAGE_TOKEN} token")
    return LlavaConfig(vision_config=CLIPVisionConfig(**vision),
                       text_config=LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               tie_word_embeddings=False, **text),
                       image_token_id=image_id, projector_hidden_act="gelu", vision_feature_layer=-2,
                       vision_feature_select_strategy="default")


def llava15_processor(tokenizer, image_size: int = 336, patch_size: int = 14) -> LlavaProcessor:
    ip = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                            image_mean=CLIP_MEAN, image_std=CLIP_STD)
    return LlavaProcessor(image_processor=ip, tokenizer=tokenizer, patch_size=patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1)


def write_llava15(out: str | Path, tokenizer, tiny: bool = False) -> Path:
    """A random LLaVA-1.5-shaped HF folder (model + processor)."""
    out = Path(out)
    cfg = llava15_config(tokenizer, tiny)
    LlavaForConditionalGeneration(cfg).save_pretrained(out)
    llava15_processor(tokenizer, cfg.vision_config.image_size, cfg.vision_config.patch_size).save_pretrained(out)
    return out
