"""``egolego train-mask``: learn a trained model's change mask from its own frames of its training pairs.

1. The model draws every training pair (or the first ``pairs``) the way it samples, minus the composites
   (``keep_input`` 0, no mask): these are the frames the mask will be asked about. They are cached as PNGs in
   ``<model>.change_mask_frames/`` (atomic writes), so an interrupted run resumes where it stopped.
2. ``fit_change_mask`` learns, from (input, frame, target), where the true frame differs from the input; 10 % of
   the pairs are held out and its IoU / recall / specificity on them are reported.
3. The net is added to the model folder as the pipeline's ``change_mask`` component and sampling's ``change_mask``
   is turned on in ``model_index.json`` (both written beside and renamed), with the report in ``change_mask.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import write_json
from ..config import LdmConfig as L
from ..data.manifest import action_rows, read_manifest, resolve
from ..errors import InputError
from .change_mask import fit_change_mask
from .data import load_image
from .frame_set import draw_frames, frame_file, missing_rows
from .model_folder import lego_model_folder

COMPONENT = ["egolego.ldm.change_mask", "ChangeMaskNet"]


def frames_dir(model: Path) -> Path:
    return model.with_name(model.name + ".change_mask_frames")


def draw_training_frames(model: Path, pairs: Path, rows: list[dict], store: Path | None, batch_size: int, seed: int,
                         device: str | None, progress: bool) -> Path:
    """The model's raw frames of ``rows`` in ``frames_dir(model)/<pair>.png``; existing ones are kept."""
    from .generate import FrameGenerator

    out = frames_dir(model)
    todo = missing_rows(rows, out)
    if todo:  # the model is loaded only when a frame is missing
        gen = FrameGenerator(model, device=device, keep_input=0.0, change_mask=False)
        gen.check_rows(todo, store)
        draw_frames(gen, pairs, todo, out, batch_size, seed, store, progress, desc="train-mask: the model's frames")
    return out


def add_change_mask(model: Path, net, report: dict) -> None:
    """Write ``net`` as the model's ``change_mask`` component and turn sampling's ``change_mask`` on."""
    index_file = model / "model_index.json"
    index = json.loads(index_file.read_text())
    tmp = model / "change_mask.part"
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(str(tmp))
    shutil.rmtree(model / "change_mask", ignore_errors=True)
    tmp.rename(model / "change_mask")
    index["change_mask"] = COMPONENT
    index["sampling"] = {**(index.get("sampling") or {}), "change_mask": True}
    write_json(model / "change_mask.json", report, indent=2)
    write_json(index_file, index, sort_keys=True, indent=2)  # last: the component is there before it is named


def train_change_mask(model: str | Path, pairs: str | Path, store: str | Path | None = None,
                      limit: int = L.change_mask_pairs, steps: int = L.change_mask_steps,
                      width: int = L.change_mask_width, threshold: float = L.change_mask_threshold,
                      dilate: int = L.change_mask_dilate, pos_weight: float = L.change_mask_pos_weight,
                      batch_size: int = 32, seed: int = L.seed, device: str | None = None, progress: bool = True) -> dict:
    """Learn ``model``'s change mask from its frames of the training split of ``pairs`` (see the module docstring);
    returns the report (held-out quality, pairs, steps)."""
    model, pairs = Path(model), Path(pairs)
    lego_model_folder(model)
    rows = [r for r in action_rows(read_manifest(pairs)) if r["split"] == "train"]
    rows = rows[:limit] if limit else rows
    if len(rows) < 4:
        raise InputError("pairs", f"{pairs}: {len(rows)} training pairs; the change mask needs at least 4")
    frames = draw_training_frames(model, pairs, rows, Path(store) if store else None, batch_size, seed, device,
                                  progress)
    size = Image.open(frame_file(frames, rows[0]["pair_id"])).size[0]
    images = torch.stack([load_image(resolve(pairs, r["input_path"]), size) for r in rows])  # (N, 3, S, S)
    drawn = torch.stack([load_image(frame_file(frames, r["pair_id"]), size) for r in rows])
    targets = torch.stack([load_image(resolve(pairs, r["target_path"]), size) for r in rows])
    bar = tqdm(total=steps, desc="train-mask: fit", disable=not progress, unit="step")

    def tick(step: int, loss: float) -> None:
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")

    net, report = fit_change_mask(images, drawn, targets, steps=steps, batch_size=batch_size, width=width,
                                  threshold=threshold, dilate=dilate, pos_weight=pos_weight, seed=seed,
                                  progress=tick)
    bar.close()
    report = {**report, "pairs": str(pairs), "width": width, "image_size": size}
    add_change_mask(model, net, report)
    return report


def train_configured_mask(ldm, model: str | Path, pairs: str | Path, store: str | Path | None,
                          progress: bool = True) -> dict | None:
    """After ``egolego train``: the change mask an ``LdmConfig`` asks for (``ldm.change_mask``), unless the model
    has one already; None when none is asked for."""
    if not ldm.change_mask or (Path(model) / "change_mask" / "config.json").is_file():
        return None
    return train_change_mask(model, pairs, store, limit=ldm.change_mask_pairs, steps=ldm.change_mask_steps,
                             width=ldm.change_mask_width, threshold=ldm.change_mask_threshold,
                             dilate=ldm.change_mask_dilate, pos_weight=ldm.change_mask_pos_weight, seed=ldm.seed,
                             progress=progress)
