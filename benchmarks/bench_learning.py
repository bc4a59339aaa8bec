"""The learning study: does a recipe make the tiny LDM *draw the action*? Prints one JSON line per evaluation.

Renders EgoSynth (``--seed``), takes oracle pairs (the exact descriptions: the conditioning is then as good as it
can be, so the curve measures the LDM), trains one conditioning mode with the tiny preset plus ``--set`` overrides,
and every ``--eval-every`` steps evaluates the EMA model on the test split: PSNR and SSIM (the copy-the-input
reference beside them) and the EgoSynth judge's hand / object / state / all-correct rates. The last line is the
summary (steps, wall time, the curve).

Choose recipes on a *validation* seed (default 1); report final figures on seed 0 and a second seed (2).

    python benchmarks/bench_learning.py --seed 1 --mode desc --minutes 10 --eval-every 300 \
        --set ldm.lr=1e-3 --set ldm.objective=flow
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402

from egolego import config  # noqa: E402
from egolego.eval.run import EvalArgs, evaluate  # noqa: E402
from egolego.ldm.train import Trainer  # noqa: E402
from egolego.synth.dataset import SynthArgs, generate  # noqa: E402
from egolego.synth.pairs import pairs_from_egosynth  # noqa: E402


def overrides(items: list[str]) -> dict:
    """["ldm.lr=1e-3", ...] -> {"ldm": {"lr": 0.001}} (values parsed as YAML)."""
    out: dict = {}
    for it in items:
        key, _, value = it.partition("=")
        d = out
        *parents, leaf = key.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = yaml.safe_load(value)
    return out


def dataset(root: Path, seed: int, actions: int) -> Path:
    data, pairs = root / f"egosynth_s{seed}_{actions}", root / f"pairs_s{seed}_{actions}"
    if not (data / "egosynth.json").exists():
        generate(SynthArgs(out=data, actions=actions, size=64, seed=seed, formats=("epic",), workers=2, overwrite=True), progress=False)
    if not (pairs / "pairs.parquet").exists():
        pairs_from_egosynth(data, pairs, 64)
    return pairs


def scores(pairs: Path, model: str, out: Path, limit: int, egosynth: Path) -> dict:
    r = evaluate(EvalArgs(model=model, pairs=pairs, out=out, metrics=("psnr", "ssim", "action"), limit=limit,
                          batch_size=32, egosynth=egosynth, new_actions=0, bootstrap=200), progress=False)
    m = r["metrics"]
    return {k: round(m[k]["mean"], 4) for k in ("psnr", "ssim", "action_hand", "action_object", "action_state",
                                                   "action_all") if k in m}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1, help="EgoSynth seed (1 = validation; report on 0 and 2)")
    ap.add_argument("--actions", type=int, default=500)
    ap.add_argument("--mode", default="desc", help="conditioning mode (label or desc: no VLLM needed)")
    ap.add_argument("--minutes", type=float, default=10.0, help="stop training after this wall time")
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--test", type=int, default=96, help="test pairs evaluated")
    ap.add_argument("--set", action="append", default=[], help="config override, e.g. ldm.lr=1e-3")
    ap.add_argument("--name", default="tiny recipe")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "egolego_learning"))
    a = ap.parse_args()
    work = Path(a.work)
    pairs = dataset(work, a.seed, a.actions)
    egosynth = work / f"egosynth_s{a.seed}_{a.actions}"
    copy = scores(pairs, "input", work / f"copy_s{a.seed}_{a.actions}", a.test, egosynth)
    cfg = config.from_dict({"preset": "tiny", **overrides(a.set)})
    cfg.ldm.conditioning, cfg.ldm.max_steps, cfg.ldm.checkpoint_every = a.mode, a.max_steps, 10**9
    run = Path(tempfile.mkdtemp(prefix="run_", dir=work))
    trainer = Trainer(cfg, pairs, None, run)
    curve, t0 = [], time.perf_counter()
    train_s = [0.0]

    def evaluate_now(step: int) -> None:
        train_s[0] += time.perf_counter() - t0_step[0]
        model = trainer.export()
        s = scores(pairs, str(model), run / f"eval_{step}", a.test, egosynth)
        point = {"step": step, "train_s": round(train_s[0], 1), **s}
        curve.append(point)
        print(json.dumps({"bench": "learning", "name": a.name, **point}), flush=True)
        if train_s[0] > a.minutes * 60:
            raise StopIteration
        t0_step[0] = time.perf_counter()

    t0_step = [time.perf_counter()]
    try:
        trainer.run(progress=False, every=(a.eval_every, evaluate_now))
    except StopIteration:
        pass
    best = max(curve, key=lambda p: p.get("action_all", 0)) if curve else None
    print(json.dumps({"bench": "learning", "name": a.name, "summary": True, "seed": a.seed, "mode": a.mode,
                      "overrides": a.set, "machine": f"{platform.machine()} {os.cpu_count()} cores",
                      "date": time.strftime("%Y-%m-%d"), "test_pairs": a.test, "copy_input": copy,
                      "wall_s": round(time.perf_counter() - t0, 1), "last": curve[-1] if curve else None,
                      "best": best, "curve": curve}))


if __name__ == "__main__":
    main()
