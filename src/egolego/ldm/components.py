"""The LDM's parts: an 8-channel UNet, the autoencoder, the frozen text encoder ψ and its tokenizer.

``paper``: loads a local diffusers folder — InstructPix2Pix (UNet already has 8 input channels) or SD-1.5
(4 channels: ``conv_in`` is expanded to 8 with the pretrained weights in the first 4 input channels, zeros in
the new 4, and the bias kept, as InstructPix2Pix does).
``tiny``: the same classes built small for 64 px images, with the project's tokenizer and a VAE the project
trained (``egolego vae train``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

from ..errors import InputError, MissingInput


@dataclass
class TinyShapes:
    """Sizes of the tiny preset (64 px images, f4 autoencoder -> 16 x 16 latents); a config sets them through
    ``tiny_shapes`` (YAML: ``vae.channels``, ``ldm.unet_*``, ``ldm.text_*``)."""

    image_size: int = 64
    latent_channels: int = 4
    vae_channels: tuple[int, ...] = (16, 32, 64)
    unet_channels: tuple[int, ...] = (32, 64, 64)
    unet_layers_per_block: int = 1
    unet_attention: tuple[bool, ...] = (True, True, False)  # per level, from the highest resolution down
    unet_heads: int = 8
    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 4


def tiny_shapes(cfg, latent_channels: int = 4) -> TinyShapes:
    """The tiny architecture a config asks for (``image_size``, ``vae.channels``, ``ldm.unet_*``, ``ldm.text_*``)."""
    c = cfg.ldm
    return TinyShapes(image_size=cfg.image_size, latent_channels=latent_channels, vae_channels=tuple(cfg.vae.channels),
                      unet_channels=tuple(c.unet_channels), unet_layers_per_block=c.unet_layers_per_block,
                      unet_attention=tuple(bool(a) for a in c.unet_attention), unet_heads=c.unet_heads,
                      text_dim=c.text_dim, text_layers=c.text_layers, text_heads=c.text_heads)


def tiny_vae(s: TinyShapes = TinyShapes()) -> AutoencoderKL:
    n = len(s.vae_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=s.vae_channels,
                         layers_per_block=1, latent_channels=s.latent_channels, norm_num_groups=16,
                         sample_size=s.image_size)


def tiny_unet(s: TinyShapes = TinyShapes(), cross_attention_dim: int | None = None,
              downscale: int | None = None, image_input: bool = True) -> UNet2DConditionModel:
    """An 8-channel-style UNet: input [z_t ; E(X)] (2 x latent channels), output one latent.

    ``unet_attention`` says which levels hold (self + cross) attention blocks; the up path mirrors the down path.
    At least one level must, or the conditioning would never reach the UNet. ``image_input=False``: a
    text-to-image UNet (input z_t only), as the SDEdit / ProxNPI baselines use.
    """
    if len(s.unet_attention) != len(s.unet_channels):
        raise ValueError(f"ldm.unet_attention has {len(s.unet_attention)} entries, ldm.unet_channels "
                         f"{len(s.unet_channels)}: give one true/false per level")
    if not any(s.unet_attention):
        raise ValueError("ldm.unet_attention: at least one level needs attention (the conditioning enters there)")
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in s.unet_attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(s.unet_attention))
    factor = downscale or 2 ** (len(s.vae_channels) - 1)
    return UNet2DConditionModel(sample_size=s.image_size // factor, in_channels=(2 if image_input else 1) * s.latent_channels,
                                out_channels=s.latent_channels, down_block_types=down, up_block_types=up,
                                block_out_channels=s.unet_channels, layers_per_block=s.unet_layers_per_block,
                                cross_attention_dim=cross_attention_dim or s.text_dim, attention_head_dim=s.unet_heads,
                                norm_num_groups=16)


def tiny_text_encoder(tokenizer, s: TinyShapes = TinyShapes()) -> CLIPTextModel:
    """A small random CLIP text encoder. Frozen and untrained: distinct texts still give distinct states."""
    cfg = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=s.text_dim, intermediate_size=2 * s.text_dim,
                         num_hidden_layers=s.text_layers, num_attention_heads=s.text_heads,
                         max_position_embeddings=tokenizer.model_max_length, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)  # the frozen random encoder is part of the recipe: make it reproducible
    return CLIPTextModel(cfg)


def zero_last_conv(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """Zero ``conv_out``: a residual head then starts as "copy the input frame" instead of noise."""
    torch.nn.init.zeros_(unet.conv_out.weight)
    torch.nn.init.zeros_(unet.conv_out.bias)
    return unet


PROGRESS_SCALE = 1000.0  # progress p in [0, 1] enters the UNet as a "class label" p x 1000, on the timesteps' scale


def add_progress_embedding(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """The same UNet with a progress input (``ldm.progress``): diffusers' ``class_embed_type="timestep"`` — p x 1000
    through the timestep's sinusoids and an MLP, added to the time embedding. Its last layer starts at zero, so a
    pre-trained UNet (the paper preset's SD-1.5 / InstructPix2Pix) starts out exactly as it was."""
    if takes_progress(unet):
        return unet
    if unet.config.class_embed_type is not None or unet.config.num_class_embeds:
        raise ValueError(f"the UNet already has a class embedding ({unet.config.class_embed_type}); cannot add progress")
    new = UNet2DConditionModel.from_config(dict(unet.config), class_embed_type="timestep")
    missing, unexpected = new.load_state_dict(unet.state_dict(), strict=False)
    if unexpected or any(not k.startswith("class_embedding.") for k in missing):
        raise ValueError(f"progress embedding: unexpected keys {unexpected[:3]}, missing {missing[:3]}")
    torch.nn.init.zeros_(new.class_embedding.linear_2.weight)
    torch.nn.init.zeros_(new.class_embedding.linear_2.bias)
    return new


def takes_progress(unet) -> bool:
    """Whether a UNet has the progress input of ``add_progress_embedding`` (a model trained with ``ldm.progress``)."""
    return unet.config.class_embed_type == "timestep"


def progress_labels(unet, progress, batch: int, device) -> torch.Tensor | None:
    """The UNet's ``class_labels`` for progress ``p`` (a float, or one per sample): None for a UNet without a progress
    input, which refuses a progress other than 1 (the single-frame task it was trained for)."""
    if not takes_progress(unet):
        if progress is not None and torch.any(torch.as_tensor(progress, dtype=torch.float32) != 1):
            raise InputError("action_progress", "this model was trained on single frames (ldm.progress: false): it "
                             "can only draw the action done (progress 1); train one on timeline pairs for --frames")
        return None
    p = torch.ones(batch) if progress is None else torch.as_tensor(progress, dtype=torch.float32).flatten()
    if p.numel() == 1:
        p = p.expand(batch)
    if p.numel() != batch or bool(((p < 0) | (p > 1)).any()):
        raise InputError("action_progress", f"progress must be {batch} value(s) in [0, 1], got {p.tolist()}")
    return (p * PROGRESS_SCALE).to(device)


def start_from(parts: dict, folder: str | Path) -> None:
    """Load a trained model folder's UNet and conditioner weights into ``parts`` (``ldm.init_from``): e.g. a
    single-frame model extended with ``ldm.progress``, whose zero-initialised progress input is all it lacks."""
    from safetensors.torch import load_file

    for name in ("unet", "conditioner"):
        files = sorted((Path(folder) / name).glob("*.safetensors"))
        if not files:
            raise MissingInput("init_from", f"{Path(folder) / name} holds no safetensors weights (give a model folder, "
                               "<train out>/model)")
        state = {k: v for f in files for k, v in load_file(f).items()}
        try:
            missing, unexpected = parts[name].load_state_dict(state, strict=False)
        except RuntimeError as e:  # a shape mismatch: another width or mode
            raise InputError("init_from", f"{folder}: its {name} has other shapes than this recipe's "
                             f"({str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e})") from None
        bad = unexpected + [k for k in missing if not k.startswith("class_embedding.")]
        if bad:
            raise InputError("init_from", f"{folder}: its {name} does not fit this recipe's ({len(bad)} keys differ, "
                             f"first {bad[0]!r})")


def expand_conv_in(unet4: UNet2DConditionModel) -> UNet2DConditionModel:
    """A 4-input-channel UNet -> 8 channels: old weights in channels 0-3, zeros in 4-7, bias kept."""
    cfg = dict(unet4.config)
    if cfg["in_channels"] != 4:
        raise ValueError(f"expected a 4-channel UNet to expand, got in_channels={cfg['in_channels']}")
    cfg["in_channels"] = 8
    unet8 = UNet2DConditionModel.from_config(cfg)
    state = unet4.state_dict()
    w = state["conv_in.weight"]  # (C, 4, k, k)
    state["conv_in.weight"] = torch.cat([w, torch.zeros_like(w)], dim=1)  # (C, 8, k, k)
    unet8.load_state_dict(state)
    return unet8


def load_unet(folder: str | Path) -> UNet2DConditionModel:
    """The UNet of a local SD-1.5 or InstructPix2Pix folder, as an 8-channel UNet."""
    unet = UNet2DConditionModel.from_pretrained(str(folder), subfolder="unet", local_files_only=True)
    if unet.config.in_channels == 8:
        return unet
    return expand_conv_in(unet)


def load_paper_components(base: str | Path) -> dict:
    """UNet (8 ch), VAE, CLIP text encoder and tokenizer from a local diffusers folder."""
    folder = Path(base)
    if not (folder / "unet").is_dir():
        raise MissingInput("base", f"{folder} is not a diffusers folder (no unet/); give a local "
                           "stable-diffusion-v1-5 or instruct-pix2pix download")
    return {"unet": load_unet(folder),
            "vae": AutoencoderKL.from_pretrained(str(folder), subfolder="vae", local_files_only=True),
            "text_encoder": CLIPTextModel.from_pretrained(str(folder), subfolder="text_encoder", local_files_only=True),
            "tokenizer": AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)}


@torch.no_grad()
def encode_text(tokenizer, text_encoder, texts: list[str]) -> torch.Tensor:
    """ψ: (B, N, D) last hidden states, padded to the tokenizer's max length (as InstructPix2Pix)."""
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(text_encoder.device)
    return text_encoder(ids)[0]
