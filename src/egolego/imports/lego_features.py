"""``egolego import lego-features``: the released VLLM features (``.npy`` per frame) into our embedding store.

The release (``bolinlai/LEGO-VLLM-Features-*``, ``scripts/download_vllm_features.sh``) has two trees, one of H_i
(``vllm_image_feature/<model>/<split>/``) and one of H_t (``vllm_text_feature/<model>/<split>/``), each
``<clip_id>/<action_id>/<frame>.npy`` — the path of the input frame ``image_0`` with ``jpg`` -> ``npy``:

- H_i: (256, 5120) fp16, the projector's output on the input frame;
- H_t: (T, 5120) fp16, the last layer at the last position per generated token (a legacy (T, L, 5120) file: the
  last of its L rows, as ``egogen_dataset.py`` takes it).

The store's pair id is the action id (``export_lego`` / ``import lego-dataset`` use the same rule), so two clips
with one action id are refused. H_t is cut / zero-padded to ``rows`` (77). Its ``length`` decides what our
conditioner masks: ``official`` (default) stores ``rows``, so π sees the zero rows unmasked exactly as the released
model did in training and at inference; ``true`` stores min(T, rows), the padding mask our enrichment uses.

Both trees are listed and matched before any array is read, so a missing file fails at once; ``np.load`` runs
with ``allow_pickle=False`` (a ``.npy`` from the internet cannot carry code that way). A rerun skips the pairs
already stored (the store's writes are atomic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, MissingInput
from ..vllm.store import StoreWriter
from . import release

LENGTHS = ("official", "true")
FINGERPRINT = "lego-release-features"
WRITER = "lego-release"


def feature_files(root: str | Path, arg: str) -> dict[str, Path]:
    """{pair id (the action id): file} for every ``<clip>/<action>/<frame>.npy`` under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise MissingInput(arg, f"{root} is not a folder")
    out: dict[str, Path] = {}
    for f in sorted(root.rglob("*.npy")):
        rel = f.relative_to(root)
        if len(rel.parts) < 3:
            raise InputError(arg, f"{f}: not in the release's <clip_id>/<action_id>/<frame>.npy layout")
        action = rel.parts[-2]
        if action in out:
            raise InputError(arg, f"action id {action!r} appears twice ({out[action]} and {f}); pair ids must be unique")
        out[action] = f
    if not out:
        raise InputError(arg, f"{root} holds no .npy features")
    return out


def _array(f: Path, arg: str) -> np.ndarray:
    try:
        return np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(arg, f"{f}: not a readable .npy array ({e})") from None


def text_rows(a: np.ndarray, f: Path) -> np.ndarray:
    """(T, D) from a (T, D) file or a legacy (T, L, D) one (its last row per token, as ``egogen_dataset.py``)."""
    if a.ndim == 3:
        a = a[:, -1, :]
    if a.ndim != 2:
        raise InputError("text_features", f"{f}: H_t must be (T, D) or (T, L, D), got shape {a.shape}")
    return a


def import_features(image_features: str | Path, text_features: str | Path, out: str | Path, rows: int = release.TEXT_ROWS,
                    lengths: str = "official", dtype: str = "float16", shard_size: int = 256) -> dict:
    """Write the store ``out``; returns {"pairs", "added", "skipped", "image_shape", "text_shape", "lengths"}."""
    if lengths not in LENGTHS:
        raise InputError("lengths", f"must be one of {', '.join(LENGTHS)}, got {lengths!r}")
    imgs = feature_files(image_features, "image_features")
    txts = feature_files(text_features, "text_features")
    for a, b, flag in ((imgs, txts, "text_features"), (txts, imgs, "image_features")):
        lost = sorted(set(a) - set(b))
        if lost:
            raise InputError(flag, f"no feature for action {lost[0]} ({a[lost[0]].name}; {len(lost)} actions lack one)")
    first = imgs[next(iter(imgs))]
    h0 = _array(first, "image_features")
    if h0.ndim != 2:
        raise InputError("image_features", f"{first}: H_i must be (tokens, D), got shape {h0.shape}")
    d = h0.shape[1]
    writer = StoreWriter(out, WRITER, tuple(h0.shape), (rows, d), FINGERPRINT, dtype, shard_size)
    if writer.index.get("lengths", lengths) != lengths:
        raise InputError("lengths", f"{out} was written with --lengths {writer.index['lengths']}; keep it, or use "
                         "another --out")
    writer.index["lengths"] = lengths  # kept in the store's index: what its `length` means
    done = set(writer.index["entries"])
    added = 0
    for pid, fi in imgs.items():
        if pid in done:
            continue
        h_img = _array(fi, "image_features")
        if h_img.shape != h0.shape:
            raise InputError("image_features", f"{fi}: shape {h_img.shape}, the others have {h0.shape}")
        h_txt = text_rows(_array(txts[pid], "text_features"), txts[pid])
        if h_txt.shape[1] != d:
            raise InputError("text_features", f"{txts[pid]}: width {h_txt.shape[1]}, H_i has {d}")
        n = min(len(h_txt), rows)
        padded = np.zeros((rows, d), dtype=h_txt.dtype)  # (rows, D): cut / zero-padded as egogen_dataset.py
        padded[:n] = h_txt[:n]
        length = rows if lengths == "official" else n
        writer.add(pid, torch.from_numpy(h_img.copy()), torch.from_numpy(padded), length)
        added += 1
    writer.close()
    return {"pairs": len(imgs), "added": added, "skipped": len(imgs) - added, "image_shape": list(h0.shape),
            "text_shape": [rows, d], "lengths": lengths}
