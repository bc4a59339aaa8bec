"""``egolego eval``: generate the evaluated split with one method, score every pair, aggregate.

Output folder::

    images/<pair_id>.png   the generated frames (reused on rerun)
    per_pair.parquet       one row per pair: ids, label, description, delta, one column per per-pair metric
    eval.json              method, mode, args, the set-level metrics (FID, KID), every metric's mean with a
                           95 % bootstrap interval, the skipped metrics with their reasons, the model's config
    new_actions/           one input frame with several other actions (App. C.3), for the report
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from ..atomic import atomic_path
from ..atomic import write_json as atomic_json
from ..data.manifest import read_manifest, resolve
from . import weights as W
from .generate_set import REFERENCES, generate_set, safe_name
from .pixels import psnr, ssim, to_unit
from .stats import bootstrap_ci

ALL_METRICS = ("psnr", "ssim", "lpips", "fid", "clip", "egovlp", "blip", "action", "desc_acc")


@dataclass
class EvalArgs:
    model: str  # a LEGO model folder, or "input" / "target"
    pairs: Path
    out: Path
    split: str = "test"
    metrics: tuple[str, ...] = ALL_METRICS
    weights_dir: Path | None = None
    steps: int | None = None  # sampling: None = the model's own setting (its lego_config.yaml)
    scheduler: str | None = None
    condition_guidance: float | None = None
    image_guidance: float | None = None
    batch_size: int = 8
    seed: int = 0
    limit: int | None = None
    store: Path | None = None
    name: str | None = None
    tag: str = ""
    egosynth: Path | None = None
    feature_vae: Path | None = None  # offline FID/KID features: a diffusers AutoencoderKL folder
    caption_text: str = "clip"  # "clip" | "egovlp"
    new_actions: int = 6
    bootstrap: int = 1000
    device: str | None = None  # where the model runs (None: CPU)


def sampling_overrides(a: EvalArgs) -> dict:
    return {"steps": a.steps, "scheduler": a.scheduler, "condition_guidance": a.condition_guidance,
            "image_guidance": a.image_guidance}


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[eval] {msg}", flush=True)


def _batches(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def egosynth_root(pairs: Path, given: Path | None) -> Path | None:
    """EgoSynth's folder for the action judge: given, or the parent of the root the pairs were built from."""
    if given is not None:
        return given if (given / "truth.jsonl").is_file() else None
    try:
        root = Path(json.loads((pairs / "summary.json").read_text())["args"]["root"])
    except (OSError, KeyError, ValueError):
        return None
    for cand in (root.parent, root):
        if (cand / "truth.jsonl").is_file() and (cand / "egosynth.json").is_file():
            return cand
    return None


def _per_pair(fn, xs: list, ys: list, batch: int) -> list[float]:
    """``fn`` over aligned batches of ``xs`` and ``ys``, flattened to one float per pair."""
    return [float(v) for xb, yb in zip(_batches(xs, batch), _batches(ys, batch)) for v in fn(xb, yb)]


def _features(extractor, images: list[Image.Image], batch: int) -> np.ndarray:
    return np.concatenate([extractor(to_unit(b)).numpy() for b in _batches(images, batch)])


class VaeFeatures:
    """Offline FID/KID features: the posterior mean of a local AutoencoderKL, pooled to 4x4 and flattened."""

    def __init__(self, folder: Path):
        from diffusers import AutoencoderKL

        self.vae = AutoencoderKL.from_pretrained(str(folder), local_files_only=True).eval()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lat = self.vae.encode(x * 2 - 1).latent_dist.mean  # (B, c, h, w)
        return torch.nn.functional.adaptive_avg_pool2d(lat, 4).flatten(1)  # (B, 16c)


def _egosynth_metrics(a: EvalArgs, mode: str, rows: list[dict], fakes: list, cols: dict, skip) -> None:
    """EgoSynth only: the judge on the generated frames (``action``) and the conditioning text's accuracy
    (``desc_acc``: does the text the model read — the label in ``label`` mode, else the description — name the
    right hand, object and position?)."""
    root = egosynth_root(a.pairs, a.egosynth)
    if root is None:
        for m in {"action", "desc_acc"} & set(a.metrics):
            skip(m, "the pairs do not come from EgoSynth (or pass --egosynth DIR)")
        return
    from ..synth.pairs import truth_by_pair_id

    truth = truth_by_pair_id(root)
    if "action" in a.metrics:
        from ..synth.judge import judge

        vs = [judge(f, truth[r["pair_id"]]) if r["pair_id"] in truth else None for f, r in zip(fakes, rows)]
        for k in ("hand", "object", "state", "all"):
            cols[f"action_{k}"] = [float(getattr(v, k)) if v is not None else math.nan for v in vs]
    if "desc_acc" in a.metrics and mode not in REFERENCES:
        from ..ldm.modes import text_key
        from ..synth.describe import description_accuracy

        texts = [r[text_key(mode)] for r in rows]
        ds = [description_accuracy(t, truth[r["pair_id"]]) if r["pair_id"] in truth else None
              for t, r in zip(texts, rows)]
        for k in ("hand", "object", "position", "all"):
            cols[f"desc_acc_{k}"] = [float(d[k]) if d is not None else math.nan for d in ds]


def evaluate(a: EvalArgs, progress: bool = True) -> dict:
    t0 = time.perf_counter()
    unknown = [m for m in a.metrics if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"--metrics: unknown {unknown}; choose from {','.join(ALL_METRICS)}")
    if a.model not in REFERENCES and not (Path(a.model) / "model_index.json").is_file():
        raise FileNotFoundError(f"--model: {a.model} is neither a LEGO model folder (no model_index.json) nor one of "
                                f"{'/'.join(REFERENCES)}")
    rows = [r for r in read_manifest(a.pairs) if r["split"] == a.split]
    if not rows:
        raise ValueError(f"{a.pairs}: no pairs in split {a.split!r}")
    rows = rows[:a.limit] if a.limit else rows
    a.out.mkdir(parents=True, exist_ok=True)
    name = a.name or (a.model if a.model in REFERENCES else Path(a.model).parent.name or Path(a.model).name)

    frames = None
    if a.model not in REFERENCES:
        from ..ldm.generate import FrameGenerator

        frames = FrameGenerator(a.model, device=a.device, **sampling_overrides(a))
        _log(f"{name}: generating {len(rows)} frames ({frames.sampling})", progress)
    gen = generate_set(a.model, a.pairs, rows, a.out, a.batch_size, a.seed, a.store, progress=progress,
                       generator=frames)
    fakes = [Image.open(a.out / "images" / f"{safe_name(r['pair_id'])}.png").convert("RGB") for r in rows]
    targets = [Image.open(resolve(a.pairs, r["target_path"])).convert("RGB").resize(f.size, Image.BICUBIC)
               for r, f in zip(rows, fakes)]
    inputs = [Image.open(resolve(a.pairs, r["input_path"])).convert("RGB").resize(f.size, Image.BICUBIC)
              for r, f in zip(rows, fakes)]
    cols: dict[str, list] = {"pair_id": [r["pair_id"] for r in rows], "label": [r["label"] for r in rows],
                             "description": [r["description"] for r in rows], "delta": [r["delta"] for r in rows],
                             "video_id": [r["video_id"] for r in rows]}
    set_metrics, skipped = {}, {}

    def skip(metric: str, why: str) -> None:
        skipped[metric] = why
        _log(f"skip {metric}: {why}", progress)

    for m, fn in (("psnr", psnr), ("ssim", ssim)):
        if m in a.metrics:
            cols[m] = _per_pair(lambda f, t, fn=fn: fn(to_unit(f), to_unit(t)), fakes, targets, 64)
    if "lpips" in a.metrics:
        paths, why = W.find(a.weights_dir, "lpips")
        if why:
            skip("lpips", why)
        else:
            from .lpips import LPIPS

            net = LPIPS.from_files(*paths)
            cols["lpips"] = _per_pair(lambda f, t: net.from_unit(to_unit(f), to_unit(t)), fakes, targets, a.batch_size)
    if "fid" in a.metrics and len(rows) < 2:
        skip("fid", f"FID/KID need at least 2 pairs, got {len(rows)}")
    elif "fid" in a.metrics:
        from .fid import fid, kid

        extractors = {}
        paths, why = W.find(a.weights_dir, "fid")
        if why:
            skip("fid", why)
        else:
            from .inception import FidInception

            extractors[""] = FidInception.from_file(paths[0])
        if a.feature_vae is not None:
            extractors["_vae"] = VaeFeatures(a.feature_vae)
        for suffix, ex in extractors.items():
            fr, ft = _features(ex, targets, a.batch_size), _features(ex, fakes, a.batch_size)
            if suffix:  # latents have no fixed scale: unit RMS on the real set keeps KID's cubic kernel sane
                rms = float(np.sqrt((fr ** 2).mean())) or 1.0
                fr, ft = fr / rms, ft / rms
            set_metrics[f"fid{suffix}"] = fid(fr, ft)
            k_mean, k_std = kid(fr, ft, subsets=100, subset_size=min(1000, len(rows)), seed=a.seed)
            set_metrics[f"kid{suffix}"] = k_mean
            set_metrics[f"kid{suffix}_std"] = k_std
    clip_model = None
    if "clip" in a.metrics or ("blip" in a.metrics and a.caption_text == "clip"):
        paths, why = W.find(a.weights_dir, "clip")
        if why:
            skip("clip", why)
        else:
            from .clip_similarity import ClipSimilarity

            clip_model = ClipSimilarity(paths[0])
            if "clip" in a.metrics:
                cols["clip"] = _per_pair(clip_model.image_image, fakes, targets, a.batch_size)
    egovlp = None
    if "egovlp" in a.metrics or ("blip" in a.metrics and a.caption_text == "egovlp"):
        source = rows[0].get("source", "")
        key = "egovlp_epic" if source == "epic" else "egovlp_ego4d"
        paths, why = W.find(a.weights_dir, key)
        text_paths, _ = W.find(a.weights_dir, "distilbert")
        if why:
            skip("egovlp", why)
        else:
            from .egovlp import EgoVLP

            egovlp = EgoVLP.from_checkpoint(paths[0], text_paths[0] if text_paths else None)
            if "egovlp" in a.metrics:
                cols["egovlp"] = _per_pair(egovlp.score, fakes, targets, a.batch_size)
                cols["egovlp_plus"] = _per_pair(lambda f, ti: egovlp.score(f, [t for t, _ in ti], [i for _, i in ti]),
                                                fakes, list(zip(targets, inputs)), a.batch_size)
    if "blip" in a.metrics:
        text_sim = None
        if a.caption_text == "clip" and clip_model is not None:
            text_sim = clip_model.text_text
        elif a.caption_text == "egovlp" and egovlp is not None and egovlp.text_model is not None:
            def text_sim(x, y):
                return (egovlp.text_embeddings(x) * egovlp.text_embeddings(y)).sum(-1)
        if text_sim is None:
            skip("blip", f"needs the {a.caption_text} text encoder (see the lines above)")
        else:
            from .caption import BlipCaptioner

            for key, col in (("blip_b", "blip_b"), ("blip_l", "blip_l")):
                paths, why = W.find(a.weights_dir, key)
                if why:
                    skip(col, why)
                    continue
                cap = BlipCaptioner(paths[0])
                caps = [c for b in _batches(fakes, a.batch_size) for c in cap(b)]
                cols[f"{col}_caption"] = caps
                descs = [r["description"] or r["label"] for r in rows]
                cols[col] = _per_pair(text_sim, caps, descs, 64)
    if {"action", "desc_acc"} & set(a.metrics):
        _egosynth_metrics(a, gen["mode"], rows, fakes, cols, skip)

    per_pair = pa.table({k: v for k, v in cols.items()})
    with atomic_path(a.out / "per_pair.parquet") as tmp:
        pq.write_table(per_pair, tmp)
    numeric = [k for k, v in cols.items() if k not in ("delta",) and v and isinstance(v[0], float)]
    summary = {k: bootstrap_ci(cols[k], a.bootstrap, seed=a.seed) for k in numeric}
    new = new_actions(a, frames, rows, progress) if a.new_actions and frames is not None else None
    model_cfg = None
    if a.model not in REFERENCES:
        for cand in (Path(a.model) / "lego_config.yaml", Path(a.model).parent / "config.yaml"):
            if cand.is_file():
                model_cfg = cand.read_text()
                break
    result = {"name": name, "tag": a.tag, "method": a.model, "mode": gen["mode"], "split": a.split, "n": len(rows),
              "metrics": summary, "set_metrics": set_metrics, "skipped": skipped, "new_actions": new,
              "pairs": str(a.pairs), "args": {k: str(v) for k, v in a.__dict__.items()}, "model_config": model_cfg,
              "generated": gen, "seconds": round(time.perf_counter() - t0, 1)}
    atomic_json(a.out / "eval.json", result)
    return result


def new_actions(a: EvalArgs, frames, rows: list[dict], progress: bool) -> dict | None:
    """App. C.3: the first evaluated input frame with its own action and ``a.new_actions - 1`` other actions of the
    manifest (test split first, then train), generated one by one as a user would with ``egolego generate`` (through
    the same ``FrameGenerator``, loaded once)."""
    from ..ldm.generate import open_image

    if frames.mode != "label" and frames.vllm_dir is None:
        _log("new actions: skipped (the model folder has no tuned VLLM to describe new actions)", progress)
        return None
    base = rows[0]
    every = sorted(read_manifest(a.pairs), key=lambda r: (r["split"] != a.split, r["pair_id"]))
    labels = [base["label"]]
    for r in every:
        if len(labels) < a.new_actions and r["label"] not in labels:
            labels.append(r["label"])
    d = a.out / "new_actions"
    d.mkdir(exist_ok=True)
    src = resolve(a.pairs, base["input_path"])
    index = d / "actions.json"
    if index.is_file() and [i["action"] for i in json.loads(index.read_text())["items"]] == labels:
        return json.loads(index.read_text())
    items = []
    for i, lab in enumerate(labels):
        im, text = frames(open_image(src), lab, seed=a.seed)
        im.save(d / f"{i}.png")
        items.append({"action": lab, "image": f"{i}.png", "text": text})
    result = {"pair_id": base["pair_id"], "input": str(src), "items": items}
    atomic_json(index, result)
    _log(f"new actions: {len(labels)} frames from {base['pair_id']}", progress)
    return result
