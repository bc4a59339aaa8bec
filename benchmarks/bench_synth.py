"""EgoSynth throughput: actions/s and frames/s at 64 px and 256 px, 1 and 2 workers. Prints one JSON line.

Target (foundation issue): 300 actions at 64 px in under 60 s on 2 cores (both formats).
Usage: python benchmarks/bench_synth.py [--actions-64 300] [--actions-256 40]
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from egolego.synth.dataset import SynthArgs, generate


def run(actions: int, size: int, workers: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        t0 = time.perf_counter()
        s = generate(SynthArgs(out=d, actions=actions, size=size, seed=0, workers=workers), progress=False)
        dt = time.perf_counter() - t0
        return {"size": size, "workers": workers, "actions": actions, "seconds": round(dt, 2),
                "actions_per_s": round(actions / dt, 2), "frames_per_s": round(s["video_frames"] / dt, 1)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--actions-64", type=int, default=300)
    ap.add_argument("--actions-256", type=int, default=40)
    a = ap.parse_args()
    runs = [run(a.actions_64, 64, 1), run(a.actions_64, 64, 2), run(a.actions_256, 256, 2)]
    print(json.dumps({"bench": "synth", "machine": platform.machine(), "cores": os.cpu_count(),
                      "date": time.strftime("%Y-%m-%d"), "runs": runs,
                      "target_300_at_64px_under_60s": runs[1]["seconds"] * 300 / a.actions_64 < 60,
                      "speedup_2_workers": round(runs[0]["seconds"] / runs[1]["seconds"], 2)}))


if __name__ == "__main__":
    main()
