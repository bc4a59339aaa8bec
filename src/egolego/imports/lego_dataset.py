"""``egolego import lego-dataset``: the released dataset JSONs + frames as a pairs manifest (the inverse of
``data export --format lego``).

The release (``bolinlai/LEGO-Dataset``, README "Dataset Structure")::

    ego4d_train.json  ego4d_val.json  epickitchen_train.json  epickitchen_val.json
    EgoGen/ego4d.fho/{train,val,val_gt_for_metric}/<clip_id>/<action_id>/<frame>.jpg

A JSON is ``{clip_id: {action_id: {"image_0", "image_1", "action", "llava_forecast_finetune", ...}}}`` with the
image paths relative to the split's frame folder (``EgoGen/ego4d.fho/val`` for ``*_val.json``). ``--frames`` names
the folder holding the split folders (``EgoGen/ego4d.fho``) or the frames' folder itself (the layout
``export_lego`` writes, paths relative to the manifest folder); which one is decided per JSON by where its
first image is. Rows: pair id = action id, video id = clip id, label = ``action`` (Ego4D's raw ``#C C ...``
narration), description = ``llava_forecast_finetune``, split ``train`` / ``test`` (the release's ``val`` is the
paper's test set), ``target_full_path`` the ``val_gt_for_metric`` copy (original aspect ratio) when there is
one. Boxes, δ and frame numbers are not in the JSONs (``*_metadata.json`` has no frame timing) and stay empty.

Frames are hard-linked (copied across file systems) into the manifest folder under the same relative paths,
unless ``--out`` is the frames folder itself. An image path that leads outside ``--frames`` is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..data.manifest import refuse_existing, write_manifest
from ..errors import InputError, MissingInput

SPLITS = {"train": "train", "val": "test", "test": "test"}  # the file name's suffix -> the manifest's split
SOURCES = {"ego4d": "ego4d", "epickitchen": "epic", "epic": "epic"}
REQUIRED = ("image_0", "image_1", "action")
GT_FOLDER = "val_gt_for_metric"


def split_of(f: Path) -> tuple[str, str]:
    """(the release's split folder name, the manifest split) from ``<name>_<split>.json``."""
    stem = f.stem.lower()
    for suffix, split in SPLITS.items():
        if stem == suffix or stem.endswith("_" + suffix):
            return suffix, split
    raise InputError("json", f"{f.name}: cannot tell its split; name it <dataset>_train.json or <dataset>_val.json")


def source_of(f: Path, given: str | None) -> str:
    if given:
        return given
    prefix = f.stem.lower().split("_")[0]
    return SOURCES.get(prefix, "lego")


def _rel(path, where: str) -> str:
    """A JSON image path, refused unless it is relative and stays inside the frames folder."""
    if not isinstance(path, str) or not path or "\x00" in path or os.path.isabs(path) or path.startswith("~"):
        raise InputError("json", f"{where}: image path {path!r} is not a relative path")
    norm = os.path.normpath(path)
    if norm == ".." or norm.startswith("../"):
        raise InputError("json", f"{where}: image path {path!r} leads outside --frames")
    return norm


def _entries(f: Path):
    """(clip_id, action_id, entry) of one release JSON, its shape checked."""
    try:
        doc = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError("json", f"{f}: not a readable JSON file ({e})") from None
    if not isinstance(doc, dict):
        raise InputError("json", f"{f}: expected {{clip_id: {{action_id: {{...}}}}}}, got a {type(doc).__name__}")
    for clip, actions in doc.items():
        if not isinstance(actions, dict):
            raise InputError("json", f"{f}: clip {clip!r} holds a {type(actions).__name__}, not {{action_id: {{...}}}}")
        for action, e in actions.items():
            missing = [k for k in REQUIRED if not isinstance(e, dict) or not isinstance(e.get(k), str)]
            if missing:
                raise InputError("json", f"{f}: {clip}/{action} lacks {missing[0]!r}")
            yield clip, action, e


def _base(frames: Path, split_dir: str, first_image: str, f: Path) -> Path:
    """The folder a JSON's image paths start from: ``frames/<split>`` (the release) or ``frames`` (an export)."""
    for cand in (frames / split_dir, frames):
        if (cand / first_image).is_file():
            return cand
    raise MissingInput("frames", f"{f.name}'s first image {first_image} is neither in {frames / split_dir} nor in {frames}")


def _place(frames: Path, out: Path, rel: str) -> None:
    """Hard-link (or copy) ``frames/rel`` to ``out/rel``, unless it is there already."""
    dst = out / rel
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(frames / rel, dst)
    except OSError:
        shutil.copyfile(frames / rel, dst)


def import_dataset(json_files: list[str | Path], frames: str | Path, out: str | Path, source: str | None = None,
                   overwrite: bool = False) -> dict:
    """Write the manifest ``out``; returns {"pairs", "splits": {split: n}, "linked": bool}."""
    frames, out = Path(frames), Path(out)
    if not frames.is_dir():
        raise MissingInput("frames", f"{frames} is not a folder")
    refuse_existing(out, overwrite)
    rows, seen = [], {}
    for jf in map(Path, json_files):
        if not jf.is_file():
            raise MissingInput("json", f"{jf} is not a file")
        split_dir, split = split_of(jf)
        src = source_of(jf, source)
        base = None
        for clip, action, e in _entries(jf):
            if action in seen:
                raise InputError("json", f"action id {action!r} is in both {seen[action]} and {jf.name}/{clip}; "
                                 "pair ids must be unique")
            seen[action] = f"{jf.name}/{clip}"
            where = f"{jf.name}: {clip}/{action}"
            im0, im1 = _rel(e["image_0"], where), _rel(e["image_1"], where)
            base = base or _base(frames, split_dir, im0, jf)
            paths = []
            for im in (im0, im1):
                if not (base / im).is_file():
                    raise MissingInput("frames", f"{where}: {base / im} does not exist")
                paths.append(os.path.relpath(base / im, frames))
            gt = frames / GT_FOLDER / im1
            rows.append({"pair_id": action, "source": src, "split": split, "video_id": clip, "label": e["action"],
                         "description": e.get("llava_forecast_finetune") or "", "input_path": paths[0],
                         "target_path": paths[1],
                         "target_full_path": os.path.relpath(gt, frames) if gt.is_file() else paths[1],
                         "boxes": None, "delta": None, "input_frame": None, "target_frame": None})
    if not rows:
        raise InputError("json", "the JSON files hold no pairs")
    link = out.resolve() != frames.resolve()
    if link:
        for r in rows:
            for c in ("input_path", "target_path", "target_full_path"):
                _place(frames, out, r[c])
    write_manifest(rows, out)
    splits: dict[str, int] = {}
    for r in rows:
        splits[r["split"]] = splits.get(r["split"], 0) + 1
    return {"pairs": len(rows), "splits": splits, "linked": link}
