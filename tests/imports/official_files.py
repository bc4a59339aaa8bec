"""Tiny files in the official LEGO release's layout, with random weights (nothing can be downloaded here).

``official_parts`` builds the release's modules at tiny width: a diffusers UNet / KL VAE (the same functions as the
CompVis ones, checked by the conversion), a transformers CLIP text encoder, and the official σ, μ, π modules
exactly as ``ddpm_egogen.py`` makes them (``nn.Linear`` x 2, ``nn.TransformerEncoder`` of pre-LN layers).
``write_ckpt`` saves them as ``LatentDiffusion.state_dict()`` inside a Lightning 1.4 checkpoint: CompVis names
(checked against the names the official modules produce in ``test_compvis_names``), LitEma's flattened copy
(other weights, so a test can tell which copy was imported), the noise-schedule buffers computed as ``ddpm.py``
does, transformers 4.19's persistent ``position_ids``, and the Lightning bookkeeping (a callback state keyed by
the ``ModelCheckpoint`` class, optimizer and scheduler states).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

from egolego.imports.compvis_names import ema_name, unet_names, vae_names
from egolego.tokenizer import train_tokenizer

SIZE = 64  # px; the VAE below downsamples by 2 -> 32 x 32 latents
D, D_VLLM, M, FFN = 32, 48, 8, 64  # context width, VLLM width, image tokens, the mixer's FFN
UNET_CFG = dict(in_channels=8, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64),
                layers_per_block=1, cross_attention_dim=D, attention_head_dim=8, sample_size=SIZE // 2)
VAE_CFG = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
               up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64), layers_per_block=1,
               latent_channels=4, sample_size=SIZE)


def clip_folder(out: Path) -> Path:
    """A local "CLIP" folder: a tokenizer (the project's BPE: no CLIP vocabulary can be fetched) + config.json."""
    tok = train_tokenizer(["the person takes the red cup with the left hand", "open the drawer", "cut the tomato",
                           "the person opens the drawer on the right"], out, vocab_size=300, model_max_length=77)
    CLIPTextConfig(vocab_size=len(tok), hidden_size=D, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   max_position_embeddings=77, hidden_act="quick_gelu", pad_token_id=tok.pad_token_id,
                   bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id).save_pretrained(out)
    return out


def official_parts(clip_dir: Path, seed: int = 0) -> dict:
    """The release's modules at tiny width, random weights from ``seed``; ``unet_ema``: the EMA copy."""
    torch.manual_seed(seed)
    parts = {"unet": UNet2DConditionModel(**UNET_CFG), "unet_ema": UNet2DConditionModel(**UNET_CFG),
             "vae": AutoencoderKL(**VAE_CFG), "text": CLIPTextModel(CLIPTextConfig.from_pretrained(clip_dir)),
             "projection_img": nn.Linear(D_VLLM, D), "projection_txt": nn.Linear(D_VLLM, D),
             "self_attn_mix": nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=D, nhead=8, dim_feedforward=FFN,
                                                                               batch_first=True, norm_first=True), 2,
                                                  enable_nested_tensor=False)}
    with torch.no_grad():  # random GroupNorm / LayerNorm affines too: an identity default cannot hide a swap
        for name in ("unet", "unet_ema", "vae", "self_attn_mix"):
            for k, p in parts[name].named_parameters():
                if "norm" in k:
                    p.normal_(1.0 if k.endswith("weight") else 0.0, 0.2)
    return {k: v.eval() for k, v in parts.items()}


def schedule_buffers(n: int = 1000, start: float = 0.00085, end: float = 0.012) -> dict[str, torch.Tensor]:
    """``DDPM.register_schedule`` for ``beta_schedule="linear"`` (ldm's name for SD's scaled-linear schedule)."""
    betas = np.linspace(start ** 0.5, end ** 0.5, n, dtype=np.float64) ** 2
    a = np.cumprod(1.0 - betas)
    a_prev = np.append(1.0, a[:-1])
    post_var = betas * (1.0 - a_prev) / (1.0 - a)
    b = {"betas": betas, "alphas_cumprod": a, "alphas_cumprod_prev": a_prev, "sqrt_alphas_cumprod": np.sqrt(a),
         "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - a), "log_one_minus_alphas_cumprod": np.log(1.0 - a),
         "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / a), "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / a - 1),
         "posterior_variance": post_var, "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
         "posterior_mean_coef1": betas * np.sqrt(a_prev) / (1.0 - a),
         "posterior_mean_coef2": (1.0 - a_prev) * np.sqrt(1.0 - betas) / (1.0 - a)}
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in b.items()}


def official_state_dict(parts: dict, ema: bool = True) -> dict[str, torch.Tensor]:
    """``LatentDiffusion.state_dict()`` of the release, at tiny width."""
    sd: dict[str, torch.Tensor] = {}
    u = parts["unet"].state_dict()
    names = unet_names(UNET_CFG, u)
    sd.update({f"model.diffusion_model.{names[k]}": v.clone() for k, v in u.items()})
    if ema:
        sd.update({ema_name(names[k]): v.clone() for k, v in parts["unet_ema"].state_dict().items()})
        sd["model_ema.decay"] = torch.tensor(0.9999)
        sd["model_ema.num_updates"] = torch.tensor(1234, dtype=torch.int32)
    v = parts["vae"].state_dict()
    vn = vae_names(VAE_CFG, v)
    for k, t in v.items():  # CompVis' AttnBlock holds 1x1 convs where diffusers has linears
        sd[f"first_stage_model.{vn[k]}"] = t.clone()[..., None, None] if "attentions" in k and t.ndim == 2 else t.clone()
    wrapped = hasattr(parts["text"], "text_model")  # transformers 4.19 (the release) nests it; >= 5.6 does not
    sd.update({f"cond_stage_model.transformer.{'' if wrapped else 'text_model.'}{k}": t.clone()
               for k, t in parts["text"].state_dict().items()})
    sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    for name in ("projection_img", "projection_txt", "self_attn_mix"):
        sd.update({f"{name}.{k}": t.clone() for k, t in parts[name].state_dict().items()})
    sd.update(schedule_buffers())
    return sd


def _lightning_module() -> tuple[type, types.ModuleType]:
    """A class importable as ``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint`` (PL is not installed:
    pickle only records the name)."""
    mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")
    cls = type("ModelCheckpoint", (), {"__module__": mod.__name__})
    mod.ModelCheckpoint = cls
    return cls, mod


def write_ckpt(path: Path, sd: dict[str, torch.Tensor], extra: dict | None = None) -> Path:
    """A Lightning 1.4 checkpoint around ``sd`` (its callback state keyed by the ModelCheckpoint class)."""
    cls, mod = _lightning_module()
    obj = {"epoch": 119, "global_step": 9999, "pytorch-lightning_version": "1.4.2", "state_dict": sd,
           "callbacks": {cls: {"monitor": None, "best_model_score": None, "best_model_path": "/fsx/x.ckpt",
                               "current_score": None, "dirpath": "/fsx/logs/checkpoints"}},
           "optimizer_states": [{"state": {0: {"step": 3, "exp_avg": torch.zeros(2)}},
                                 "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]}],
           "lr_schedulers": [{"base_lrs": [1e-4], "last_epoch": 9999, "_step_count": 10000, "lr_lambdas": [{}]}],
           **(extra or {})}
    with pytest.MonkeyPatch.context() as mp:
        for name in ("pytorch_lightning", "pytorch_lightning.callbacks"):
            mp.setitem(sys.modules, name, types.ModuleType(name))
        mp.setitem(sys.modules, mod.__name__, mod)
        torch.save(obj, path)
    return path
