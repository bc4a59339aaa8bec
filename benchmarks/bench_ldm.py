"""LDM throughput: training samples/s and generation images/s; ours beside diffusers' InstructPix2Pix pipeline.

Tiny preset on CPU always; SD-1.5 / InstructPix2Pix shapes with random weights on a GPU when one is present
(reference: diffusers' IP2P pipeline on an H200 gives 3.86 images/s at batch 16 and 3.74 s per image at batch 1,
100 steps). Both pipelines run in the same process on the same components; the ratio is ours / diffusers'.
Prints one JSON line.
"""

import json
import os
import platform
import time

import torch
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
from PIL import Image

from egolego.ldm.components import TinyShapes, tiny_text_encoder, tiny_unet, tiny_vae
from egolego.ldm.conditioner import LegoConditioner
from egolego.ldm.pipeline import LegoPipeline
from egolego.ldm.train import LegoDenoiser
from egolego.tokenizer import train_tokenizer

SD15_UNET = dict(sample_size=32, in_channels=8, out_channels=4, layers_per_block=2, cross_attention_dim=768,
                 block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)


def _time(fn, repeat=3):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def tiny_parts(device):
    tok = train_tokenizer(["take the red cup on the left with the left hand"] * 20, vocab_size=300)
    s = TinyShapes()
    sched = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    return {"vae": tiny_vae(s).to(device).eval(), "text_encoder": tiny_text_encoder(tok, s).to(device).eval(),
            "tokenizer": tok, "unet": tiny_unet(s).to(device).eval(), "scheduler": sched}, s.text_dim, 64


def gpu_parts(device):
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel
    tok = train_tokenizer(["take the red cup on the left with the left hand"] * 20, vocab_size=300)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                      num_attention_heads=12, max_position_embeddings=77))
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4)
    sched = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    dt = torch.bfloat16
    return {"vae": vae.to(device, dt).eval(), "text_encoder": te.to(device, dt).eval(), "tokenizer": tok,
            "unet": UNet2DConditionModel(**SD15_UNET).to(device, dt).eval(), "scheduler": sched}, 768, 256


def generation(parts, d, size, device, batch, steps):
    cond = LegoConditioner(vllm_dim=64, cross_attention_dim=d, mode="label").to(device, parts["unet"].dtype).eval()
    ours = LegoPipeline(conditioner=cond, **parts)
    peer = StableDiffusionInstructPix2PixPipeline(safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False, **parts)
    for p in (ours, peer):
        p.set_progress_bar_config(disable=True)
    imgs = [Image.new("RGB", (size, size), (120, 90, 60))] * batch
    prompts = ["take the red cup"] * batch
    t_ours = _time(lambda: ours(imgs, prompts, num_inference_steps=steps, output_type="np"), 2)
    t_peer = _time(lambda: peer(prompts, image=imgs, num_inference_steps=steps, output_type="np"), 2)
    return {"batch": batch, "steps": steps, "ours_images_per_s": round(batch / t_ours, 3),
            "diffusers_images_per_s": round(batch / t_peer, 3), "ratio": round(t_peer / t_ours, 3)}


def guided_steps(parts, d, size, device, batch, steps=4):
    """The tiny preset's sampling guides only its high-noise steps (interval [0.6, 1]: 2 of 4); the other steps run
    the (X, C) branch alone, a batch of B instead of 3B. Same pipeline, every step guided beside the preset's interval
    (Euler-A's 4 steps sit at t/T 1, .67, .33, 0, as flow Euler's σ do)."""
    cond = LegoConditioner(vllm_dim=64, cross_attention_dim=d, mode="label").to(device, parts["unet"].dtype).eval()
    ours = LegoPipeline(conditioner=cond, **parts)
    ours.set_progress_bar_config(disable=True)
    imgs, prompts = [Image.new("RGB", (size, size), (120, 90, 60))] * batch, ["take the red cup"] * batch
    t_all, t_high = (_time(lambda lo=lo: ours(imgs, prompts, num_inference_steps=steps, guidance_interval=(lo, 1.0),
                                              output_type="np"), 5) for lo in (0.0, 0.6))
    return {"batch": batch, "steps": steps, "every_step_images_per_s": round(batch / t_all, 3),
            "interval_0.6_1_images_per_s": round(batch / t_high, 3), "ratio": round(t_all / t_high, 3)}


def training(parts, d, size, device, batch, vllm_dim, m):
    cond = LegoConditioner(vllm_dim=vllm_dim, cross_attention_dim=d, mode="lego", image_tokens=m).to(device)
    unet = parts["unet"].float().train()
    model = LegoDenoiser(unet, cond).to(device)
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    lat = size // 8 if d == 768 else size // 4
    z, x = torch.randn(batch, 4, lat, lat, device=device), torch.randn(batch, 4, lat, lat, device=device)
    text = torch.randn(batch, 77, d, device=device)
    h_img, h_txt = torch.randn(batch, m, vllm_dim, device=device), torch.randn(batch, 77, vllm_dim, device=device)
    h_len = torch.full((batch,), 40, device=device)
    drop = torch.zeros(batch, dtype=torch.bool, device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)

    def step():
        with amp:
            eps = model(z, x, torch.randint(0, 1000, (batch,), device=device), text, h_img, h_txt, h_len, drop)
        loss = torch.nn.functional.mse_loss(eps.float(), z)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()

    return {"batch": batch, "context": 77 + m + 77, "samples_per_s": round(batch / _time(step, 5), 2)}


def main():
    out = {"bench": "ldm", "machine": platform.machine(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    torch.manual_seed(0)
    parts, d, size = tiny_parts("cpu")
    out["cpu_tiny_generation"] = generation(parts, d, size, "cpu", batch=4, steps=20)
    out["cpu_tiny_guided_steps"] = guided_steps(parts, d, size, "cpu", batch=16)
    out["cpu_tiny_training"] = training(parts, d, size, "cpu", batch=16, vllm_dim=96, m=16)
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name()
        parts, d, size = gpu_parts("cuda")
        out["gpu_paper_generation_b1"] = generation(parts, d, size, "cuda", batch=1, steps=100)
        out["gpu_paper_generation_b16"] = generation(parts, d, size, "cuda", batch=16, steps=100)
        out["gpu_paper_training"] = training(parts, d, size, "cuda", batch=64, vllm_dim=4096, m=576)
    else:
        out["gpu"] = None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
