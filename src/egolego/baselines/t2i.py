"""The text-to-image LDM the SDEdit and ProxNPI baselines edit with: ``egolego train --conditioning t2i``.

The paper (§4.2): "we first finetune the latent diffusion model with egocentric images and action labels and then use
the finetuned latent diffusion model parameters to implement ProxNPI and SDEdit". Here the target frame is the image
and the action label the text; training reuses the LEGO ``Trainer`` (EMA, checkpoints, resume, accelerate, CFG
dropout of the text, flips with left/right swapped in the label) with a UNet that has no image input.

``paper``: SD-1.5's own 4-channel UNet, VAE, CLIP text encoder and tokenizer from ``ldm.base``. ``tiny``: built from
scratch with the tiny preset's autoencoder (``ldm.autoencoder``: with ``unshuffle``, the default, the UNet reads the
48-channel pixel-unshuffled frame — lossless, so an inversion test measures the inversion and nothing else; with
``vae`` a 4-channel UNet on the project's tiny AutoencoderKL) and the tiny text encoder.

The model is saved as a standard diffusers ``StableDiffusionPipeline`` folder (``<out>/model``) with a
``DDIMScheduler``: diffusers' img2img pipeline and DDIM inversion need a DDPM-schedule model, so the recipe must be
``objective: ddpm`` (any ``prediction``); ``residual`` and the ``change`` loss weighting need an input frame the
text-to-image model does not have. Keys the user left at the preset's editing recipe take the text-to-image values
below (``T2I_RECIPE``); a key set to something that cannot work is refused, named.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from torch import nn
from transformers import AutoTokenizer, CLIPTextModel

from ..config import Config, preset, save
from ..errors import InputError, MissingInput
from ..ldm.autoencoder import downscale_factor
from ..ldm.build import SD_BETAS, check_recipe, tiny_parts
from ..ldm.train import Trainer
from . import check_model_kind

MODE = "t2i"
# the text-to-image recipe: the keys the preset's editing recipe may set otherwise (tiny: flow / residual / change)
T2I_RECIPE = {"objective": "ddpm", "prediction": "epsilon", "residual": False, "loss_weighting": "none",
              "scheduler": "ddim"}


def t2i_config(cfg: Config) -> Config:
    """A copy of ``cfg`` with the text-to-image recipe where the preset's editing recipe was left; checked."""
    cfg = copy.deepcopy(cfg)
    editing = preset(cfg.preset).ldm
    for key, value in T2I_RECIPE.items():
        if getattr(cfg.ldm, key) == getattr(editing, key):
            setattr(cfg.ldm, key, value)
    if cfg.ldm.steps == editing.steps:
        cfg.ldm.steps = cfg.ldm.t2i_steps
    cfg.ldm.conditioning = MODE
    check_t2i_recipe(cfg)
    return cfg


def check_t2i_recipe(cfg: Config) -> None:
    """Refuse what a text-to-image model for img2img and DDIM inversion cannot do, naming the keys."""
    c = cfg.ldm
    if c.objective != "ddpm":
        raise InputError("conditioning", f"t2i needs ldm.objective: ddpm (got {c.objective!r}): diffusers' img2img "
                         "pipeline (SDEdit) and DDIM inversion (ProxNPI) sample DDPM-schedule models")
    if c.residual:
        raise InputError("conditioning", "t2i cannot use ldm.residual: true (it predicts x_0 - E(X); a text-to-image "
                         "model has no input frame X)")
    if c.loss_weighting == "change":
        raise InputError("conditioning", "t2i cannot use ldm.loss_weighting: change (it weights where the target "
                         "differs from the input frame; a text-to-image model has no input frame); use none or min_snr")
    if c.scheduler != "ddim":
        raise InputError("conditioning", f"t2i needs ldm.scheduler: ddim (got {c.scheduler!r}): both baselines sample "
                         "with DDIM (SDEdit deterministic given its noise, ProxNPI inverts with it)")
    check_recipe(cfg)


def t2i_schedulers(cfg: Config, sched_cfg: dict | None = None) -> tuple[DDPMScheduler, DDIMScheduler]:
    """(training noise scheduler, DDIM sampler) on SD's betas (or the base model's), with the recipe's prediction."""
    sched_cfg = {**(sched_cfg or SD_BETAS), "prediction_type": cfg.ldm.prediction}
    ddim = DDIMScheduler.from_config({**sched_cfg, "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1})
    return DDPMScheduler.from_config(sched_cfg), ddim


def build_t2i_components(cfg: Config, manifest: str | Path | None = None, work: Path | None = None) -> dict:
    """tokenizer, text_encoder, vae, unet (latent channels in), scheduler (DDIM), noise_scheduler (DDPM)."""
    check_t2i_recipe(cfg)
    torch.manual_seed(cfg.ldm.seed)
    if cfg.ldm.from_base:
        if not cfg.ldm.base:
            raise InputError("base", f"the {cfg.preset} preset starts from ldm.base (ldm.from_base: true): give a "
                             "local stable-diffusion-v1-5 folder")
        base = Path(cfg.ldm.base)
        if not (base / "unet").is_dir():
            raise MissingInput("base", f"{base} is not a diffusers folder (no unet/)")
        unet = UNet2DConditionModel.from_pretrained(str(base), subfolder="unet", local_files_only=True)
        if unet.config.in_channels != unet.config.out_channels:
            raise InputError("base", f"{base} has a {unet.config.in_channels}-channel UNet (an InstructPix2Pix "
                             "folder?); conditioning t2i fine-tunes a text-to-image model: give an SD-1.5 folder")
        parts = {"unet": unet,
                 "vae": AutoencoderKL.from_pretrained(str(base), subfolder="vae", local_files_only=True),
                 "text_encoder": CLIPTextModel.from_pretrained(str(base), subfolder="text_encoder",
                                                               local_files_only=True),
                 "tokenizer": AutoTokenizer.from_pretrained(str(base / "tokenizer"), local_files_only=True)}
        unet.register_to_config(sample_size=cfg.image_size // downscale_factor(parts["vae"]))
        noise, sampler = t2i_schedulers(cfg, DDPMScheduler.load_config(str(base), subfolder="scheduler"))
    else:
        parts = tiny_parts(cfg, manifest, work, image_input=False)
        noise, sampler = t2i_schedulers(cfg)
    d = parts["unet"].config.cross_attention_dim
    if parts["text_encoder"].config.hidden_size != d:
        raise ValueError(f"text encoder width {parts['text_encoder'].config.hidden_size} != UNet cross-attention {d}")
    parts["text_encoder"].requires_grad_(False).eval()
    parts["vae"].requires_grad_(False).eval()
    return {**parts, "scheduler": sampler, "noise_scheduler": noise}


class TextToImageDenoiser(nn.Module):
    """The UNet behind the trainer's denoiser interface: the image latent and the VLLM inputs are not read."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, z_t, image_lat, t, text_states, h_img, h_txt, h_len, drop_c):
        # z_t (B, c, h, w), text_states (B, N, D): ψ(label), or ψ("") for the 10 % the CFG dropout drops
        return self.unet(z_t, t, encoder_hidden_states=text_states).sample


def as_sd_pipeline(parts: dict, unet=None) -> StableDiffusionPipeline:
    return StableDiffusionPipeline(vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
                                   unet=unet or parts["unet"], scheduler=parts["scheduler"], safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


class TextToImageTrainer(Trainer):
    """``Trainer`` on (target frame, action label) with a text-to-image UNet; exports a StableDiffusionPipeline."""

    def __init__(self, cfg: Config, pairs: str | Path, embeddings: str | Path | None, out: str | Path):
        super().__init__(t2i_config(cfg), pairs, None, out)  # no VLLM embeddings: the label is the text

    @property
    def data_mode(self) -> str:
        return "label"  # the prompt is the action label; flips swap its left / right words

    def build_parts(self, vllm_dim: int, image_tokens: int, text_tokens: int, pairs) -> dict:
        return build_t2i_components(self.cfg, manifest=pairs, work=self.out)

    def make_model(self) -> nn.Module:
        return TextToImageDenoiser(self.parts["unet"])

    def export(self) -> Path:
        """The EMA weights as a diffusers ``StableDiffusionPipeline`` folder: ``<out>/model``."""
        model = self.acc.unwrap_model(self.model)
        self.ema.store(list(model.parameters()))
        self.ema.copy_to(list(model.parameters()))
        dest = self.out / "model"
        if self.acc.is_main_process:
            as_sd_pipeline(self.parts, model.unet).save_pretrained(str(dest))
            save(self.cfg, dest / "lego_config.yaml")
        self.ema.restore(list(model.parameters()))
        return dest


def load_t2i(model: str | Path, arg: str = "model") -> StableDiffusionPipeline:
    """The fine-tuned text-to-image model; a clear error for anything else (a LEGO model, a missing folder)."""
    check_model_kind(model, "sdedit|proxnpi", arg)
    from ..hf_quiet import quiet_loading

    with quiet_loading():
        pipe = StableDiffusionPipeline.from_pretrained(str(model), local_files_only=True, safety_checker=None,
                                                       requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
