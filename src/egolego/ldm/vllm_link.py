"""Which tuned VLLM goes with a LEGO model folder.

A ``desc+img`` / ``desc+txt`` / ``lego`` model reads H_i / H_t, so sampling it on a new image needs the VLLM that
wrote the embeddings it was trained on. ``egolego train`` records that VLLM (the embedding store names it) in
``<model>/vllm.json``; ``egolego generate``, ``eval`` and ``serve`` find it there. A VLLM copied into
``<model>/vllm`` (a self-contained model folder) comes first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RECORD = "vllm.json"


def record_vllm(store, model_dir: str | Path) -> Path | None:
    """Write ``<model>/vllm.json`` naming the VLLM that wrote ``store`` (an ``EmbeddingStore``); None when the store
    does not name one (a store written before the VLLM was recorded)."""
    if store is None or store.vllm is None:
        return None
    d = Path(model_dir)
    f = d / RECORD
    f.write_text(json.dumps({"vllm": str(store.vllm), "vllm_from_model": os.path.relpath(store.vllm, d.resolve()),
                             "fingerprint": store.meta.get("fingerprint"), "vllm_files": store.meta.get("vllm_files"),
                             "store": str(Path(store.root).resolve())},
                            indent=1))
    return f


def recorded_vllm(model_dir: str | Path) -> dict | None:
    """The record of ``record_vllm`` (None without one)."""
    f = Path(model_dir) / RECORD
    return json.loads(f.read_text()) if f.is_file() else None


def vllm_folder(model_dir: str | Path) -> Path | None:
    """The tuned VLLM of a model: ``<model>/vllm``, else the recorded one (looked for relative to the model folder
    first, so a run folder moved as a whole keeps working); None when there is none or it is gone."""
    own = Path(model_dir) / "vllm"
    if own.is_dir():
        return own
    rec = recorded_vllm(model_dir)
    if rec is None:
        return None
    near = [Path(model_dir) / rec["vllm_from_model"]] if rec.get("vllm_from_model") else []
    for cand in (*near, Path(rec["vllm"])):
        if (cand / "config.json").is_file():
            return cand
    return None


def missing_vllm_hint(model_dir: str | Path) -> str:
    """Why no VLLM was found, for error messages."""
    rec = recorded_vllm(model_dir)
    if rec is not None:
        return f"the VLLM it was trained with ({rec['vllm']}) is gone; put a copy in {Path(model_dir) / 'vllm'}"
    return (f"{model_dir} names no tuned VLLM (train it with --embeddings from `egolego vllm enrich`, or copy the "
            f"VLLM into {Path(model_dir) / 'vllm'})")


def refuse_other_vllm(model_dir: str | Path, vllm_dir: str | Path) -> bool:
    """Refuse (``InputError``) a VLLM folder whose files are not those that wrote the model's training embeddings;
    True when checked, False for a record from before file fingerprints (the caller checks the loaded model).
    Reads only the config and a few stored values, so it runs before the VLLM is loaded, at any precision."""
    from ..errors import InputError
    from ..vllm.model import folder_fingerprint

    want = (recorded_vllm(model_dir) or {}).get("vllm_files")
    if not want:
        return False
    have = folder_fingerprint(vllm_dir)
    if have != want:
        raise InputError("model", f"the VLLM in {vllm_dir} is not the one that wrote this model's training embeddings "
                         f"(its files' fingerprint {have}, recorded {want} in {Path(model_dir) / RECORD})")
    return True
