"""The tiny LDM's training step with PyTorch's default AdamW + diffusers' default EMA (per-parameter Python loops
on the CPU) against ``egolego.optim`` (fused AdamW, foreach EMA). Prints one JSON line.

Why: the tiny UNet + conditioner have ~300 parameter tensors; at 64 px the update loop is a visible part of a step.
Both arms run the same model shapes (the tiny preset, ``lego`` context: ψ 77 + H_i 64 + H_t 77 tokens), batch, and
precision (bf16 autocast where the CPU has it, as ``ldm.mixed_precision: auto``), in the same process, in
alternating blocks so that drift in the machine's speed hits both.

    python benchmarks/bench_optim.py [--steps 40] [--blocks 3] [--batch 16]
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from diffusers.training_utils import EMAModel  # noqa: E402

from egolego import config, precision  # noqa: E402
from egolego.ldm.components import tiny_shapes, tiny_unet  # noqa: E402
from egolego.ldm.conditioner import LegoConditioner  # noqa: E402
from egolego.ldm.train import LegoDenoiser  # noqa: E402
from egolego.optim import adamw, ema  # noqa: E402


def arm(fast: bool, cfg, batch: int):
    torch.manual_seed(0)
    c = cfg.ldm
    s = tiny_shapes(cfg, latent_channels=48)
    cond = LegoConditioner(vllm_dim=cfg.vllm.tiny_llava.text_dim, cross_attention_dim=c.text_dim,
                           num_layers=c.conditioner_layers, num_heads=c.conditioner_heads, ffn_dim=c.conditioner_ffn,
                           mode="lego", image_tokens=64)
    model = LegoDenoiser(tiny_unet(s, downscale=4), cond).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = adamw(params, c.lr) if fast else torch.optim.AdamW(params, lr=c.lr)
    shadow = ema(params, c.ema_decay) if fast else EMAModel(params, decay=c.ema_decay)
    g, d = torch.Generator().manual_seed(1), cfg.vllm.tiny_llava.text_dim
    x = dict(z_t=torch.randn(batch, 48, 16, 16, generator=g), image_lat=torch.randn(batch, 48, 16, 16, generator=g),
             t=torch.rand(batch, generator=g) * 1000, text_states=torch.randn(batch, 77, c.text_dim, generator=g),
             h_img=torch.randn(batch, 64, d, generator=g), h_txt=torch.randn(batch, 77, d, generator=g),
             h_len=torch.full((batch,), 30), drop_c=torch.zeros(batch, dtype=torch.bool))
    bf16 = precision.resolve(c.mixed_precision) == "bf16"

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**x).float().pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        shadow.step(params)
        return loss.item()
    return step, len(params)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40, help="timed steps per block")
    ap.add_argument("--blocks", type=int, default=3, help="alternating blocks per arm")
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    cfg = config.preset("tiny")
    arms = {name: arm(name == "fused", cfg, a.batch) for name in ("default", "fused")}
    for step, _ in arms.values():
        for _ in range(3):
            step()  # warm-up
    spent = {name: 0.0 for name in arms}
    for _ in range(a.blocks):
        for name, (step, _) in arms.items():
            t0 = time.perf_counter()
            for _ in range(a.steps):
                step()
            spent[name] += time.perf_counter() - t0
    per = {name: spent[name] / (a.steps * a.blocks) for name in arms}
    print(json.dumps({"bench": "optim", "machine": platform.machine(), "threads": torch.get_num_threads(),
                      "precision": precision.resolve(cfg.ldm.mixed_precision), "batch": a.batch,
                      "param_tensors": arms["fused"][1], "steps": a.steps * a.blocks,
                      "default_ms_per_step": round(per["default"] * 1000, 1),
                      "fused_ms_per_step": round(per["fused"] * 1000, 1),
                      "speedup": round(per["default"] / per["fused"], 3)}))


if __name__ == "__main__":
    main()
