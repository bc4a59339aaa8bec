"""SDEdit sweep on a trained text-to-image model (validation data only): strength x guidance, one JSON line each.

    python benchmarks/sweep_sdedit.py --model RUN_T2I/model --pairs VAL_PAIRS --egosynth VAL_EGOSYNTH \
        --strength 0.3 0.45 0.6 0.75 0.9 --guidance 1.5 3 5

The validation pairs come from an EgoSynth of another seed than the one the model was trained and is tested on.
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
    ap.add_argument("--model", required=True, help="a t2i model folder (`egolego train --conditioning t2i`)")
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--egosynth", required=True)
    ap.add_argument("--split", default="test", help="the split of the validation pairs to use")
    ap.add_argument("--strength", type=float, nargs="+", default=[0.3, 0.45, 0.6, 0.75, 0.9])
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.5, 3.0, 5.0])
    ap.add_argument("--steps", type=int)
    ap.add_argument("--limit", type=int, default=48)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sweep_sdedit_"))
    for strength in a.strength:
        for w in a.guidance:
            r = evaluate(EvalArgs(model=a.model, pairs=Path(a.pairs), out=work / f"{strength}_{w}", split=a.split,
                                  metrics=("psnr", "ssim", "action"), limit=a.limit, batch_size=16,
                                  egosynth=Path(a.egosynth), new_actions=0, bootstrap=200, steps=a.steps,
                                  condition_guidance=w, baseline="sdedit", strength=strength), progress=False)
            m = r["metrics"]
            print(json.dumps({"bench": "sdedit_sweep", "strength": strength, "guidance": w,
                              **{k: round(m[k]["mean"], 4) for k in ("psnr", "ssim", "action_object", "action_all")
                                 if k in m}}), flush=True)


if __name__ == "__main__":
    main()
