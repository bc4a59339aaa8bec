"""Shared by the benchmarks (run them as scripts, ``python benchmarks/bench_x.py``, so that this folder is on the
import path): timing, and a tiny-preset pipeline with random weights (the cost of sampling does not depend on them)."""

import time
from pathlib import Path

from egolego.ldm.build import build_components
from egolego.ldm.pipeline import LegoPipeline, sampling_settings
from egolego.tokenizer import train_tokenizer


def best_of(fn, repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def tiny_pipeline(cfg, work: Path, **components) -> LegoPipeline:
    """A ``LegoPipeline`` of ``cfg``'s tiny shapes at 64 px (16 image tokens), random weights, its tokenizer trained
    in ``work/tok``; ``components``: extra pipeline components (e.g. ``change_mask``)."""
    tok = train_tokenizer(["the person takes the red cup on the left with the left hand"] * 20, work / "tok",
                          vocab_size=300)
    cfg.ldm.tokenizer = str(work / "tok")
    parts = build_components(cfg, 64, 16, tok.model_max_length, work=work)
    parts.pop("noise_scheduler")
    return LegoPipeline(**parts, prediction=cfg.ldm.prediction, residual=cfg.ldm.residual,
                        sampling=sampling_settings(cfg.ldm), **components)
