"""Seconds per 256-px image of the LDM alone at the release's sizes: our ``LegoPipeline`` beside diffusers'
``StableDiffusionInstructPix2PixPipeline``, with the same random-weight SD-1.5-size components, on the CPU.

Both get the UNet (8 input channels, SD-1.5 widths), the KL-f8 VAE, a CLIP ViT-L/14-size text encoder and
Euler-ancestral at ``BENCH_STEPS`` steps, batch 1, the three guidance branches in one UNet call each step. LEGO's
cross-attention context is 410 tokens (77 + 256 + 77, the release's σ(H_i) and π(μ(H_t)) from random 5,120-wide
embeddings), InstructPix2Pix's 77: that is the difference the numbers show. Weights are random (uniform ±0.02) —
speed does not depend on them; building the models takes longer than a few steps.

A third timing, ``lego_bf16``, is our pipeline with its weights in bfloat16 and the UNet channels-last (the CPU's
AVX512-BF16 / AMX units; the release sampled in fp16 on GPUs): the CPU path the issue asks to make faster, measured
beside the two fp32 ones in the same run, with its largest pixel difference to the fp32 frame.

Prints one JSON line. ``BENCH_STEPS`` (default 2), ``BENCH_REPEAT`` (default 1), ``BENCH_TINY=1`` (tiny widths, a
smoke run of the script itself). Memory at SD-1.5 size: ~5 GB in fp32.
"""

import json
import os
import platform
import tempfile
import time

import PIL.Image
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from egolego.imports.official_ldm import official_scheduler
from egolego.ldm.conditioner import LegoConditioner
from egolego.ldm.pipeline import LegoPipeline
from egolego.paper_shapes import sd15_configs
from egolego.tokenizer import train_tokenizer

STEPS = int(os.environ.get("BENCH_STEPS", 2))
REPEAT = int(os.environ.get("BENCH_REPEAT", 1))
TINY = os.environ.get("BENCH_TINY") == "1"
SIZE, M, DV = 256, 256, 5120  # the release: 256 px, H_i 256 x 5120


def _random(cls, *args, **kwargs):
    """A model built on the meta device, then filled with uniform ±0.02 (faster than its own init at 860 M)."""
    with init_empty_weights():
        m = cls(*args, **kwargs)
    m.to_empty(device="cpu")
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.02, 0.02)
        for name, b in m.named_buffers():
            if "position_ids" in name:
                b.copy_(torch.arange(b.shape[-1]).expand_as(b))
    return m.eval()


def components(tok) -> dict:
    c = sd15_configs(tiny=TINY)
    text = CLIPTextConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, **c["text"])
    return {"unet": _random(UNet2DConditionModel, **{**c["unet"], "in_channels": 8, "sample_size": SIZE // 8}),
            "vae": _random(AutoencoderKL, **c["vae"]), "text_encoder": _random(CLIPTextModel, text), "tokenizer": tok,
            "scheduler": official_scheduler()}


def _time(fn) -> float:
    fn(num_inference_steps=1)  # warm-up: first-call allocations and kernel selection are not per-image costs
    t0 = time.perf_counter()
    for _ in range(REPEAT):
        fn(num_inference_steps=STEPS)
    return (time.perf_counter() - t0) / REPEAT


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tok = train_tokenizer(["the person opens the drawer with the right hand"] * 4, d, vocab_size=300)
    t_build = time.perf_counter()
    parts = components(tok)
    width = parts["unet"].config.cross_attention_dim
    cond = _random(LegoConditioner, vllm_dim=DV, cross_attention_dim=width, ffn_dim=2048, mode="lego", image_tokens=M)
    lego = LegoPipeline(**parts, conditioner=cond)
    ip2p = StableDiffusionInstructPix2PixPipeline(**parts, safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False)
    t_build = time.perf_counter() - t_build
    image = PIL.Image.new("RGB", (SIZE, SIZE), (120, 90, 60))
    prompt = "the person opens the drawer with the right hand"
    h_img, h_txt = torch.randn(1, M, DV) * 0.02, torch.randn(1, 77, DV) * 0.02  # (1, 256, 5120), (1, 77, 5120)
    kw = {"image_guidance_scale": 1.5}
    with torch.inference_mode():
        t_lego = _time(lambda **steps: lego(image, prompt, h_img=h_img, h_txt=h_txt, h_len=torch.tensor([77]),
                                            condition_guidance_scale=7.5, generator=torch.Generator().manual_seed(0),
                                            progress=False, **kw, **steps))
        ip2p.set_progress_bar_config(disable=True)
        t_ip2p = _time(lambda **steps: ip2p(prompt, image=image, guidance_scale=7.5,
                                            generator=torch.Generator().manual_seed(0), **kw, **steps))
        run = lambda **steps: lego(image, prompt, h_img=h_img, h_txt=h_txt, h_len=torch.tensor([77]),  # noqa: E731
                                   condition_guidance_scale=7.5, generator=torch.Generator().manual_seed(0),
                                   progress=False, output_type="np", **kw, **steps).images
        ref = run(num_inference_steps=STEPS)
        lego.to(dtype=torch.bfloat16)
        lego.unet.to(memory_format=torch.channels_last)
        t_bf16 = _time(run)
        diff = float(abs(run(num_inference_steps=STEPS).astype("float32") - ref.astype("float32")).max())
    print(json.dumps({"bench": "paper_ldm_cpu", "widths": "tiny" if TINY else "sd15", "size": SIZE, "steps": STEPS,
                      "repeat": REPEAT, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                      "lego_s_per_image": round(t_lego, 3), "ip2p_s_per_image": round(t_ip2p, 3),
                      "lego_over_ip2p": round(t_lego / t_ip2p, 3), "lego_bf16_s_per_image": round(t_bf16, 3),
                      "ip2p_fp32_over_lego_bf16": round(t_ip2p / t_bf16, 3), "bf16_max_abs_diff": round(diff, 4), "context_tokens": {"lego": 410, "ip2p": 77},
                      "build_s": round(t_build, 1), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
