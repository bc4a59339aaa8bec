"""What a clip costs (issue 27 target: 4 frames at most 4x one frame on CPU, batched).

``FrameGenerator.clip`` draws K frames of one action in one batch. Timed here, in one process, side by side: one
frame, a clip of 4 in one batch, the same 4 frames drawn one call at a time, and a clip whose earlier frames start
from its last (``clip_start`` 0.75: the last frame, then three in one batch with the steps below σ = 0.75) — for
the tiny preset (64 px, its own sampler) and, with ``--paper``, an SD-1.5-shaped UNet at 256 px (random weights,
``--paper-steps`` steps). Random weights: the cost does not depend on them. Prints one JSON line.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image

from egolego import config
from egolego.ldm.components import add_progress_embedding
from egolego.ldm.generate import FrameGenerator
from egolego.ldm.pipeline import LegoPipeline
from helpers import best_of, tiny_pipeline

P4 = [0.25, 0.5, 0.75, 1.0]


def tiny(repeat: int) -> dict:
    cfg = config.preset("tiny")
    cfg.ldm.conditioning, cfg.ldm.progress = "desc", True
    with tempfile.TemporaryDirectory() as d:
        tiny_pipeline(cfg, Path(d)).save_pretrained(Path(d) / "model")
        gen = FrameGenerator(Path(d) / "model")
        img, text = Image.new("RGB", (112, 64), (120, 90, 60)), "the person takes the red cup"
        one = best_of(lambda: gen.clip(img, "take cup", [1.0], text), repeat)
        clip = best_of(lambda: gen.clip(img, "take cup", P4, text), repeat)
        seq = best_of(lambda: [gen.clip(img, "take cup", [p], text) for p in P4], repeat)
        held = FrameGenerator(Path(d) / "model", clip_start=0.75)
        started = best_of(lambda: held.clip(img, "take cup", P4, text), repeat)
    return {"steps": gen.sampling.steps, "size": cfg.image_size, "frame_s": round(one, 4), "clip4_s": round(clip, 4),
            "sequential4_s": round(seq, 4), "clip4_over_frame": round(clip / one, 2),
            "sequential4_over_clip4": round(seq / clip, 2), "started4_s": round(started, 4),
            "started4_over_frame": round(started / one, 2)}


def paper(steps: int, repeat: int) -> dict:
    """An SD-1.5-shaped pipeline (``benchmarks/bench_ldm.py``'s shapes) with a progress input, bfloat16."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_ldm import gpu_parts
    from egolego.ldm.conditioner import LegoConditioner

    parts, d, size = gpu_parts("cpu")
    parts["unet"] = add_progress_embedding(parts["unet"].float()).to(torch.bfloat16).eval()
    cond = LegoConditioner(vllm_dim=64, cross_attention_dim=d, mode="label").to(torch.bfloat16).eval()
    pipe = LegoPipeline(conditioner=cond, **parts)
    pipe.set_progress_bar_config(disable=True)
    img = Image.new("RGB", (size, size), (120, 90, 60))

    def run(ps):
        pipe([img] * len(ps), ["take the red cup"] * len(ps), num_inference_steps=steps, action_progress=ps,
             output_type="np", progress=False)

    one = best_of(lambda: run([1.0]), repeat)
    clip = best_of(lambda: run(P4), repeat)
    return {"steps": steps, "size": size, "frame_s": round(one, 3), "clip4_s": round(clip, 3),
            "clip4_over_frame": round(clip / one, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--paper", action="store_true", help="also the SD-1.5-shaped pipeline at 256 px")
    ap.add_argument("--paper-steps", type=int, default=3)
    a = ap.parse_args()
    out = {"bench": "clip", "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "threads": torch.get_num_threads(), "tiny": tiny(a.repeat)}
    if a.paper:
        out["paper_shaped_bf16"] = paper(a.paper_steps, max(1, a.repeat // 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
