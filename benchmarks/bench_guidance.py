"""Guidance that does not burn: sampling-time remedies against colour blobs, on one trained model (validation seed).

Each setting samples the same test pairs with the same per-pair seeds; the figures are the action judge (all pairs
and the rule scenes), PSNR / SSIM (whole frame, outside and inside the action's boxes) and the blob score
(``eval.regions``), and the paired difference of each against the first setting (``eval.paired``: 95 % bootstrap
over pairs). The last stdout line is the one JSON summary; each setting's JSON line goes to stderr as it finishes.

    python benchmarks/bench_guidance.py --model RUN/model --pairs PAIRS --store EMB --egosynth EGOSYNTH \
        --out /tmp/guidance --settings "base; condition_guidance=2; guidance_rescale=1; guidance_interval=0.9,1"

A setting is ``base`` (the model's own sampling) or ``;``-separated keys of ``egolego eval``'s sampling options
(``steps``, ``condition_guidance``, ``image_guidance``, ``guidance_rescale``, ``guidance_interval=LO,HI``) joined by
``+``. Reuses every eval a rerun finds.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from egolego.eval.paired import paired  # noqa: E402
from egolego.eval.run import EvalArgs, evaluate  # noqa: E402
from egolego.eval.tables import load_run  # noqa: E402
from egolego.synth.pairs import truth_by_pair_id  # noqa: E402

FIGURES = ("action_all", "psnr", "ssim", "psnr_out", "ssim_out", "psnr_in", "ssim_in", "blob")


def parse_setting(text: str) -> dict:
    """``guidance_interval=0.9,1+guidance_rescale=1`` -> {"guidance_interval": (0.9, 1.0), "guidance_rescale": 1.0}."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split("+"))):
        if part == "base":
            continue
        key, value = part.split("=", 1)
        out[key] = tuple(float(v) for v in value.split(",")) if key == "guidance_interval" else (
            int(value) if key == "steps" else float(value))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--store", help="the model's embedding store (lego modes)")
    ap.add_argument("--egosynth", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", default="base; condition_guidance=2; guidance_rescale=1; guidance_interval=0.9,1")
    ap.add_argument("--test", type=int, default=400)
    a = ap.parse_args()
    truth = truth_by_pair_id(Path(a.egosynth))
    out, results, base = Path(a.out), {}, None
    for text in [s.strip() for s in a.settings.split(";") if s.strip()]:
        kw = parse_setting(text)
        d = out / text.replace("=", "").replace(",", "-")
        t0 = time.perf_counter()
        if not (d / "eval.json").exists():
            evaluate(EvalArgs(model=a.model, pairs=Path(a.pairs), out=d, metrics=("psnr", "ssim", "regions", "blob",
                                                                                   "action"),
                              limit=a.test, store=Path(a.store) if a.store else None, egosynth=Path(a.egosynth),
                              batch_size=32, new_actions=0, **kw), progress=False)
        run = load_run(d)
        ids = run.per_pair["pair_id"]
        rule = {p for p in ids if truth[p].get("rule")}
        m = run.info["metrics"]
        r = {k: round(m[k]["mean"], 4) for k in FIGURES if k in m}
        r["action_rule"] = round(sum(v for p, v in zip(ids, run.per_pair["action_all"]) if p in rule) / max(1, len(rule)), 4)
        if base is None:
            base = d
        else:
            diff = paired(d, base, rule, "rule scenes", metrics=("action_all", "blob", "psnr_out", "ssim_out"))
            r["vs_first"] = {k: [round(v[x], 4) for x in ("mean", "lo", "hi")] for k, v in diff.items()}
        r["seconds"] = round(time.perf_counter() - t0, 1)
        results[text] = r
        print(json.dumps({"setting": text, **r}), file=sys.stderr, flush=True)
    print(json.dumps({"bench": "guidance", "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "date": time.strftime("%Y-%m-%d"), "model": a.model, "n": a.test, "settings": results}))


if __name__ == "__main__":
    main()
