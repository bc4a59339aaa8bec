"""``egolego reproduce --jobs``: wall time to train two tiny LDMs one after the other (all threads each, ``--jobs 1``)
against side by side (``reproduce.train_parallel``, 1/N of the threads each). Prints one JSON line.

Why: a 64-px model uses a second core poorly, so on a 2-core CPU two 1-thread runs should finish sooner than two
2-thread runs in turn. Both arms train the same `desc` model on the same EgoSynth oracle pairs through the same
``train_ldm`` call; the parallel arm's time includes spawning the workers and their imports.

    python benchmarks/bench_jobs.py [--steps 300] [--jobs 2]
"""

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench_learning import dataset  # noqa: E402
from egolego import config  # noqa: E402
from egolego.reproduce import train_parallel  # noqa: E402
from egolego.stages import Prepared, tokenizer_stage, train_ldm  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300, help="training steps per model")
    ap.add_argument("--jobs", type=int, default=2, help="models trained at once in the parallel arm (and in all)")
    ap.add_argument("--actions", type=int, default=200)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="egolego_jobs_"))
    pairs = dataset(work, 1, a.actions)
    cfg = config.preset("tiny")
    tokenizer_stage(cfg, pairs, work / "tokenizer")
    p = Prepared(data=work / f"egosynth_s1_{a.actions}", pairs=pairs, tokenizer=work / "tokenizer", vllm=work,
                 store=None, vae=None)  # `desc` needs no VLLM

    def tasks(arm: str) -> list[tuple]:
        return [(copy.deepcopy(cfg), p, "desc", a.steps, work / f"{arm}_{i}", None, None, f"{arm} {i}")
                for i in range(a.jobs)]

    threads = torch.get_num_threads()
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)  # the stages' progress lines (workers' too) go to stderr: stdout is the JSON line
    try:
        t0 = time.perf_counter()
        for t in tasks("sequential"):
            train_ldm(*t)
        seq = time.perf_counter() - t0
        t0 = time.perf_counter()
        train_parallel(tasks("parallel"), a.jobs)
        par = time.perf_counter() - t0
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
    total = a.steps * a.jobs
    print(json.dumps({"bench": "jobs", "machine": f"{platform.machine()} {os.cpu_count()} cores",
                      "date": time.strftime("%Y-%m-%d"), "models": a.jobs, "steps_per_model": a.steps,
                      "threads": threads, "sequential_s": round(seq, 1), "parallel_s": round(par, 1),
                      "sequential_steps_per_s": round(total / seq, 2), "parallel_steps_per_s": round(total / par, 2),
                      "speedup": round(seq / par, 3)}))


if __name__ == "__main__":
    main()
