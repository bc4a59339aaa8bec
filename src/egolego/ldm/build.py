"""Assemble the LDM's components for a config: ``paper`` from local folders, ``tiny`` from the project's parts."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, EulerAncestralDiscreteScheduler, FlowMatchEulerDiscreteScheduler
from transformers import AutoTokenizer

from ..config import Config
from ..data.manifest import read_manifest
from ..errors import InputError
from ..tokenizer import train_tokenizer
from .autoencoder import PixelUnshuffleAutoencoder, downscale_factor, latent_channels
from .components import (
    add_progress_embedding,
    load_paper_components,
    start_from,
    tiny_shapes,
    tiny_text_encoder,
    tiny_unet,
    tiny_vae,
    zero_last_conv,
)
from .conditioner import LegoConditioner
from .sampler_names import FLOW_SAMPLERS

SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}


def tiny_tokenizer(cfg: Config, manifest: str | Path | None, out: Path):
    """The configured tokenizer folder, or one trained on the manifest's labels and descriptions."""
    if cfg.ldm.tokenizer:
        tok = AutoTokenizer.from_pretrained(cfg.ldm.tokenizer, local_files_only=True)
        # ψ reads N = tokenizer.model_max_length tokens (CLIP's 77); a tokenizer shared with the VLLM is longer
        tok.model_max_length = min(tok.model_max_length, cfg.tokenizer.model_max_length)
        return tok
    if (out / "tokenizer.json").is_file():  # trained by an earlier (interrupted) run in this folder
        return AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    if manifest is None:
        raise ValueError("the tiny preset needs ldm.tokenizer (a folder from `egolego tokenizer`) or a manifest")
    texts = [t for r in read_manifest(manifest) for t in (r["label"], r["description"]) if t]
    texts += [t.replace("left", "right") for t in texts] + [t.replace("right", "left") for t in texts]
    return train_tokenizer(texts, out, cfg.tokenizer.vocab_size, cfg.tokenizer.model_max_length,
                           cfg.tokenizer.min_frequency)


def tiny_autoencoder(cfg: Config):
    if cfg.ldm.autoencoder == "unshuffle":
        return PixelUnshuffleAutoencoder(downscale_factor=4)
    if cfg.ldm.autoencoder != "vae":
        raise ValueError(f"ldm.autoencoder must be vae or unshuffle, got {cfg.ldm.autoencoder!r}")
    if cfg.ldm.vae == "random":  # unit tests of the training mechanics only: cannot reconstruct images
        return tiny_vae(tiny_shapes(cfg))
    if not cfg.ldm.vae:
        raise InputError("vae", "the tiny preset with ldm.autoencoder: vae needs ldm.vae: a folder from "
                         "`egolego vae train` (a random autoencoder cannot reconstruct images); or set "
                         "ldm.autoencoder: unshuffle")
    return AutoencoderKL.from_pretrained(cfg.ldm.vae, local_files_only=True)


def tiny_parts(cfg: Config, manifest: str | Path | None, work: Path | None, image_input: bool = True) -> dict:
    """The tiny preset's tokenizer, text encoder ψ, autoencoder and UNet (``image_input=False``: text-to-image)."""
    tok = tiny_tokenizer(cfg, manifest, (work or Path(".")) / "tokenizer")
    vae = tiny_autoencoder(cfg)
    s = tiny_shapes(cfg, latent_channels=latent_channels(vae))
    text_encoder = tiny_text_encoder(tok, s)  # seeds itself: the frozen random ψ is the same for every ldm.seed
    torch.manual_seed(cfg.ldm.seed)  # after ψ, so that ldm.seed does reach the UNet's initial weights
    return {"tokenizer": tok, "text_encoder": text_encoder, "vae": vae,
            "unet": tiny_unet(s, downscale=downscale_factor(vae), image_input=image_input)}


PREDICTIONS = {"ddpm": ("epsilon", "v_prediction", "sample"), "flow": ("sample", "velocity")}


def check_recipe(cfg: Config) -> None:
    """Refuse recipe combinations that cannot work, naming the keys."""
    c = cfg.ldm
    if c.objective not in PREDICTIONS:
        raise ValueError(f"ldm.objective must be ddpm or flow, got {c.objective!r}")
    if c.prediction not in PREDICTIONS[c.objective]:
        raise ValueError(f"ldm.prediction {c.prediction!r} does not fit ldm.objective {c.objective!r} "
                         f"(choose {' or '.join(PREDICTIONS[c.objective])})")
    if c.residual and c.prediction != "sample":
        raise ValueError("ldm.residual needs ldm.prediction: sample (the head predicts x_0 - E(X))")
    if c.loss_weighting not in ("none", "min_snr", "change"):
        raise ValueError(f"ldm.loss_weighting must be none, min_snr or change, got {c.loss_weighting!r}")
    if c.loss_weighting == "min_snr" and c.objective != "ddpm":
        raise ValueError("ldm.loss_weighting min_snr needs ldm.objective: ddpm")
    flow_sampler = c.scheduler in FLOW_SAMPLERS
    if flow_sampler != (c.objective == "flow"):
        raise ValueError(f"ldm.scheduler {c.scheduler!r} does not sample ldm.objective {c.objective!r} "
                         "(flow models: flow_euler or flow_euler_a; ddpm models: euler_a, ddim or dpm++)")


def schedulers(cfg: Config, sched_cfg: dict | None = None) -> tuple:
    """(training noise scheduler, sampler) for the recipe; DDPM ones carry the prediction type."""
    c = cfg.ldm
    if c.objective == "flow":
        s = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000)
        return s, s
    sched_cfg = dict(sched_cfg or SD_BETAS)
    sched_cfg["prediction_type"] = c.prediction
    return DDPMScheduler.from_config(sched_cfg), EulerAncestralDiscreteScheduler.from_config(sched_cfg)


def build_components(cfg: Config, vllm_dim: int, image_tokens: int, text_tokens: int,
                     manifest: str | Path | None = None, work: Path | None = None) -> dict:
    """Everything ``LegoPipeline`` holds, plus the training noise scheduler under ``noise_scheduler``.

    The tiny UNet and the conditioner are initialised from ``ldm.seed``.
    """
    check_recipe(cfg)
    torch.manual_seed(cfg.ldm.seed)
    if cfg.ldm.from_base:
        if not cfg.ldm.base:
            raise InputError("base", f"the {cfg.preset} preset starts from ldm.base (ldm.from_base: true): give a "
                             "local SD-1.5 or InstructPix2Pix folder")
        parts = load_paper_components(cfg.ldm.base)
        # SD-1.5's config says 64 latents (512 px); the model generates at the size it is trained at
        parts["unet"].register_to_config(sample_size=cfg.image_size // downscale_factor(parts["vae"]))
        noise, sampler = schedulers(cfg, DDPMScheduler.load_config(cfg.ldm.base, subfolder="scheduler"))
    else:
        parts = tiny_parts(cfg, manifest, work)
        noise, sampler = schedulers(cfg)
    if cfg.ldm.residual:
        zero_last_conv(parts["unet"])
    if cfg.ldm.progress:
        parts["unet"] = add_progress_embedding(parts["unet"])
    d = parts["unet"].config.cross_attention_dim
    if parts["text_encoder"].config.hidden_size != d:
        raise ValueError(f"text encoder width {parts['text_encoder'].config.hidden_size} != UNet cross-attention {d}")
    torch.manual_seed(cfg.ldm.seed + 1)
    cond = LegoConditioner(vllm_dim=vllm_dim, cross_attention_dim=d, num_layers=cfg.ldm.conditioner_layers,
                           num_heads=cfg.ldm.conditioner_heads, ffn_dim=cfg.ldm.conditioner_ffn,
                           dropout=cfg.ldm.conditioner_dropout, mode=cfg.ldm.conditioning,
                           image_tokens=image_tokens, text_tokens=text_tokens, gate=cfg.ldm.conditioner_gate)
    parts["text_encoder"].requires_grad_(False).eval()
    parts["vae"].requires_grad_(False).eval()
    parts = {**parts, "conditioner": cond, "scheduler": sampler, "noise_scheduler": noise}
    if cfg.ldm.init_from:
        start_from(parts, cfg.ldm.init_from)
    return parts
