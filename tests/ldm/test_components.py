"""Loading paper-style folders: SD-1.5 (4-channel UNet, expanded to 8) and InstructPix2Pix (already 8)."""

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from egolego.ldm.components import TinyShapes, load_paper_components, tiny_text_encoder, tiny_unet, tiny_vae


def _write_folder(root, tokenizer, in_channels):
    torch.manual_seed(0)
    s = TinyShapes()
    cfg = dict(tiny_unet(s).config)
    cfg["in_channels"] = in_channels
    unet = UNet2DConditionModel.from_config(cfg)
    with torch.no_grad():
        unet.conv_in.bias.normal_()
    unet.save_pretrained(root / "unet")
    tiny_vae(s).save_pretrained(root / "vae")
    tiny_text_encoder(tokenizer, s).save_pretrained(root / "text_encoder")
    tokenizer.save_pretrained(root / "tokenizer")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(root / "scheduler")
    return unet


def test_sd15_layout_expands_conv_in(tokenizer, tmp_path):
    src = _write_folder(tmp_path, tokenizer, 4)
    parts = load_paper_components(tmp_path)
    unet = parts["unet"]
    assert unet.config.in_channels == 8
    w_old, w_new = src.conv_in.weight, unet.conv_in.weight
    torch.testing.assert_close(w_new[:, :4], w_old)
    assert torch.count_nonzero(w_new[:, 4:]) == 0
    torch.testing.assert_close(unet.conv_in.bias, src.conv_in.bias)  # bias kept
    other_old, other_new = src.state_dict(), unet.state_dict()
    assert all(torch.equal(other_old[k], other_new[k]) for k in other_old if not k.startswith("conv_in"))
    # zero extra channels: the 8-channel UNet with any image latent = the 4-channel UNet on the noisy latent
    z, x = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 16, 16)
    ctx = torch.randn(1, 77, 64)
    with torch.no_grad():
        torch.testing.assert_close(unet(torch.cat([z, x], 1), 10, ctx).sample, src(z, 10, ctx).sample)


def test_instruct_pix2pix_layout_loads_as_is(tokenizer, tmp_path):
    src = _write_folder(tmp_path, tokenizer, 8)
    unet = load_paper_components(tmp_path)["unet"]
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), unet.state_dict().values()))


def test_not_a_diffusers_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="diffusers folder"):
        load_paper_components(tmp_path)


def test_unet_attention_levels_and_heads_come_from_the_config(tokenizer, tmp_path):
    """ldm.unet_attention picks the levels with transformer blocks (mirrored on the way up); ldm.unet_heads the heads."""
    from egolego import config
    from egolego.ldm.build import build_components

    tokenizer.save_pretrained(tmp_path / "tok")
    cfg = config.preset("tiny")
    cfg.ldm.tokenizer, cfg.ldm.conditioning = str(tmp_path / "tok"), "desc"
    cfg.ldm.unet_channels, cfg.ldm.unet_attention, cfg.ldm.unet_heads = [32, 64, 64], [False, True, False], 2
    unet = build_components(cfg, vllm_dim=96, image_tokens=16, text_tokens=77)["unet"]
    assert unet.config.down_block_types == ("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
    assert unet.config.up_block_types == ("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")
    assert {m.heads for m in unet.modules() if m.__class__.__name__ == "Attention"} == {2}
    cfg.ldm.unet_attention, cfg.ldm.unet_heads = [True, True, False], 4
    unet = build_components(cfg, vllm_dim=96, image_tokens=16, text_tokens=77)["unet"]
    assert unet.config.down_block_types[0] == "CrossAttnDownBlock2D"
    assert {m.heads for m in unet.modules() if m.__class__.__name__ == "Attention"} == {4}
    with pytest.raises(ValueError, match="unet_attention has 2 entries"):
        tiny_unet(TinyShapes(unet_channels=(32, 64, 64), unet_attention=(True, False)))
    with pytest.raises(ValueError, match="at least one level"):
        tiny_unet(TinyShapes(unet_channels=(32, 64, 64), unet_attention=(False, False, False)))


def test_ldm_seed_reaches_the_tiny_unet_weights(tokenizer, tmp_path):
    """ψ is seeded on its own (the same frozen encoder for every run); the UNet follows ldm.seed."""
    from egolego import config
    from egolego.ldm.build import build_components

    tokenizer.save_pretrained(tmp_path / "tok")

    def parts(seed):
        cfg = config.preset("tiny")
        cfg.ldm.tokenizer, cfg.ldm.conditioning, cfg.ldm.seed, cfg.ldm.residual = str(tmp_path / "tok"), "desc", seed, False
        return build_components(cfg, vllm_dim=96, image_tokens=16, text_tokens=77)

    a, b, c = parts(0), parts(0), parts(1)
    assert torch.equal(a["unet"].conv_in.weight, b["unet"].conv_in.weight)
    assert not torch.equal(a["unet"].conv_in.weight, c["unet"].conv_in.weight)
    psi = [p["text_encoder"].get_input_embeddings().weight for p in (a, c)]
    assert torch.equal(*psi)
