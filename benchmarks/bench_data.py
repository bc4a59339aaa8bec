"""Pair building throughput: pairs/s from EgoSynth MP4 and JPEG frames, with 1 and 2 workers. One JSON line."""

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from egolego.data.build import BuildArgs, build
from egolego.synth.dataset import SynthArgs, generate


def main(actions: int = 200) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        generate(SynthArgs(out=tmp / "es", actions=actions, size=64, seed=0, formats=("epic", "ego4d"), workers=2),
                 progress=False)
        runs = []
        for source, frames, workers in [("epic", "video", 1), ("epic", "jpg", 1), ("epic", "video", 2),
                                        ("epic", "jpg", 2), ("ego4d", "video", 2)]:
            out = tmp / f"out_{source}_{frames}_{workers}"
            t0 = time.perf_counter()
            s = build(BuildArgs(source=source, root=tmp / "es" / source, out=out, frames_from=frames, size=64, workers=workers),
                      progress=False)
            dt = time.perf_counter() - t0
            runs.append({"source": source, "frames": frames, "workers": workers, "pairs": s["kept"],
                         "seconds": round(dt, 2), "pairs_per_s": round(s["kept"] / dt, 1)})
        print(json.dumps({"bench": "data", "machine": platform.machine(), "cores": os.cpu_count(),
                          "date": time.strftime("%Y-%m-%d"), "actions": actions, "runs": runs}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
