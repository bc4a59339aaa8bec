"""Training data for the LDM: a pairs manifest + (for modes that use them) an embedding store.

``LegoPairs[i]`` yields the input and target images (3, S, S) in [-1, 1], the label, the description, H_i
(M, D), H_t (N, D), the true length of H_t and the pair id.

Horizontal flips must keep image and condition consistent. A flipped "left hand" is a right hand, so the
words are swapped in the label and description ("left" <-> "right"). VLLM embeddings of the unflipped frame
cannot be swapped, so with ``flip="auto"`` (the default) only the text-only modes (``label``, ``desc``) flip;
modes that use H_i / H_t never pair a flipped image with unflipped embeddings.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.manifest import action_key, action_rows, progress_of, read_manifest, resolve
from ..errors import InputError
from ..vllm.store import EmbeddingStore
from .modes import check_covered, mode_uses, needs_embeddings, text_key

_SIDE = re.compile(r"\b(left|right|Left|Right|LEFT|RIGHT)\b")
_SWAP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "LEFT": "RIGHT", "RIGHT": "LEFT"}


def swap_sides(text: str) -> str:
    """"the left hand ... on the right" -> "the right hand ... on the left"."""
    return _SIDE.sub(lambda m: _SWAP[m.group(0)], text)


def flip_allowed(mode: str, policy: str) -> bool:
    if policy not in ("auto", "none", "swap"):
        raise ValueError(f"flip must be auto, none or swap; got {policy!r}")
    use_img, use_txt = mode_uses(mode)
    if policy == "swap" and (use_img or use_txt):
        raise ValueError(f"flip=swap cannot be used with mode {mode!r}: its VLLM embeddings describe the unflipped "
                         "frame; use flip=auto (no flip for embedding modes) or flip=none")
    return policy != "none" and not (use_img or use_txt)


def load_image(path: Path, size: int) -> torch.Tensor:
    """(3, size, size) in [-1, 1]; a clear error names a missing or corrupt file."""
    try:
        im = Image.open(path).convert("RGB")
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from None
    if im.size != (size, size):
        im = im.resize((size, size), Image.LANCZOS)
    arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class LegoPairs(torch.utils.data.Dataset):
    """One split of a pairs manifest as training items, with the text and embeddings the mode reads
    (``ldm.modes``): refuses a store that lacks a pair and, for description modes, a pair without a description.

    ``limit`` > 0 keeps that many of the split's pairs (``ldm.train_pairs``): a fixed random subset, nested across
    limits (the 250 pairs of a 250-pair run are among the 500 of a 500-pair run), in manifest order.

    ``timeline``: also the timeline pairs of the kept actions (``data build --timeline``), for a model conditioned on
    progress (``ldm.progress``); without it only the single-frame pairs, so that a single-frame model never learns a
    half-done action as its target. ``done_repeat``: with ``timeline``, each action's finished frame appears that
    many times (``ldm.progress_done_repeat``), so that p = 1 — the single-frame task — keeps its share of the steps;
    ``mid_repeat``: each frame part-way (p < 1) that many times (``ldm.progress_mid_repeat``), the other way round."""

    def __init__(self, manifest: str | Path, split: str = "train", embeddings: str | Path | None = None,
                 mode: str = "lego", size: int = 64, limit: int = 0, timeline: bool = False, done_repeat: int = 1,
                 mid_repeat: int = 1):
        self.root = Path(manifest)
        rows = [r for r in read_manifest(manifest) if r["split"] == split]
        self.rows = action_rows(rows)
        if not self.rows:
            raise ValueError(f"{manifest}: no pairs in split {split!r}")
        if 0 < limit < len(self.rows):
            keep = np.random.default_rng(0).permutation(len(self.rows))[:limit]
            self.rows = [self.rows[i] for i in sorted(keep.tolist())]
        if timeline:
            for key, n in (("progress_done_repeat", done_repeat), ("progress_mid_repeat", mid_repeat)):
                if n < 1:
                    raise ValueError(f"ldm.{key} must be at least 1, got {n}")
            kept = {r["pair_id"] for r in self.rows}
            self.rows = [r for r in rows if action_key(r["pair_id"]) in kept
                         for _ in range(done_repeat if r["pair_id"] in kept else mid_repeat)]
            if len(self.rows) == len(kept) * done_repeat:
                raise ValueError(f"{manifest}: ldm.progress needs timeline pairs (`egolego data build --timeline K`); "
                                 "this manifest holds single frames only")
        self.progress = torch.tensor([progress_of(r) for r in self.rows])  # (n,) 1 for the single-frame pairs
        self.mode, self.size = mode, size
        self.text_key = text_key(mode)
        self.store = None
        if needs_embeddings(mode):
            if embeddings is None:
                raise InputError("embeddings", f"mode {mode!r} needs the store written by `egolego vllm enrich`")
            self.store = EmbeddingStore(embeddings)
            check_covered(self.store, (r["pair_id"] for r in self.rows))
        if self.text_key == "description":
            empty = [r["pair_id"] for r in self.rows if not r["description"]]
            if empty:
                raise ValueError(f"{len(empty)} pairs have no description (first: {empty[0]}); mode {mode!r} needs "
                                 "them: run `egolego curate` or `egolego vllm enrich` first, or use --conditioning label")

    def __len__(self) -> int:
        return len(self.rows)

    def prompt(self, i: int) -> str:
        return self.rows[i][self.text_key]

    def __getitem__(self, i: int) -> dict:
        r = self.rows[i]
        item = {"pair_id": r["pair_id"], "label": r["label"], "description": r["description"],
                "prompt": self.prompt(i), "progress": float(self.progress[i]),
                "input": load_image(resolve(self.root, r["input_path"]), self.size),
                "target": load_image(resolve(self.root, r["target_path"]), self.size)}
        if self.store is not None:
            e = self.store.get(r["pair_id"])
            item.update(h_img=e.h_img.float(), h_txt=e.h_txt.float(), h_len=e.length)
        return item
