"""Wall time of each `egolego demo` stage on this machine, from scratch. Prints one JSON line.

Budget (evaluation issue): the whole demo in <= 10 minutes on 2 CPU cores.
Usage: python benchmarks/bench_demo.py [--minutes 10] [--out DIR] [--keep]
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from egolego import config  # noqa: E402
from egolego.demo import run_demo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--out", help="run folder (default: a temp folder, removed unless --keep)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="bench_demo_"))
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: the benchmark times a run from scratch")
    t0 = time.perf_counter()
    try:
        r = run_demo(config.preset("tiny"), out, minutes=a.minutes)
        total = time.perf_counter() - t0
    finally:
        if not a.out and not a.keep:
            shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"bench": "demo", "machine": f"{platform.machine()} {os.cpu_count()} cores",
                      "date": time.strftime("%Y-%m-%d"), "minutes_budget": a.minutes, "total_s": round(total, 1),
                      "stages_s": r["stages"], "headline": {k: {m: v[m] for m in ("psnr", "action_all") if m in v}
                                                            for k, v in r["results"].items()}}))


if __name__ == "__main__":
    main()
