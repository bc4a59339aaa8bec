"""The official LEGO LDM checkpoint's layout: its architecture read from key names and shapes, and a ledger that
accounts for every key.

The official loader takes the checkpoint with ``strict=False``, so a wrong file loads silently. Here each key of
``state_dict`` must be *used* (UNet, VAE, CLIP text, σ/μ/π) or *knowingly dropped* (noise-schedule buffers that the
scheduler config replaces, LitEma's bookkeeping, the copy of the UNet weights not chosen, transformers' rebuilt
``position_ids``); anything else, a missing key or a shape that does not fit is reported in one line that names it.

The architecture is read from the checkpoint rather than assumed, so the same code imports the release (SD-1.5
width: 320 channels, [1, 2, 4, 4], 8-channel input, context 768, D_vllm 5120) and the tiny-width files of the tests.
Only head counts are invisible in weights: the official configs use 8 for the UNet and for the mixer π.
"""

from __future__ import annotations

import re

import torch

from ..errors import InputError

UNET = "model.diffusion_model."
EMA = "model_ema."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer."
EMA_BOOKKEEPING = ("model_ema.decay", "model_ema.num_updates")
POSITION_IDS = CLIP + "text_model.embeddings.position_ids"
# DDPM's registered buffers (ddpm.py register_schedule); the scheduler config written with the model replaces them
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")
# the official attribute -> our LegoConditioner attribute
MIXER = {"projection_img": "sigma", "projection_txt": "mu", "self_attn_mix": "pi"}


class Ledger:
    """Where every checkpoint key went; ``check()`` raises one line naming what does not fit."""

    def __init__(self, sd: dict[str, torch.Tensor], path, arg: str = "ldm", layout: str = "the official LEGO layout"):
        self.sd, self.path, self.arg, self.layout = sd, path, arg, layout
        self.used: dict[str, str] = {}  # key -> the part it builds
        self.dropped: dict[str, str] = {}  # key -> why it is not needed
        self.missing: list[str] = []
        self.misshaped: dict[str, str] = {}  # key -> "(got) (expected (want))"

    def need(self, key: str) -> torch.Tensor:
        """A key the architecture is read from: missing is fatal at once."""
        if key not in self.sd:
            raise InputError(self.arg, f"{self.path}: missing key {key}")
        return self.sd[key]

    def expect(self, expected: dict[str, tuple[int, ...]], part: str, drop: str | None = None,
               alt_shapes: dict[str, tuple[int, ...]] | None = None) -> None:
        """Each expected key must be there with its shape (or ``alt_shapes[key]``); it builds ``part`` (or is
        dropped for reason ``drop``)."""
        for k, shape in expected.items():
            if k not in self.sd:
                self.missing.append(k)
                continue
            got = tuple(self.sd[k].shape)
            if got != tuple(shape) and got != tuple((alt_shapes or {}).get(k, shape)):
                self.misshaped[k] = f"{got} (expected {tuple(shape)})"
            elif drop is None:
                self.used[k] = part
            else:
                self.dropped[k] = drop

    def drop(self, key: str, why: str) -> None:
        if key in self.sd:
            self.dropped[key] = why

    def unexpected(self) -> list[str]:
        return [k for k in self.sd if k not in self.used and k not in self.dropped and k not in self.misshaped]

    def check(self) -> None:
        extra = self.unexpected()
        parts = []
        if self.missing:
            parts.append(f"missing key {self.missing[0]}")
        if self.misshaped:
            k = next(iter(self.misshaped))
            parts.append(f"mis-shaped key {k} {self.misshaped[k]}")
        if extra:
            parts.append(f"unexpected key {extra[0]}")
        n = len(self.missing) + len(self.misshaped) + len(extra)
        if n:
            more = f" ({n} keys do not fit: {len(self.missing)} missing, {len(self.misshaped)} mis-shaped, " \
                   f"{len(extra)} unexpected)" if n > 1 else ""
            raise InputError(self.arg, f"{self.path}: not {self.layout}: {'; '.join(parts)}{more}")

    def summary(self) -> dict:
        count: dict[str, int] = {}
        for part in self.used.values():
            count[part] = count.get(part, 0) + 1
        why: dict[str, int] = {}
        for reason in self.dropped.values():
            why[reason] = why.get(reason, 0) + 1
        return {"keys": len(self.sd), "used": count, "dropped": why}


def indices(keys, pattern: str) -> list[int]:
    """The integers captured by ``pattern`` (one group) over ``keys``, sorted and unique."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def unet_params(led: Ledger, heads: int) -> dict:
    """``openaimodel.UNetModel``'s constructor arguments, read from ``model.diffusion_model.*``."""
    keys = [k[len(UNET):] for k in led.sd if k.startswith(UNET)]
    ch, in_ch = led.need(UNET + "input_blocks.0.0.weight").shape[:2]
    n_in = len(indices(keys, r"input_blocks\.(\d+)\."))
    downs = indices(keys, r"input_blocks\.(\d+)\.0\.op\.weight")
    per = downs[0] - 1 if downs else n_in - 1  # input_blocks: conv_in, then per level `per` blocks + a downsampler
    levels = len(downs) + 1
    first = [1 + i * (per + 1) for i in range(levels)]  # the first block of each level
    mult = [led.need(f"{UNET}input_blocks.{b}.0.out_layers.3.weight").shape[0] // ch for b in first]
    attn = [i for i, b in enumerate(first) if f"input_blocks.{b}.1.proj_in.weight" in keys]
    if not attn:
        raise InputError("ldm", f"{led.path}: {UNET}* has no cross-attention block (input_blocks.N.1.*): "
                         "not a text-conditioned SD UNet")
    b = first[attn[0]]
    depth = len(indices(keys, rf"input_blocks\.{b}\.1\.transformer_blocks\.(\d+)\."))
    context = led.need(f"{UNET}input_blocks.{b}.1.transformer_blocks.0.attn2.to_k.weight").shape[1]
    linear = led.need(f"{UNET}input_blocks.{b}.1.proj_in.weight").ndim == 2
    return {"in_channels": int(in_ch), "out_channels": int(led.need(UNET + "out.2.weight").shape[0]),
            "model_channels": int(ch), "channel_mult": mult, "num_res_blocks": per,
            "attention_resolutions": [2 ** i for i in attn], "transformer_depth": depth, "context_dim": int(context),
            "num_heads": heads, "use_linear_in_transformer": linear}


def vae_ddconfig(led: Ledger) -> dict:
    """``diffusionmodules.model.Encoder``'s ``ddconfig``, read from ``first_stage_model.*``."""
    keys = [k[len(VAE):] for k in led.sd if k.startswith(VAE)]
    ch, in_ch = led.need(VAE + "encoder.conv_in.weight").shape[:2]
    levels = len(indices(keys, r"encoder\.down\.(\d+)\."))
    per = len(indices(keys, r"encoder\.down\.0\.block\.(\d+)\."))
    mult = [led.need(f"{VAE}encoder.down.{i}.block.0.conv2.weight").shape[0] // ch for i in range(levels)]
    return {"ch": int(ch), "ch_mult": mult, "num_res_blocks": per, "in_channels": int(in_ch),
            "out_ch": int(led.need(VAE + "decoder.conv_out.weight").shape[0]),
            "z_channels": int(led.need(VAE + "post_quant_conv.weight").shape[0]), "double_z": True}


def mixer_params(led: Ledger, heads: int) -> dict:
    """``LegoConditioner``'s sizes, read from ``projection_img`` and ``self_attn_mix``."""
    d, d_vllm = led.need("projection_img.weight").shape
    layers = len(indices(led.sd, r"self_attn_mix\.layers\.(\d+)\."))
    ffn = led.need("self_attn_mix.layers.0.linear1.weight").shape[0]
    if d % heads:
        raise InputError("ldm", f"{led.path}: projection_img gives width {d}, not divisible into {heads} heads")
    return {"vllm_dim": int(d_vllm), "cross_attention_dim": int(d), "num_layers": layers, "num_heads": heads,
            "ffn_dim": int(ffn)}


def official_name(conditioner_key: str) -> str:
    """``sigma.weight`` -> ``projection_img.weight``, ``pi.layers.0.linear1.bias`` -> ``self_attn_mix.layers...``."""
    head, rest = conditioner_key.split(".", 1)
    return {ours: theirs for theirs, ours in MIXER.items()}[head] + "." + rest
