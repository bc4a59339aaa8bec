"""Atomic, resumable training checkpoints under accelerate, shared by the LDM and VLLM trainers.

``<out>/checkpoints/step-NNNNNNN/`` holds accelerate's state (model, optimizer, schedule, RNG), whatever the
trainer adds (``extra``), and ``trainer.json`` with the step. A checkpoint is written to a temp folder and
renamed, so a kill never leaves a half-written one; only the last ``keep`` are kept.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .errors import InputError


def list_checkpoints(out: Path) -> list[Path]:
    d = Path(out) / "checkpoints"
    return sorted(d.glob("step-*")) if d.exists() else []


def refuse_stale(out: Path, resume: bool) -> None:
    """A fresh run must not silently mix with an earlier run's checkpoints."""
    if not resume and list_checkpoints(out):
        raise InputError("out", f"{out} holds checkpoints of an earlier run: pass --resume to continue it, "
                         "or choose another folder")


def save_checkpoint(acc, out: Path, step: int, keep: int, extra: Callable[[Path], None] | None = None) -> None:
    acc.wait_for_everyone()
    d = Path(out) / "checkpoints"
    tmp = d / f".tmp-step-{step:07d}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()  # every rank writes its own RNG state into tmp: it must exist, and not be removed later
    acc.save_state(str(tmp))
    acc.wait_for_everyone()  # ... and all of them must have written before rank 0 renames it
    if acc.is_main_process:
        if extra is not None:
            extra(tmp)
        (tmp / "trainer.json").write_text(json.dumps({"step": step}))
        shutil.rmtree(d / f"step-{step:07d}", ignore_errors=True)
        os.replace(tmp, d / f"step-{step:07d}")
        for old in list_checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def load_latest(acc, out: Path) -> tuple[int, Path | None]:
    """(step, folder) of the last checkpoint after loading it into ``acc``; (0, None) when there is none."""
    cks = list_checkpoints(out)
    if not cks:
        return 0, None
    acc.load_state(str(cks[-1]))
    return json.loads((cks[-1] / "trainer.json").read_text())["step"], cks[-1]


def truncate_log(path: Path, start: int, resume: bool) -> None:
    """Keep the JSONL log lines of steps <= ``start`` (those a resumed run will not redo)."""
    kept = [ln for ln in (path.read_text().splitlines() if resume and path.exists() else [])
            if json.loads(ln)["step"] <= start]
    path.write_text("".join(ln + "\n" for ln in kept))
