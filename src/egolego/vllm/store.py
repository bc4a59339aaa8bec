"""The embedding store: H_i and H_t for every pair, in sharded safetensors with an index.

Layout of a store folder::

    index-<writer>.json          one per writer (shard index / process): model fingerprint, the VLLM folder that
                                 wrote it ("vllm"), dtype, shapes, and {pair_id: {"shard", "row", "length"}}
    shard-<writer>-<k>.safetensors   h_img (R, M, D), h_txt (R, N, D), length (R,)

Each shard is written to a temp name and renamed, then the writer's index is rewritten the same way, so a
killed run loses at most the unflushed rows; a rerun skips every pair already in any index. Several writers
(``--num-shards/--shard-index``, ``accelerate launch``) never touch each other's files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..atomic import atomic_path
from ..atomic import write_json as atomic_json

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class Embedding:
    h_img: torch.Tensor  # (M, D)
    h_txt: torch.Tensor  # (N, D), zero rows past ``length``
    length: int


class EmbeddingStore:
    """Read access (and the set of stored ids) over every writer's index."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.entries: dict[str, dict] = {}
        self.meta: dict = {}
        for f in sorted(self.root.glob("index-*.json")):
            idx = json.loads(f.read_text())
            if self.meta and (idx["image_shape"], idx["text_shape"], idx["fingerprint"]) != (
                    self.meta["image_shape"], self.meta["text_shape"], self.meta["fingerprint"]):
                raise ValueError(f"{f}: written by another model or with other shapes than the rest of {self.root}")
            self.meta = {k: v for k, v in idx.items() if k != "entries"}
            self.entries.update(idx["entries"])
        self._open: dict[str, object] = {}

    def __contains__(self, pair_id: str) -> bool:
        return self._key(pair_id) in self.entries

    def _key(self, pair_id: str) -> str:
        """A timeline pair (``P01_11_12@p0.50``) reads its action's embeddings: the VLLM saw the same input frame
        and question, so they are the same (``data.manifest.action_key``)."""
        if pair_id in self.entries:
            return pair_id
        from ..data.manifest import action_key

        return action_key(pair_id)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.meta["image_shape"])

    @property
    def vllm(self) -> Path | None:
        """The tuned VLLM folder that wrote the store (None for a store written before it was recorded)."""
        return Path(self.meta["vllm"]) if self.meta.get("vllm") else None

    @property
    def text_shape(self) -> tuple[int, int]:
        return tuple(self.meta["text_shape"])

    def get(self, pair_id: str) -> Embedding:
        if pair_id not in self:
            raise KeyError(f"pair {pair_id!r} is not in the embedding store {self.root}")
        e = self.entries[self._key(pair_id)]
        f = self._open.get(e["shard"])
        if f is None:
            f = self._open[e["shard"]] = safe_open(str(self.root / e["shard"]), framework="pt")
        r = e["row"]
        return Embedding(f.get_slice("h_img")[r:r + 1][0], f.get_slice("h_txt")[r:r + 1][0], int(e["length"]))

    def bytes_per_pair(self) -> float:
        total = sum(p.stat().st_size for p in self.root.glob("shard-*.safetensors"))
        return total / max(1, len(self))


class StoreWriter:
    """Append embeddings; ``flush`` every ``shard_size`` rows (and at ``close``)."""

    def __init__(self, root: str | Path, writer: str, image_shape: tuple[int, int], text_shape: tuple[int, int],
                 fingerprint: str, dtype: str = "float16", shard_size: int = 256, vllm: str | Path | None = None):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.writer, self.dtype, self.shard_size = writer, dtype, shard_size
        self.index_path = self.root / f"index-{writer}.json"
        if self.index_path.exists():
            self.index = json.loads(self.index_path.read_text())
            if (tuple(self.index["image_shape"]), tuple(self.index["text_shape"]), self.index["fingerprint"]) != (
                    tuple(image_shape), tuple(text_shape), fingerprint):
                raise ValueError(f"{self.index_path} was written by another model or with other shapes")
        else:
            self.index = {"fingerprint": fingerprint, "dtype": dtype, "image_shape": list(image_shape),
                          "text_shape": list(text_shape), "entries": {}}
        if vllm is not None:
            self.index["vllm"] = str(Path(vllm).resolve())
            from .model import folder_fingerprint

            self.index["vllm_files"] = folder_fingerprint(vllm)  # checkable at any load precision
        self._rows: list[tuple[str, torch.Tensor, torch.Tensor, int]] = []
        self._next = len({e["shard"] for e in self.index["entries"].values()})

    def add(self, pair_id: str, h_img: torch.Tensor, h_txt: torch.Tensor, length: int) -> None:
        """h_img (M, D); h_txt (n, D) with n = the true length (it is truncated / zero-padded to N here)."""
        n, d = self.index["text_shape"]
        if tuple(h_img.shape) != tuple(self.index["image_shape"]):
            raise ValueError(f"h_img of {pair_id} has shape {tuple(h_img.shape)}, the store holds {self.index['image_shape']}")
        length = min(int(length), n)
        padded = torch.zeros(n, d, dtype=h_txt.dtype)
        padded[:length] = h_txt[:length]
        self._rows.append((pair_id, h_img.detach().cpu(), padded, length))
        if len(self._rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        dt = DTYPES[self.dtype]
        name = f"shard-{self.writer}-{self._next:05d}.safetensors"
        tensors = {"h_img": torch.stack([r[1] for r in self._rows]).to(dt).contiguous(),
                   "h_txt": torch.stack([r[2] for r in self._rows]).to(dt).contiguous(),
                   "length": torch.tensor([r[3] for r in self._rows], dtype=torch.int32)}
        with atomic_path(self.root / name) as tmp:
            save_file(tensors, str(tmp), metadata={"pair_ids": json.dumps([r[0] for r in self._rows])})
        for row, (pid, _, _, length) in enumerate(self._rows):
            self.index["entries"][pid] = {"shard": name, "row": row, "length": length}
        atomic_json(self.index_path, self.index)
        self._rows.clear()
        self._next += 1

    def close(self) -> None:
        self.flush()
        if not self.index_path.exists():
            atomic_json(self.index_path, self.index)
