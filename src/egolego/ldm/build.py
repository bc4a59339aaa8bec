"""Assemble the LDM's components for a config: ``paper`` from local folders, ``tiny`` from the project's parts."""

from __future__ import annotations

from pathlib import Path

from diffusers import AutoencoderKL, DDPMScheduler, EulerAncestralDiscreteScheduler
from transformers import AutoTokenizer

from ..config import Config
from ..data.manifest import read_manifest
from ..tokenizer import train_tokenizer
from .components import TinyShapes, load_paper_components, tiny_text_encoder, tiny_unet, tiny_vae
from .conditioner import LegoConditioner

SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}


def tiny_tokenizer(cfg: Config, manifest: str | Path | None, out: Path):
    """The configured tokenizer folder, or one trained on the manifest's labels and descriptions."""
    if cfg.ldm.tokenizer:
        return AutoTokenizer.from_pretrained(cfg.ldm.tokenizer, local_files_only=True)
    if (out / "tokenizer.json").is_file():  # trained by an earlier (interrupted) run in this folder
        return AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    if manifest is None:
        raise ValueError("the tiny preset needs ldm.tokenizer (a folder from `egolego tokenizer`) or a manifest")
    texts = [t for r in read_manifest(manifest) for t in (r["label"], r["description"]) if t]
    texts += [t.replace("left", "right") for t in texts] + [t.replace("right", "left") for t in texts]
    return train_tokenizer(texts, out, cfg.tokenizer.vocab_size, cfg.tokenizer.model_max_length)


def tiny_autoencoder(cfg: Config) -> AutoencoderKL:
    if cfg.ldm.vae == "random":  # unit tests of the training mechanics only: cannot reconstruct images
        return tiny_vae(TinyShapes(image_size=cfg.image_size))
    if not cfg.ldm.vae:
        raise ValueError("the tiny preset needs ldm.vae: a folder from `egolego vae train` (a random autoencoder "
                         "cannot reconstruct images)")
    return AutoencoderKL.from_pretrained(cfg.ldm.vae, local_files_only=True)


def build_components(cfg: Config, vllm_dim: int, image_tokens: int, text_tokens: int = 77,
                     manifest: str | Path | None = None, work: Path | None = None) -> dict:
    """Everything ``LegoPipeline`` holds, plus the training noise scheduler under ``noise_scheduler``."""
    if cfg.preset == "paper":
        if not cfg.ldm.base:
            raise ValueError("the paper preset needs ldm.base (--base): a local SD-1.5 or InstructPix2Pix folder")
        parts = load_paper_components(cfg.ldm.base)
        sched_cfg = DDPMScheduler.load_config(cfg.ldm.base, subfolder="scheduler")
        noise = DDPMScheduler.from_config(sched_cfg)
        sampler = EulerAncestralDiscreteScheduler.from_config(sched_cfg)
    else:
        s = TinyShapes(image_size=cfg.image_size)
        tok = tiny_tokenizer(cfg, manifest, (work or Path(".")) / "tokenizer")
        parts = {"tokenizer": tok, "text_encoder": tiny_text_encoder(tok, s), "vae": tiny_autoencoder(cfg),
                 "unet": tiny_unet(s)}
        noise = DDPMScheduler(**SD_BETAS)
        sampler = EulerAncestralDiscreteScheduler(**SD_BETAS)
    d = parts["unet"].config.cross_attention_dim
    if parts["text_encoder"].config.hidden_size != d:
        raise ValueError(f"text encoder width {parts['text_encoder'].config.hidden_size} != UNet cross-attention {d}")
    cond = LegoConditioner(vllm_dim=vllm_dim, cross_attention_dim=d, num_layers=cfg.ldm.conditioner_layers,
                           num_heads=cfg.ldm.conditioner_heads, ffn_dim=cfg.ldm.conditioner_ffn,
                           dropout=cfg.ldm.conditioner_dropout, mode=cfg.ldm.conditioning,
                           image_tokens=image_tokens, text_tokens=text_tokens)
    parts["text_encoder"].requires_grad_(False).eval()
    parts["vae"].requires_grad_(False).eval()
    return {**parts, "conditioner": cond, "scheduler": sampler, "noise_scheduler": noise}
