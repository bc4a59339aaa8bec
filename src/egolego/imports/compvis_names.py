"""The CompVis (``ldm``) parameter name of every parameter of a diffusers SD UNet or KL VAE, and LitEma's flat names.

Why this exists next to diffusers' single-file converters (which do the actual conversion in ``official_ldm``):
those converters only go CompVis -> diffusers and silently skip what is absent, so they cannot say *which*
checkpoint key is missing or mis-shaped. This inverse, built from the layout rules ``openaimodel.UNetModel`` and
``diffusionmodules.model.{Encoder,Decoder}`` follow, names the expected keys; the tests check that diffusers'
converter maps every name back to the parameter it came from, at tiny width and at SD-1.5 size against the names
the official modules produce (``tests/imports/fixtures``).
"""

from __future__ import annotations

# diffusers resnet sub-module -> CompVis ResBlock sub-module (UNet)
_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
# diffusers VAE attention sub-module -> CompVis AttnBlock sub-module (1x1 convs there, linears in diffusers)
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_VAE_SAME = ("conv_in", "conv_out", "quant_conv", "post_quant_conv")


def unet_prefixes(cfg: dict) -> dict[str, str]:
    """diffusers module prefix -> CompVis module prefix for a ``UNet2DConditionModel`` config."""
    n = len(cfg["block_out_channels"])
    per = cfg["layers_per_block"]
    out = {}
    for i, kind in enumerate(cfg["down_block_types"]):
        for j in range(per):
            k = 1 + i * (per + 1) + j  # input_blocks.0 is conv_in; each level: `per` blocks + a downsampler
            out[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{k}.0"
            if kind.startswith("CrossAttn"):
                out[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{k}.1"
        if i < n - 1:
            out[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{(i + 1) * (per + 1)}.0.op"
    out.update({"mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
                "mid_block.resnets.1": "middle_block.2"})
    for i, kind in enumerate(cfg["up_block_types"]):
        attn = kind.startswith("CrossAttn")
        for j in range(per + 1):
            k = i * (per + 1) + j
            out[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{k}.0"
            if attn:
                out[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{k}.1"
        if i < n - 1:  # the upsampler follows the level's last block, after its attention when there is one
            out[f"up_blocks.{i}.upsamplers.0.conv"] = f"output_blocks.{i * (per + 1) + per}.{2 if attn else 1}.conv"
    return out


def unet_names(cfg: dict, diffusers_keys) -> dict[str, str]:
    """{diffusers key: CompVis key (without ``model.diffusion_model.``)} for every key of the UNet."""
    prefixes = unet_prefixes(cfg)
    names = {}
    for key in diffusers_keys:
        module, param = key.rsplit(".", 1)
        names[key] = f"{_unet_module(module, prefixes)}.{param}"
    return names


def _unet_module(module: str, prefixes: dict[str, str]) -> str:
    if module in _UNET_TOP:
        return _UNET_TOP[module]
    for dp, cp in prefixes.items():
        if module == dp:
            return cp
        if module.startswith(dp + "."):
            rest = module[len(dp) + 1:]
            if ".resnets." in dp:
                rest = _UNET_RESNET.get(rest, rest)
            return f"{cp}.{rest}"  # transformer internals keep their names (proj_in, transformer_blocks.*, ...)
    raise KeyError(f"no CompVis name for the diffusers UNet module {module!r}")


def vae_names(cfg: dict, diffusers_keys) -> dict[str, str]:
    """{diffusers key: CompVis key (without ``first_stage_model.``)} for every key of an ``AutoencoderKL``."""
    n = len(cfg["block_out_channels"])
    names = {}
    for key in diffusers_keys:
        module, param = key.rsplit(".", 1)
        names[key] = f"{_vae_module(module, n)}.{param}"
    return names


def _vae_module(module: str, n_levels: int) -> str:
    if module in _VAE_SAME or module.split(".", 1)[-1] in _VAE_SAME:
        return module
    part, rest = module.split(".", 1)  # encoder / decoder
    if rest == "conv_norm_out":
        return f"{part}.norm_out"
    bits = rest.split(".")
    if bits[0] in ("down_blocks", "up_blocks"):
        level = int(bits[1]) if bits[0] == "down_blocks" else n_levels - 1 - int(bits[1])  # CompVis up is reversed
        side = "down" if bits[0] == "down_blocks" else "up"
        if bits[2] == "resnets":
            inner = ".".join(bits[4:]).replace("conv_shortcut", "nin_shortcut")
            return f"{part}.{side}.{level}.block.{bits[3]}.{inner}"
        sampler = "downsample" if side == "down" else "upsample"
        return f"{part}.{side}.{level}.{sampler}.{'.'.join(bits[4:])}"  # (down|up)samplers.0.conv -> ...sample.conv
    if bits[0] == "mid_block":
        inner = ".".join(bits[3:])
        if bits[1] == "resnets":
            return f"{part}.mid.block_{int(bits[2]) + 1}.{inner.replace('conv_shortcut', 'nin_shortcut')}"
        return f"{part}.mid.attn_{int(bits[2]) + 1}.{_VAE_ATTN.get(inner, inner)}"
    raise KeyError(f"no CompVis name for the diffusers VAE module {module!r}")


def ema_name(compvis_unet_key: str) -> str:
    """LitEma's buffer name of a UNet parameter: ``model_ema.`` + its name under the wrapper, dots removed
    (``input_blocks.0.0.weight`` -> ``model_ema.diffusion_modelinput_blocks00weight``)."""
    return "model_ema." + ("diffusion_model." + compvis_unet_key).replace(".", "")
