"""The knowledge world's mechanism checks (``synth.knowledge: rules``). The last stdout line is the one JSON summary
(the stages' progress lines above it; each model's JSON line on stderr as it finishes).

Before any table can say whether LEGO transfers the VLLM's knowledge, three things must hold on the rule scenes
(the scenes where look-alikes share the frame and a visible state decides the target):
  1. the VLLM names the right object: its descriptions' position (and hand) on the rule scenes;
  2. the text path carries that into the frame: ``oracle`` (``desc`` given the *exact* descriptions) beats ``label``
     on the rule scenes by a wide margin;
  3. the pairs alone do not teach the rules: ``label`` stays near chance on the rule scenes' object (one look-alike
     in two or three is the target).
On one EgoSynth seed (choose on the validation seed, 1) the shared stages of ``egolego demo`` / ``reproduce`` run with
``--actions`` actions and ``--stills`` rendered stills for the VLLM, then each model trains ``--steps`` steps with
the tiny recipe (``--set`` overrides, e.g. ``ldm.conditioner_gate=tanh``) and is judged on the test pairs. Reuses
every stage a rerun finds.

    python benchmarks/bench_knowledge.py --out /tmp/knowledge --seed 1 --steps 4800 --models label,oracle,desc,lego \
        --jobs 2
"""

import argparse
import copy
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_learning import overrides  # noqa: E402
from egolego import config  # noqa: E402
from egolego.data.manifest import read_manifest, write_manifest  # noqa: E402
from egolego.eval.run import EvalArgs, evaluate  # noqa: E402
from egolego.eval.tables import load_run  # noqa: E402
from egolego.reproduce import train_parallel  # noqa: E402
from egolego.stages import Prepared, prepare, train_ldm  # noqa: E402
from egolego.synth.describe import description_accuracy  # noqa: E402
from egolego.synth.pairs import truth_by_pair_id  # noqa: E402

MODES = {"label": "label", "oracle": "desc", "desc": "desc", "desc+img": "desc+img", "desc+txt": "desc+txt",
         "lego": "lego"}


def oracle_pairs(p: Prepared, root: Path) -> Path:
    """The run's pairs with the exact descriptions (what a perfect VLLM would write), images linked, not copied."""
    out = root / "pairs_oracle"
    if not (out / "pairs.parquet").exists():
        truth = truth_by_pair_id(p.data)
        rows = [{**r, "description": truth[r["pair_id"]]["description"]} for r in read_manifest(p.pairs)]
        if not (out / "images").exists():
            out.mkdir(parents=True, exist_ok=True)
            (out / "images").symlink_to((p.pairs / "images").resolve())
        write_manifest(rows, out)
    return out


def subsets(p: Prepared, rows: list[dict]) -> dict[str, set]:
    truth = truth_by_pair_id(p.data)
    rule = {r["pair_id"] for r in rows if truth[r["pair_id"]].get("rule")}
    return {"rule": rule, "plain": {r["pair_id"] for r in rows} - rule}


def vllm_accuracy(p: Prepared, rows: list[dict], sets: dict) -> dict:
    truth = truth_by_pair_id(p.data)
    out = {}
    for name, ids in sets.items():
        acc = [description_accuracy(r["description"], truth[r["pair_id"]]) for r in rows if r["pair_id"] in ids]
        out[name] = {k: round(sum(a[k] for a in acc) / max(1, len(acc)), 3) for k in ("hand", "position", "all")}
    return out


def chance(p: Prepared, ids: set) -> float:
    """The object accuracy of a model that picks one look-alike at random: the mean of 1 / look-alikes."""
    truth = truth_by_pair_id(p.data)
    k = [sum(o["kind"] == truth[i]["target"]["kind"] for o in truth[i]["scene"]["objects"]) for i in ids]
    return round(sum(1 / n for n in k) / max(1, len(k)), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--actions", type=int, default=2000)
    ap.add_argument("--stills", type=int, default=None, help="vllm.synthetic_records (default: the preset's)")
    ap.add_argument("--steps", type=int, default=4800)
    ap.add_argument("--models", default="label,oracle,desc,lego")
    ap.add_argument("--test-pairs", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="config override, e.g. ldm.conditioner_gate=tanh")
    a = ap.parse_args()
    cfg = config.from_dict({"preset": "tiny", **overrides(a.set)})
    cfg.synth.seed, cfg.synth.actions, cfg.synth.knowledge = a.seed, a.actions, "rules"
    if a.stills is not None:
        cfg.vllm.synthetic_records = a.stills
    root = Path(a.out)
    t0 = time.perf_counter()
    p = prepare(cfg, root)
    prep_s = time.perf_counter() - t0
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    pairs = {m: oracle_pairs(p, root) if m == "oracle" else p.pairs for m in models}
    tasks = [(copy.deepcopy(cfg), p, MODES[m], a.steps, root / f"ldm_{m}", None, pairs[m], m) for m in models]
    t1 = time.perf_counter()
    if a.jobs > 1:
        train_parallel(tasks, a.jobs)
    rows = [r for r in read_manifest(p.pairs) if r["split"] == "test"][:a.test_pairs]
    sets = subsets(p, rows)
    summary = {"bench": "knowledge", "machine": platform.machine(), "seed": a.seed, "actions": a.actions,
               "train_pairs": sum(r["split"] == "train" for r in read_manifest(p.pairs)),
               "stills": cfg.vllm.synthetic_records, "steps": a.steps, "overrides": a.set,
               "prepare_s": round(prep_s), "n": {k: len(v) for k, v in sets.items()},
               "vllm_descriptions": vllm_accuracy(p, rows, sets), "object_chance_on_rule_scenes": chance(p, sets["rule"]),
               "models": {}}
    for task, m in zip(tasks, models):
        model = train_ldm(*task)
        if MODES[m] != "label" and not (model / "vllm").exists():
            shutil.copytree(p.vllm, model / "vllm")
        out = root / "eval" / m
        if not (out / "eval.json").exists():
            evaluate(EvalArgs(model=str(model), pairs=pairs[m], out=out, metrics=("psnr", "ssim", "action"),
                              limit=a.test_pairs, store=p.store, name=m, egosynth=p.data, batch_size=32, new_actions=0,
                              bootstrap=200), progress=False)
        run = load_run(out)
        ids = run.per_pair["pair_id"]
        res = {"model": m}
        for name, keep in sets.items():
            sel = [i for i, pid in enumerate(ids) if pid in keep]
            for metric in ("action_all", "action_object", "action_hand"):
                res[f"{name}/{metric}"] = round(sum(run.per_pair[metric][i] for i in sel) / max(1, len(sel)), 3)
        res["psnr"] = round(run.info["metrics"]["psnr"]["mean"], 2)
        summary["models"][m] = res
        print(json.dumps(res), file=sys.stderr, flush=True)  # progress; stdout keeps the one summary line
    summary["train_and_eval_s"] = round(time.perf_counter() - t1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
