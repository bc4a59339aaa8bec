"""Seconds per image of the baselines beside LEGO at equal steps (tiny preset shapes, random weights, CPU).

LEGO: ``LegoPipeline`` in ``lego`` mode (three guidance branches in one UNet batch per step, random VLLM embeddings
of the tiny VLLM's shapes). SDEdit: diffusers' img2img at ``strength`` (round(strength · steps) steps, two CFG
branches). ProxNPI: DDIM inversion (steps UNet calls on one branch) + the P2P edit (steps calls on three branches:
source, target ∅ = source prompt, target). Same UNet widths for all (the tiny preset's), batch 1 and 4.
Prints one JSON line. ``BENCH_STEPS`` (default 20) and ``BENCH_REPEAT`` (default 2) change the work.
"""

import json
import os
import platform
import tempfile
import time

import torch

from egolego import config
from egolego.baselines.proxnpi import ProxNPI, ProxSettings
from egolego.baselines.sdedit import SDEdit, SdeditSettings
from egolego.baselines.t2i import as_sd_pipeline, build_t2i_components, t2i_config
from egolego.ldm.build import build_components
from egolego.ldm.pipeline import LegoPipeline
from egolego.tokenizer import train_tokenizer

STEPS = int(os.environ.get("BENCH_STEPS", 20))
REPEAT = int(os.environ.get("BENCH_REPEAT", 2))
M, N, DV = 16, 77, 64  # the tiny VLLM's H_i rows, H_t rows, width


def _time(fn, repeat=REPEAT):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def measure(lego, sdedit, prox, b: int, size: int) -> dict:
    x = torch.rand(b, 3, size, size) * 2 - 1  # (b, 3, S, S) in [-1, 1]
    labels = ["take red cup"] * b
    gens = [torch.Generator().manual_seed(i) for i in range(b)]
    emb = {"h_img": torch.randn(b, M, DV), "h_txt": torch.randn(b, N, DV), "h_len": torch.full((b,), 20)}
    t = {"lego": _time(lambda: lego(x, ["the person takes the red cup"] * b, num_inference_steps=STEPS,
                                    output_type="pt", progress=False, **emb)),
         "sdedit": _time(lambda: sdedit(x, labels, gens)),
         "proxnpi": _time(lambda: prox(x, labels))}
    return {"batch": b, "seconds_per_image": {k: round(v / b, 4) for k, v in t.items()},
            "proxnpi_over_lego": round(t["proxnpi"] / t["lego"], 2), "sdedit_over_lego": round(t["sdedit"] / t["lego"], 2)}


def main():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tok_dir = tempfile.mkdtemp()
    train_tokenizer(["take the red cup on the left with the left hand", "red cup", "open drawer"] * 20, tok_dir,
                    vocab_size=300)
    cfg = config.preset("tiny")
    cfg.ldm.tokenizer = tok_dir
    parts = build_components(cfg, DV, M, N)
    parts.pop("noise_scheduler")
    lego = LegoPipeline(prediction=cfg.ldm.prediction, residual=cfg.ldm.residual, **parts).to(torch.float32)
    lego.set_progress_bar_config(disable=True)
    t2i = as_sd_pipeline(build_t2i_components(t2i_config(cfg)))
    t2i.set_progress_bar_config(disable=True)
    sdedit = SDEdit(t2i, SdeditSettings(steps=STEPS))
    prox = ProxNPI(t2i, ProxSettings(steps=STEPS))
    rows = [measure(lego, sdedit, prox, b, cfg.image_size) for b in (1, 4)]
    unet_rows = {"lego": f"{STEPS} calls x 3B", "sdedit": f"{round(SdeditSettings().strength * STEPS)} calls x 2B",
                 "proxnpi": f"{STEPS} calls x B (inversion) + {STEPS} calls x 3B (edit)"}
    print(json.dumps({"bench": "baselines", "preset": "tiny", "steps": STEPS, "unet_calls_per_batch": unet_rows,
                      "results": rows, "machine": platform.machine(), "threads": torch.get_num_threads(),
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
