"""One rank of a 2-process job (started by ``tests/multiproc.py`` under torchrun; not a test module).

Job file (JSON): ``kind`` = ``vllm_tune`` | ``ldm_train`` | ``cli``, ``config`` (a config dict with its
preset), the inputs, and ``runs``: a list of {"out", "stop_after", "resume"} done one after the other in this
process group (a run with ``stop_after`` ends there as if killed; a later run with ``resume`` continues it).
``cli`` runs ``egolego`` with ``argv``; ``after_argv`` runs it after the runs. Writes ``rank<r>.json``: rank, world size, per-run results, and on
ranks > 0 the writes it made under the job folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(spec_path: str) -> None:
    job = json.loads(Path(spec_path).read_text())
    folder = Path(job["folder"]).resolve()
    rank = int(os.environ["RANK"])
    writes: list[str] = []
    allowed = f"random_states_{rank}.pkl"  # accelerate's per-process RNG state: part of every checkpoint

    def audit(event: str, args: tuple) -> None:
        path = None
        if event == "open" and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1], args[2]
            if (mode and any(c in str(mode) for c in "wax+")) or (flags and flags & (os.O_WRONLY | os.O_RDWR)):
                path = args[0]
        elif event in ("os.rename", "os.replace", "os.remove", "os.unlink", "shutil.rmtree", "os.rmdir"):
            path = args[0]
        if path is not None:
            p = os.path.abspath(os.fsdecode(path))
            if p.startswith(str(folder)) and not p.endswith(allowed) and not p.endswith(f"rank{rank}.json"):
                writes.append(f"{event} {os.path.relpath(p, folder)}")

    if rank > 0:
        sys.addaudithook(audit)

    from egolego import config

    results = []
    world = None
    if job["kind"] == "cli":
        from accelerate import PartialState

        from egolego.cli import main as cli_main
        world = PartialState().num_processes
        results.append({"rc": cli_main(job["argv"])})
    for run in job.get("runs", []):
        cfg = config.from_dict(job["config"])
        out = folder / run["out"]
        if job["kind"] == "vllm_tune":
            from egolego.vllm.tune import VllmTuner
            t = VllmTuner(cfg, job["data"], job["images"], out)
            r = t.run(resume=run.get("resume", False), progress=False, stop_after=run.get("stop_after"))
            r = {"losses": r["losses"], "start": r["start"], "end": r["end"], "total": t.total}
        else:
            from egolego.ldm.train import Trainer
            t = Trainer(cfg, job["pairs"], job.get("embeddings"), out)
            r = t.run(resume=run.get("resume", False), progress=False, stop_after=run.get("stop_after"))
            r = {"losses": r["losses"], "start": r["start"], "end": r["end"]}
        world = t.acc.num_processes
        results.append(r)
    if "after_argv" in job:  # e.g. enrich with the model a run above exported
        from accelerate import PartialState

        from egolego.cli import main as cli_main
        PartialState().wait_for_everyone()
        results.append({"rc": cli_main(job["after_argv"])})
    if world != int(os.environ["WORLD_SIZE"]):
        raise SystemExit(f"accelerate sees {world} processes, torchrun started {os.environ['WORLD_SIZE']}")
    (folder / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "world": world, "results": results,
                                                          "writes": writes}))


if __name__ == "__main__":
    main(sys.argv[1])
