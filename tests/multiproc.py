"""Launch a job on 2 CPU processes (torchrun + gloo) and collect what each rank reports.

``accelerate launch --cpu --num_processes 2`` starts a single process on this machine, and ``torchrun`` without
``ACCELERATE_USE_CPU=true`` gives two independent single-process runs; so the launch is torchrun with that
variable, and the worker (``multiproc_worker.py``) refuses to run unless accelerate sees 2 processes. Each rank
writes ``rank<r>.json``; on ranks > 0 an audit hook lists every file the rank opens for writing, renames or
removes under the job's folder, so the tests can prove that only rank 0 writes logs, checkpoints and models.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("multiproc_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(job: dict, folder: Path, nproc: int = 2, timeout: int = 600) -> list[dict]:
    """Run ``job`` (see the worker) under torchrun; returns the per-rank reports, rank 0 first."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "job.json"
    spec.write_text(json.dumps({**job, "folder": str(folder)}))
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(WORKER), str(spec)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"torchrun failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    (folder / "launch.log").write_text(r.stdout + "\n" + r.stderr)  # what the ranks printed, for a failing test
    reports = [json.loads((folder / f"rank{i}.json").read_text()) for i in range(nproc)]
    assert [x["rank"] for x in reports] == list(range(nproc))
    assert all(x["world"] == nproc for x in reports), "the launch did not give one process group of all ranks"
    return reports


def read_log(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in Path(path).read_text().splitlines()]
