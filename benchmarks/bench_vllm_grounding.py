"""Does the tiny VLLM name the right hand, object and position? Description accuracy with and without the
pre-trained vision tower (issue 15). One JSON line per variant.

Run on a validation EgoSynth seed (never the test seed's numbers for choosing):
    python benchmarks/bench_vllm_grounding.py [--out runs/bench/vllm_grounding] [--seed 1] [--epochs 30]
        [--variants pretrained,scratch]   # ~10 minutes on 2 cores

``scratch``: the tower trained from scratch through the answer tokens (the tiny preset before the pre-training
stage, patch 8); ``pretrained``: ``vllm pretrain-vision`` first, then the tower frozen (the tiny preset now).
Uses ``OMP_NUM_THREADS`` as given: run it alone on the box.

Reliability across training seeds (``--vllm-seeds``): the same recipe tuned from several VLLM seeds (its weights'
initialisation, the order of its records and its rendered stills all follow ``vllm.seed``), each scored on the test
pairs overall and on the knowledge world's rule scenes, with the loss at the end and the step where the tuning loss
first falls below ``--broke`` (the tiny LLaVA plateaus near .12 until it learns to look; RESULTS.md). For the
knowledge world use the reproduce config:
    python benchmarks/bench_vllm_grounding.py --config configs/reproduce.yaml --variants pretrained \
        --vllm-seeds 1,2 --epochs 6,12      # per run on 2 cores: ~4.6 min of tuning per 6 epochs, + its stills
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def desc_accuracy(pairs: Path, truth: dict, split: str, looks: set[str] | None = None,
                  inside: bool = True) -> dict:
    """Description accuracy of one split's pairs; with ``looks`` (``reproduce.twin_ids``: the rule scenes of the
    knowledge world, the twins of the control) only the pairs inside it, or outside it when ``inside`` is False."""
    from egolego.data.manifest import read_manifest
    from egolego.synth.describe import description_accuracy

    rows = [r for r in read_manifest(pairs) if r["split"] == split and r["pair_id"] in truth
            and (looks is None or (r["pair_id"] in looks) == inside)]
    acc = [description_accuracy(r["description"], truth[r["pair_id"]]) for r in rows]
    if not acc:
        return {"n": 0}
    return {"n": len(acc), **{k: round(sum(a[k] for a in acc) / len(acc), 3) for k in ("hand", "object", "position", "all")}}


def tuning_curve(log: Path, broke: float, window: int = 25) -> dict:
    """The last loss (mean of the last ``window`` steps) and the first step whose running mean falls below
    ``broke``."""
    losses = [json.loads(line)["loss"] for line in log.read_text().splitlines() if line.strip()]
    means = [sum(w) / len(w) for w in (losses[max(0, i - window + 1):i + 1] for i in range(len(losses)))]
    below = next((i + 1 for i, m in enumerate(means) if i >= window and m < broke), None)
    return {"steps": len(losses), "last_loss": round(means[-1], 4) if means else None, "broke_at": below}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench/vllm_grounding", help="work folder (default %(default)s; reused)")
    ap.add_argument("--seed", type=int, default=1, help="EgoSynth seed (default 1: the validation seed)")
    ap.add_argument("--epochs", help="tuning epochs, comma-separated (default: the config's; with rendered stills "
                    "vllm.synthetic_epochs)")
    ap.add_argument("--variants", default="pretrained,scratch")
    ap.add_argument("--config", help="a YAML config (default: the tiny preset)")
    ap.add_argument("--vllm-seeds", help="VLLM seeds, comma-separated (default: the EgoSynth seed)")
    ap.add_argument("--broke", type=float, default=0.09, help="loss that marks the tuning's break-through")
    a = ap.parse_args()

    from egolego.config import load, preset
    from egolego.data.manifest import read_manifest
    from egolego.reproduce import twin_ids
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

    def config(vllm_seed: int):
        c = load(a.config) if a.config else preset("tiny")
        c.synth.seed, c.vllm.seed = a.seed, vllm_seed
        return c

    base = config(a.seed)
    data, pairs, tuning, tok = out / "egosynth", out / "pairs", out / "tuning.json", out / "tokenizer"
    egosynth_stage(base, data)
    pairs_stage(base, data, pairs)
    curate_stage(pairs, tuning)
    tokenizer_stage(base, pairs, tok)
    truth = truth_by_pair_id(data)
    looks = twin_ids(read_manifest(pairs), data)  # the rule scenes (the control world's twins)
    vllm_seeds = [int(x) for x in a.vllm_seeds.split(",")] if a.vllm_seeds else [a.seed]
    epochs = [int(x) for x in a.epochs.split(",")] if a.epochs else [None]
    for variant, vllm_seed, n_epochs in ((v, s, e) for v in a.variants.split(",") for e in epochs for s in vllm_seeds):
        cfg = config(vllm_seed)
        if n_epochs:
            cfg.vllm.epochs = cfg.vllm.synthetic_epochs = n_epochs
        t0 = time.perf_counter()
        if variant == "pretrained":
            vision_stage(cfg, out / "vision_tower")
        elif variant == "scratch":
            cfg.vllm.train_vision_tower, cfg.vllm.lr = True, 2e-3  # the tiny preset before the pre-training stage
        else:
            raise SystemExit(f"unknown variant {variant!r}")
        t1 = time.perf_counter()
        run = out / variant if not (a.vllm_seeds or a.epochs) else out / f"{variant}_s{vllm_seed}_e{n_epochs or 'cfg'}"
        v_pairs = run / "pairs"
        if not v_pairs.exists():
            import shutil

            shutil.copytree(pairs, v_pairs)  # enrichment writes its descriptions into the manifest
        vllm_stage(cfg, tuning, v_pairs, tok, run / "vllm", 1.0)
        t2 = time.perf_counter()
        enrich_stage(cfg, run / "vllm" / "model", v_pairs, run / "embeddings")
        print(json.dumps({"bench": "vllm_grounding", "variant": variant, "seed": a.seed, "vllm_seed": vllm_seed,
                          "knowledge": cfg.synth.knowledge, "epochs": cfg.vllm.epochs, "lr": cfg.vllm.lr,
                          "stills": cfg.vllm.synthetic_records, "tower_s": round(t1 - t0, 1),
                          "tune_s": round(t2 - t1, 1), **tuning_curve(run / "vllm" / "tune_log.jsonl", a.broke),
                          "test": desc_accuracy(v_pairs, truth, "test"),
                          "test_rule": desc_accuracy(v_pairs, truth, "test", looks),
                          "test_plain": desc_accuracy(v_pairs, truth, "test", looks, inside=False),
                          "train": desc_accuracy(v_pairs, truth, "train")}), flush=True)


if __name__ == "__main__":
    main()
