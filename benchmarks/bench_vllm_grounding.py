"""Does the tiny VLLM name the right hand, object and position? Description accuracy with and without the
pre-trained vision tower (issue 15). One JSON line per variant.

Run on a validation EgoSynth seed (never the test seed's numbers for choosing):
    python benchmarks/bench_vllm_grounding.py [--out runs/bench/vllm_grounding] [--seed 1] [--epochs 30]
        [--variants pretrained,scratch]   # ~10 minutes on 2 cores

``scratch``: the tower trained from scratch through the answer tokens (the tiny preset before the pre-training
stage, patch 8); ``pretrained``: ``vllm pretrain-vision`` first, then the tower frozen (the tiny preset now).
Uses ``OMP_NUM_THREADS`` as given: run it alone on the box.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def desc_accuracy(pairs: Path, truth: dict, split: str) -> dict:
    from egolego.data.manifest import read_manifest
    from egolego.synth.describe import description_accuracy

    rows = [r for r in read_manifest(pairs) if r["split"] == split and r["pair_id"] in truth]
    acc = [description_accuracy(r["description"], truth[r["pair_id"]]) for r in rows]
    return {"n": len(acc), **{k: round(sum(a[k] for a in acc) / len(acc), 3) for k in ("hand", "object", "position", "all")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench/vllm_grounding", help="work folder (default %(default)s; reused)")
    ap.add_argument("--seed", type=int, default=1, help="EgoSynth seed (default 1: the validation seed)")
    ap.add_argument("--epochs", type=int, help="tuning epochs (default: the tiny preset's)")
    ap.add_argument("--variants", default="pretrained,scratch")
    a = ap.parse_args()

    from egolego.config import preset
    from egolego.stages import (
        curate_stage,
        egosynth_stage,
        enrich_stage,
        pairs_stage,
        tokenizer_stage,
        vision_stage,
        vllm_stage,
    )
    from egolego.synth.pairs import truth_by_pair_id

    out = Path(a.out)
    base = preset("tiny")
    base.synth.seed = base.vllm.seed = a.seed
    data, pairs, tuning, tok = out / "egosynth", out / "pairs", out / "tuning.json", out / "tokenizer"
    egosynth_stage(base, data)
    pairs_stage(base, data, pairs)
    curate_stage(pairs, tuning)
    tokenizer_stage(base, pairs, tok)
    truth = truth_by_pair_id(data)
    for variant in a.variants.split(","):
        cfg = preset("tiny")
        cfg.synth.seed = cfg.vllm.seed = a.seed
        if a.epochs:
            cfg.vllm.epochs = a.epochs
        t0 = time.perf_counter()
        if variant == "pretrained":
            vision_stage(cfg, out / "vision_tower")
        elif variant == "scratch":
            cfg.vllm.train_vision_tower, cfg.vllm.lr = True, 2e-3  # the tiny preset before the pre-training stage
        else:
            raise SystemExit(f"unknown variant {variant!r}")
        t1 = time.perf_counter()
        run = out / variant
        v_pairs = run / "pairs"
        if not v_pairs.exists():
            import shutil

            shutil.copytree(pairs, v_pairs)  # enrichment writes its descriptions into the manifest
        vllm_stage(cfg, tuning, v_pairs, tok, run / "vllm", 1.0)
        t2 = time.perf_counter()
        enrich_stage(cfg, run / "vllm" / "model", v_pairs, run / "embeddings")
        print(json.dumps({"bench": "vllm_grounding", "variant": variant, "seed": a.seed, "epochs": cfg.vllm.epochs,
                          "lr": cfg.vllm.lr, "tower_s": round(t1 - t0, 1), "tune_s": round(t2 - t1, 1),
                          "test": desc_accuracy(v_pairs, truth, "test"),
                          "train": desc_accuracy(v_pairs, truth, "train")}), flush=True)


if __name__ == "__main__":
    main()
