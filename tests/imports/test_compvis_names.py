"""The CompVis names the importer expects are the official modules' names, and diffusers' converter maps each one
back to the parameter it names (so the tests' checkpoints and the release share one layout)."""

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu

from egolego.imports.compvis_names import ema_name, unet_names, vae_names
from egolego.paper_shapes import sd15_configs

# names and shapes of the official openaimodel.UNetModel / Encoder+Decoder at the release's config (see "source")
OFFICIAL = json.loads((Path(__file__).parent / "fixtures" / "sd15_official_shapes.json").read_text())


def _meta(cls, cfg):
    with torch.device("meta"):
        m = cls(**cfg)
    return dict(m.config), {k: tuple(v.shape) for k, v in m.state_dict().items()}


def _lego_unet_cfg() -> dict:
    return {**sd15_configs()["unet"], "in_channels": 8}  # the release: SD-1.5 with InstructPix2Pix's 8 inputs


def test_unet_names_and_shapes_are_the_official_modules():
    cfg, shapes = _meta(UNet2DConditionModel, _lego_unet_cfg())
    names = unet_names(cfg, shapes)
    assert {names[k]: list(s) for k, s in shapes.items()} == OFFICIAL["unet"]


def test_vae_names_and_shapes_are_the_official_modules():
    cfg, shapes = _meta(AutoencoderKL, sd15_configs()["vae"])
    names = vae_names(cfg, shapes)
    ours = {names[k]: list(s) for k, s in shapes.items()}
    assert set(ours) == set(OFFICIAL["vae"])
    for k, s in OFFICIAL["vae"].items():  # the official attention holds 1x1 convs, diffusers linears
        assert ours[k] == s or (ours[k] == s[:2] and s[2:] == [1, 1]), k


def _tagged(names: dict[str, str], shapes: dict, prefix: str, conv: bool = False) -> dict:
    """{prefix + CompVis name: a tiny tensor holding the parameter's index} (ndim as the official tensor's)."""
    out = {}
    for i, (k, c) in enumerate(names.items()):
        ndim = len(shapes[k]) + (2 if conv and "attentions" in k and len(shapes[k]) == 2 else 0)
        out[prefix + c] = torch.full((1,) * ndim, float(i))
    return out


UNETS = {"sd15": _lego_unet_cfg(),
         "tiny-mixed": dict(in_channels=8, out_channels=4, block_out_channels=(32, 64, 64), layers_per_block=2,
                            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                            cross_attention_dim=32, attention_head_dim=8)}


@pytest.mark.parametrize("which", sorted(UNETS))
def test_diffusers_unet_converter_inverts_the_names(which):
    cfg, shapes = _meta(UNet2DConditionModel, UNETS[which])
    names = unet_names(cfg, shapes)
    got = sfu.convert_ldm_unet_checkpoint(_tagged(names, shapes, "model.diffusion_model."), cfg)
    assert set(got) == set(shapes)
    assert all(int(got[k].flatten()[0]) == i for i, k in enumerate(names))


def test_diffusers_vae_converter_inverts_the_names():
    cfg, shapes = _meta(AutoencoderKL, sd15_configs()["vae"])
    names = vae_names(cfg, shapes)
    got = sfu.convert_ldm_vae_checkpoint(_tagged(names, shapes, "first_stage_model.", conv=True), cfg)
    assert set(got) == set(shapes)
    assert all(int(got[k].flatten()[0]) == i and got[k].ndim == len(shapes[k]) for i, k in enumerate(names))


def test_ema_names_are_litema_names():
    """LitEma registers each parameter of the wrapper (``diffusion_model.<name>``) with its dots removed."""
    assert ema_name("input_blocks.0.0.weight") == "model_ema.diffusion_modelinput_blocks00weight"
    names = OFFICIAL["unet"]
    assert len({ema_name(k) for k in names}) == len(names)  # no two parameters share a flat name
