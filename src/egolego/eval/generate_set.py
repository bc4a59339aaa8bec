"""Generate the action frame of every evaluated pair, resumably: ``EVAL/images/<pair_id>.png``.

A method is a LEGO model folder, a baseline (SDEdit / ProxNPI on a text-to-image model folder), or one of two references that need no model: ``input`` (copy the input frame,
the "nothing happens" baseline) and ``target`` (the ground truth itself, an upper bound for sanity).
Each image is written atomically, so a killed run regenerates only what is missing; each pair has its own
seeded generator, so the result does not depend on the batch size or on where a run was resumed. What drew the
frames (method, seed, resolved sampling, store) is recorded beside them (``images/drawn_with.json``): frames drawn
with anything else — the same folder evaluated again with another sampler or seed, or frames of unknown origin —
are drawn again, never scored as if they were the new setting's.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from PIL import Image

from ..data.manifest import resolve
from ..ldm.frame_set import draw_frames, drawn_with, frame_file, keep_frames_drawn_with, missing_rows, save_frame
from ..methods import REFERENCES


def generate_set(method: str, pairs: Path, rows: list[dict], out: Path, batch_size: int = 8, seed: int = 0,
                 store: str | Path | None = None, progress: bool = True, generator=None, **sampling) -> dict:
    """Write ``out/images/*.png`` for ``rows``; returns {"mode", "generated", "reused", "sampling"}.

    ``sampling`` overrides the model's own steps / scheduler / guidance scales; ``generator`` is an already loaded
    generator for ``method`` (a ``FrameGenerator``, or a baseline's ``BaselineGenerator``: anything with ``mode``,
    ``sampling``, ``check_rows`` and ``batch``), so that a caller can reuse it. Every method goes through the same
    batch loop and the same per-pair seeds (``names.pair_seed``).
    """
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    if method in REFERENCES:
        keep_frames_drawn_with(img_dir, {"method": method}, progress)
        todo = missing_rows(rows, img_dir)
        for r in todo:
            save_frame(Image.open(resolve(pairs, r[f"{method}_path"])).convert("RGB"), frame_file(img_dir, r["pair_id"]))
        return {"mode": method, "generated": len(todo), "reused": len(rows) - len(todo), "sampling": None}

    from ..ldm.generate import FrameGenerator

    gen = generator or FrameGenerator(method, **sampling)
    gen.check_rows(rows, store)
    keep_frames_drawn_with(img_dir, drawn_with(method, gen, seed, store), progress)
    todo = missing_rows(rows, img_dir)
    draw_frames(gen, pairs, todo, img_dir, batch_size, seed, store, progress, desc=f"generate ({gen.mode})")
    return {"mode": gen.mode, "generated": len(todo), "reused": len(rows) - len(todo), "sampling": asdict(gen.sampling)}
