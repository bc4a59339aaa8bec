"""Exporters: the official LEGO JSON layout, and an InstructPix2Pix-style parquet for diffusers' trainer.

- ``lego``: ``{clip_id: {action_id: {"image_0", "image_1", "action", "llava_forecast_finetune"}}}`` (video id as
  clip id, pair id as action id; image paths relative to the manifest folder), one file per split, as the
  official ``egogen_dataset.py`` reads it.
- ``ip2p``: ``<split>.parquet`` with InstructPix2Pix's columns ``input_image``, ``edit_prompt``,
  ``edited_image`` (images as {bytes, path} structs with Hugging Face ``Image`` feature metadata), so
  ``load_dataset("parquet", ...)`` and ``examples/instruct_pix2pix/train_instruct_pix2pix.py`` read them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .manifest import action_rows, read_manifest, resolve


def export_lego(pairs: str | Path, out: str | Path) -> list[Path]:
    rows = action_rows(read_manifest(pairs))  # both formats hold one frame per action
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for split in sorted({r["split"] for r in rows}):
        doc: dict = {}
        for r in rows:
            if r["split"] == split:
                doc.setdefault(r["video_id"], {})[r["pair_id"]] = {
                    "image_0": r["input_path"], "image_1": r["target_path"], "action": r["label"],
                    "llava_forecast_finetune": r["description"]}
        f = out / f"lego_{'val' if split == 'test' else split}.json"
        f.write_text(json.dumps(doc, indent=1))
        files.append(f)
    return files


IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HF_FEATURES = {"input_image": {"_type": "Image"}, "edit_prompt": {"dtype": "string", "_type": "Value"},
               "edited_image": {"_type": "Image"}}


def export_ip2p(pairs: str | Path, out: str | Path, prompt: str = "description") -> list[Path]:
    """``prompt``: which manifest column becomes ``edit_prompt`` (``description`` or ``label``)."""
    rows = action_rows(read_manifest(pairs))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("input_image", IMAGE), ("edit_prompt", pa.string()), ("edited_image", IMAGE)],
                       metadata={"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})
    files = []
    for split in sorted({r["split"] for r in rows}):
        sel = [r for r in rows if r["split"] == split]
        table = pa.Table.from_pylist([{
            "input_image": {"bytes": resolve(pairs, r["input_path"]).read_bytes(), "path": r["input_path"]},
            "edit_prompt": r[prompt] or r["label"],
            "edited_image": {"bytes": resolve(pairs, r["target_path"]).read_bytes(), "path": r["target_path"]}}
            for r in sel], schema=schema)
        f = out / f"{split}.parquet"
        pq.write_table(table, f)
        files.append(f)
    return files
