"""What the learnt change mask costs at sampling time (issue 28).

Timed here, in one process, side by side: a batch of 8 tiny-preset frames (64 px, its own 4-step sampler) drawn
without and with a ``ChangeMaskNet`` (the preset's width), and the net alone on 8 frames at 64 and 256 px (the paper
preset's size). Random weights: the cost does not depend on them. Prints one JSON line.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from egolego import config
from egolego.ldm.change_mask import ChangeMaskNet
from helpers import best_of, tiny_pipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = config.preset("tiny")
    cfg.ldm.conditioning = "desc"
    net = ChangeMaskNet(width=cfg.ldm.change_mask_width).eval()
    with tempfile.TemporaryDirectory() as d:
        pipe = tiny_pipeline(cfg, Path(d), change_mask=net)
        pipe.set_progress_bar_config(disable=True)
        imgs, texts = [Image.new("RGB", (64, 64), (120, 90 + i, 60)) for i in range(8)], ["take the red cup"] * 8

        def draw(mask: bool):
            return lambda: pipe(imgs, texts, generator=[torch.Generator().manual_seed(i) for i in range(8)],
                                change_mask=mask, output_type="pt")

        plain, masked = best_of(draw(False), a.repeat), best_of(draw(True), a.repeat)
    with torch.no_grad():
        x64, x256 = torch.rand(8, 3, 64, 64) * 2 - 1, torch.rand(8, 3, 256, 256) * 2 - 1
        net64 = best_of(lambda: net.mask(x64, x64.flip(-1)), a.repeat)
        net256 = best_of(lambda: net.mask(x256, x256.flip(-1)), a.repeat)
    print(json.dumps({"bench": "change_mask", "machine": platform.machine(), "cpus": os.cpu_count(),
                      "torch_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
                      "mask_parameters": sum(p.numel() for p in net.parameters()),
                      "batch": 8, "steps": cfg.ldm.steps, "frames_s": round(plain, 4),
                      "frames_with_mask_s": round(masked, 4), "with_mask_over_without": round(masked / plain, 3),
                      "net_64px_s": round(net64, 4), "net_256px_s": round(net256, 4)}))


if __name__ == "__main__":
    main()
