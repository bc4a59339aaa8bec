"""The pairs manifest: one row per action, the interface between data building, the VLLM and the LDM.

A manifest is a folder: ``pairs.parquet`` plus the images it points to (paths relative to the folder)::

    pair_id          str    unique, stable ("P01_11_12", an Ego4D narration uid, an EgoSynth action id)
    source           str    "epic" | "ego4d" | "egosynth"
    split            str    "train" | "test"
    video_id         str    the split is by video: no video in both splits
    label            str    the action label / narration ("take cup")
    description      str    the detailed description R ("" until curation or the VLLM writes it)
    input_path       str    square input frame (the model's resolution)
    target_path      str    square target frame
    target_full_path str    target at the original aspect ratio (metrics)
    boxes            str    JSON: {"input": {entity: [x1, y1, x2, y2]}, "target": {...}}, normalised, top-left
    delta            float  seconds between the input and the target frame (transition time)
    input_frame      int    the chosen frames' numbers in the source's numbering (null for oracle pairs)
    target_frame     int
    progress         float  timeline pairs only (``data build --timeline``): how far the target frame lies from the
                            input (0) to the action's target frame (1); null for a single-frame pair (= 1)

A timeline pair's id is its action's id + ``@p0.50``; it shares the action's input frame, label, description and
VLLM embeddings (the VLLM sees the same frame and question). Stages that work per action (curation, VLLM tuning,
enrichment, single-frame models) read ``action_rows``.

Writes are atomic (temp file, rename).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_path
from ..errors import InputError
from ..names import safe_name

COLUMNS = {"pair_id": pa.string(), "source": pa.string(), "split": pa.string(), "video_id": pa.string(),
           "label": pa.string(), "description": pa.string(), "input_path": pa.string(), "target_path": pa.string(),
           "target_full_path": pa.string(), "boxes": pa.string(), "delta": pa.float64(),
           "input_frame": pa.int64(), "target_frame": pa.int64(), "progress": pa.float64()}
OPTIONAL = ("input_frame", "target_frame", "progress")  # absent in manifests written before them
TIMELINE_MARK = "@p"
SCHEMA = pa.schema(list(COLUMNS.items()))
FILE = "pairs.parquet"


def manifest_file(path: str | Path) -> Path:
    p = Path(path)
    return p / FILE if p.is_dir() or p.suffix != ".parquet" else p


def read_manifest(path: str | Path) -> list[dict]:
    """Rows as dicts; raises a clear error for a missing file or a wrong schema."""
    f = manifest_file(path)
    if not f.is_file():
        raise FileNotFoundError(f"no pairs manifest at {f}")
    with open(f, "rb") as fh:  # one open file: a writer replacing the manifest meanwhile cannot mix two versions
        # on one thread: after a threaded read pyarrow 26 could abort the interpreter at exit (rc 134)
        table = pq.read_table(fh, use_threads=False)
    missing = [c for c in COLUMNS if c not in table.column_names and c not in OPTIONAL]
    if missing:
        raise ValueError(f"{f}: not a pairs manifest, missing columns {missing}")
    rows = table.to_pylist()
    check_rows(rows, f)
    return rows


PATH_COLUMNS = ("input_path", "target_path", "target_full_path")
TEXT_COLUMNS = ("split", "label", "description")  # read as text by every stage: a null would fail deep inside one


def check_rows(rows: list[dict], where: str | Path) -> None:
    """Refuse what would make every later stage wrong: a repeated ``pair_id`` (eval would score every pair
    against one image) and an image path outside the manifest's folder (a downloaded manifest pointing at
    ``/etc/passwd`` or ``../../x`` would be read and copied into exports)."""
    seen: set = set()
    for r in rows:
        pid = r.get("pair_id")
        if not isinstance(pid, str) or not pid:
            raise ValueError(f"{where}: a row has no pair_id")
        if pid in seen:
            raise ValueError(f"{where}: pair_id {pid!r} appears more than once (pair ids must be unique)")
        seen.add(pid)
        for c in TEXT_COLUMNS:
            if not isinstance(r.get(c), str):
                raise ValueError(f"{where}: pair {pid!r} has no {c} (the column holds {r.get(c)!r}; every row needs "
                                 f"a string, \"\" for none)")
        for c in PATH_COLUMNS:
            if r.get(c):
                _inside(r[c], where)
        p = r.get("progress")
        if p is not None and not 0 < p <= 1:  # also NaN
            raise ValueError(f"{where}: pair {pid!r} has progress {p!r}; a timeline pair's lies in (0, 1]")


def _inside(rel, where) -> str:
    """``rel`` normalised, when it is a relative path that stays inside the manifest folder; else ValueError."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or os.path.isabs(rel) or rel.startswith("~"):
        raise ValueError(f"{where}: image path {rel!r} is not a relative path inside the manifest folder")
    norm = os.path.normpath(rel)
    if norm in (".", "..") or norm.startswith("../"):
        raise ValueError(f"{where}: image path {rel!r} leads outside the manifest folder")
    return norm


def write_manifest(rows: list[dict], path: str | Path) -> Path:
    f = manifest_file(path)
    f.parent.mkdir(parents=True, exist_ok=True)
    ids = [r["pair_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("pair_id values are not unique")
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=SCHEMA)
    with atomic_path(f) as tmp:
        pq.write_table(table, tmp)
    return f


def refuse_existing(out: str | Path, overwrite: bool) -> None:
    """Writers of a whole manifest must not silently replace one (it may hold curated or VLLM descriptions)."""
    f = manifest_file(out)
    if f.exists() and not overwrite:
        raise InputError("out", f"{f} already exists (it may hold curated descriptions); pass --overwrite to replace it")


def merge_manifests(shards: list[str | Path], out: str | Path, overwrite: bool = False) -> tuple[Path, int]:
    """One manifest over several (``data build --num-shards`` writes ``shard-IofK`` folders). Images of a shard
    inside ``out`` stay where they are; those of a shard elsewhere are hard-linked (copied across file systems)
    into ``out/shards/``, so every path of the merged manifest stays inside its folder. Refuses shards that
    share a pair id, and an existing manifest at ``out`` unless ``overwrite``."""
    out = Path(out)
    refuse_existing(out, overwrite)
    rows, seen = [], {}
    for k, sh in enumerate(shards):
        shard_rows = read_manifest(sh)
        for r in shard_rows:
            if r["pair_id"] in seen:
                raise ValueError(f"pair {r['pair_id']!r} is in both {seen[r['pair_id']]} and {sh}")
            seen[r["pair_id"]] = sh
        sh_dir = manifest_dir(sh).resolve()
        inside = sh_dir.is_relative_to(out.resolve())
        for r in shard_rows:
            for c in PATH_COLUMNS:
                if r.get(c):
                    src = resolve(sh, r[c])
                    if inside:
                        r[c] = os.path.relpath(sh_dir / os.path.normpath(r[c]), out.resolve())
                    else:
                        r[c] = f"shards/{k}-{safe_name(sh_dir.name)}/{os.path.normpath(r[c])}"
                        _link(src, out / r[c])
            rows.append(r)
    rows.sort(key=lambda r: r["pair_id"])
    return write_manifest(rows, out), len(rows)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def update_column(path: str | Path, column: str, values: dict[str, str]) -> None:
    """Set ``column`` for the given pair ids (e.g. descriptions written by curation or the VLLM); a timeline pair
    without its own value takes its action's."""
    rows = read_manifest(path)
    for r in rows:
        key = r["pair_id"] if r["pair_id"] in values else action_key(r["pair_id"])
        if key in values:
            r[column] = values[key]
    write_manifest(rows, path)


def timeline_id(action_id: str, progress: float) -> str:
    """The pair id of an action's frame at ``progress`` (< 1): ``P01_11_12@p0.50``."""
    return f"{action_id}{TIMELINE_MARK}{progress:.2f}"


def action_key(pair_id: str) -> str:
    """The action a pair belongs to: its own id, or a timeline pair's action id."""
    return pair_id.split(TIMELINE_MARK, 1)[0]


def progress_of(row: dict) -> float:
    """How far along the action a row's target frame is (1 for a single-frame pair)."""
    p = row.get("progress")
    return 1.0 if p is None else float(p)


def action_rows(rows: list[dict]) -> list[dict]:
    """The single-frame pairs (one per action) of a manifest that may hold timeline pairs."""
    return [r for r in rows if TIMELINE_MARK not in r["pair_id"]]


def manifest_dir(path: str | Path) -> Path:
    """The folder a manifest's relative paths start from (``path`` may name the folder or its parquet file)."""
    f = manifest_file(path)
    return f.parent


def resolve(root: str | Path, rel: str) -> Path:
    """The file a manifest path names, refused (ValueError) unless it lies inside the manifest folder."""
    return manifest_dir(root) / _inside(rel, manifest_file(root))

