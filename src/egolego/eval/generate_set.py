"""Generate the action frame of every evaluated pair, resumably: ``EVAL/images/<pair_id>.png``.

A method is a LEGO model folder, a baseline (SDEdit / ProxNPI on a text-to-image model folder), or one of two references that need no model: ``input`` (copy the input frame,
the "nothing happens" baseline) and ``target`` (the ground truth itself, an upper bound for sanity).
Each image is written atomically, so a killed run regenerates only what is missing; each pair has its own
seeded generator, so the result does not depend on the batch size or on where a run was resumed.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import atomic_path
from ..data.manifest import resolve
from ..methods import REFERENCES
from ..names import pair_seed, safe_name


def _save(im: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


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
    todo = [r for r in rows if not (img_dir / f"{safe_name(r['pair_id'])}.png").is_file()]
    if method in REFERENCES:
        for r in todo:
            _save(Image.open(resolve(pairs, r[f"{method}_path"])).convert("RGB"), img_dir / f"{safe_name(r['pair_id'])}.png")
        return {"mode": method, "generated": len(todo), "reused": len(rows) - len(todo), "sampling": None}

    from ..ldm.generate import FrameGenerator

    gen = generator or FrameGenerator(method, **sampling)
    gen.check_rows(rows, store)
    bar = tqdm(total=len(todo), desc=f"generate ({gen.mode})", disable=not progress, unit="frame")
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        squares = [Image.open(resolve(pairs, r["input_path"])).convert("RGB") for r in batch]
        gens = [torch.Generator().manual_seed(pair_seed(seed, r["pair_id"])) for r in batch]
        for r, im in zip(batch, gen.batch(squares, batch, gens, store)):
            _save(im, img_dir / f"{safe_name(r['pair_id'])}.png")
        bar.update(len(batch))
    bar.close()
    return {"mode": gen.mode, "generated": len(todo), "reused": len(rows) - len(todo), "sampling": asdict(gen.sampling)}
