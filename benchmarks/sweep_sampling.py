"""Sampling sweep on a trained model (validation data only): guidance scales and step counts, one JSON line each.

    python benchmarks/sweep_sampling.py --model RUN/model --pairs PAIRS --egosynth EGOSYNTH \
        --grid "1,1 2,1 3,1 2,1.5" --steps 4 8
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from egolego.eval.run import EvalArgs, evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--egosynth", required=True)
    ap.add_argument("--grid", default="1,1 2,1 3,1 2,1.5", help="space-separated s_c,s_x")
    ap.add_argument("--steps", type=int, nargs="+", default=[4])
    ap.add_argument("--test", type=int, default=96)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sweep_"))
    for steps in a.steps:
        for cell in a.grid.split():
            s_c, s_x = (float(v) for v in cell.split(","))
            r = evaluate(EvalArgs(model=a.model, pairs=Path(a.pairs), out=work / f"{steps}_{s_c}_{s_x}",
                                  metrics=("psnr", "ssim", "action"), limit=a.test, batch_size=32,
                                  egosynth=Path(a.egosynth), new_actions=0, bootstrap=200, steps=steps,
                                  condition_guidance=s_c, image_guidance=s_x), progress=False)
            m = r["metrics"]
            print(json.dumps({"bench": "sampling_sweep", "steps": steps, "s_c": s_c, "s_x": s_x,
                              **{k: round(m[k]["mean"], 4) for k in ("psnr", "ssim", "action_object", "action_all")}}),
                  flush=True)


if __name__ == "__main__":
    main()
