"""Draw the frames of manifest rows into a folder, resumably: ``<folder>/<pair_id>.png``.

The one batch loop every frame set goes through — ``eval``'s frames of any method (``eval.generate_set``) and the
change mask's frames of the training pairs (``ldm.change_mask_train``): each frame is written atomically, so a killed
run draws only what is missing, and each pair has its own seeded generator (``names.pair_seed``), so a frame does
not depend on the batch size, the batch it fell in, or where a run resumed. ``keep_frames_drawn_with`` keeps a
folder's frames only when they were drawn the way now asked (method, seed, sampling: ``drawn_with.json``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..data.manifest import resolve
from ..names import pair_seed, safe_name


def frame_file(folder: Path, pair_id: str) -> Path:
    return folder / f"{safe_name(pair_id)}.png"


def missing_rows(rows: list[dict], folder: Path) -> list[dict]:
    """The rows whose frame ``folder`` does not hold yet."""
    return [r for r in rows if not frame_file(folder, r["pair_id"]).is_file()]


def save_frame(im: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


def draw_frames(gen, pairs: Path, rows: list[dict], folder: Path, batch_size: int, seed: int,
                store: str | Path | None = None, progress: bool = True, desc: str = "frames") -> None:
    """Draw ``rows`` with ``gen`` (anything with ``batch(squares, rows, generators, store)``: a ``FrameGenerator``
    or a baseline's generator) from their square input frames, ``batch_size`` at a time, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(rows), desc=desc, disable=not progress, unit="frame")
    for i in range(0, len(rows), batch_size):
        batch = rows[i:i + batch_size]
        squares = [Image.open(resolve(pairs, r["input_path"])).convert("RGB") for r in batch]
        gens = [torch.Generator().manual_seed(pair_seed(seed, r["pair_id"])) for r in batch]
        for r, im in zip(batch, gen.batch(squares, batch, gens, store)):
            save_frame(im, frame_file(folder, r["pair_id"]))
        bar.update(len(batch))
    bar.close()


def drawn_with(method, gen, seed: int, store) -> dict:
    """What decides a generated frame set: the method, its mode, the noise seed, the store and the resolved sampling
    of ``gen`` (a ``FrameGenerator`` or a baseline's generator) — the record ``keep_frames_drawn_with`` compares."""
    return {"method": str(method), "mode": gen.mode, "seed": seed, "store": str(store), "sampling": asdict(gen.sampling)}


def keep_frames_drawn_with(img_dir: Path, record: dict, progress: bool = True) -> None:
    """Keep the frames in ``img_dir`` only if they were drawn with ``record`` (recorded in ``drawn_with.json``);
    otherwise delete them (they are regenerated) and record ``record`` before drawing, so a killed run resumes."""
    record = json.loads(json.dumps(record, default=str))  # as it reads back: tuples become lists
    f = img_dir / "drawn_with.json"
    try:
        old = json.loads(f.read_text()) if f.is_file() else None
    except ValueError:
        old = None
    if old == record:
        return
    stale = list(img_dir.glob("*.png"))
    if stale and progress:
        why = "no record of how they were drawn" if old is None else f"drawn with {old}, not {record}"
        print(f"[frames] {img_dir}: {len(stale)} frames redrawn ({why})", flush=True)
    for p in stale:
        p.unlink()
    write_json(f, record)
