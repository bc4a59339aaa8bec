"""The metrics of ``egolego eval``, as a registry: each entry scores every generated frame of a run.

A scorer gets a ``Scoring`` (the rows, the generated frames, the targets and inputs, the args) and adds per-pair
columns (``s.cols``), set-level numbers (``s.set_metrics``) or a reason it was skipped (``s.skip``). Models that
two metrics share (CLIP for ``clip`` and BLIP's text similarity, EgoVLP likewise) are loaded once, on first use.
A new metric is one function and one line in ``SCORERS``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import weights as W
from .pixels import psnr, ssim, to_unit


def batches(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def per_pair(fn, xs: list, ys: list, batch: int) -> list[float]:
    """``fn`` over aligned batches of ``xs`` and ``ys``, flattened to one float per pair."""
    return [float(v) for xb, yb in zip(batches(xs, batch), batches(ys, batch)) for v in fn(xb, yb)]


def features(extractor, images: list[Image.Image], batch: int) -> np.ndarray:
    return np.concatenate([extractor(to_unit(b)).numpy() for b in batches(images, batch)])


class VaeFeatures:
    """Offline FID/KID features: the posterior mean of a local AutoencoderKL, pooled to 4x4 and flattened."""

    def __init__(self, folder: Path):
        from diffusers import AutoencoderKL

        self.vae = AutoencoderKL.from_pretrained(str(folder), local_files_only=True).eval()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lat = self.vae.encode(x * 2 - 1).latent_dist.mean  # (B, c, h, w)
        return torch.nn.functional.adaptive_avg_pool2d(lat, 4).flatten(1)  # (B, 16c)


@dataclass
class Scoring:
    """What every scorer reads and writes for one eval run."""

    a: Any  # EvalArgs
    mode: str  # the method's conditioning mode, or a reference name
    rows: list[dict]
    fakes: list[Image.Image]
    targets: list[Image.Image]
    inputs: list[Image.Image]
    log: Any  # (message) -> None
    cols: dict[str, list] = field(default_factory=dict)
    set_metrics: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict)

    def skip(self, metric: str, why: str) -> None:
        self.skipped[metric] = why
        self.log(f"skip {metric}: {why}")

    def wants(self, metric: str) -> bool:
        return metric in self.a.metrics

    def model(self, name: str, load):
        """A shared model, loaded on first use (None, and ``name`` skipped with the reason, when it cannot be)."""
        if name not in self._models:
            model, why = load(self)
            if why:
                self.skip(name, why)
            self._models[name] = model
        return self._models[name]


def _load_clip(s: Scoring):
    paths, why = W.find(s.a.weights_dir, "clip")
    if why:
        return None, why
    from .clip_similarity import ClipSimilarity

    return ClipSimilarity(paths[0]), None


def _load_egovlp(s: Scoring):
    key = "egovlp_epic" if s.rows[0].get("source", "") == "epic" else "egovlp_ego4d"
    paths, why = W.find(s.a.weights_dir, key)
    if why:
        return None, why
    from .egovlp import EgoVLP

    text_paths, _ = W.find(s.a.weights_dir, "distilbert")
    return EgoVLP.from_checkpoint(paths[0], text_paths[0] if text_paths else None), None


def score_pixels(s: Scoring) -> None:
    for m, fn in (("psnr", psnr), ("ssim", ssim)):
        if s.wants(m):
            s.cols[m] = per_pair(lambda f, t, fn=fn: fn(to_unit(f), to_unit(t)), s.fakes, s.targets, 64)


def _egosynth_truth(s: Scoring) -> dict[str, dict]:
    """{pair_id: EgoSynth truth record}, or {} when the pairs do not come from EgoSynth; read once per run."""
    def load(s: Scoring):
        from ..synth.pairs import egosynth_root, truth_by_pair_id

        root = egosynth_root(s.a.pairs, s.a.egosynth)
        if root is None:
            return {}, None

        return truth_by_pair_id(root), None
    return s.model("egosynth truth", load)


def score_regions(s: Scoring) -> None:
    """PSNR / SSIM outside the action's boxes (the input is the answer there) and inside them (``eval.regions``);
    the blob score: the share of pixels whose colour the input and target frames never had."""
    from .regions import action_boxes, blob_share, region_mask, region_scores

    if s.wants("regions"):
        truth = _egosynth_truth(s)
        boxes = [action_boxes(json.loads(r.get("boxes") or "{}"), truth.get(r["pair_id"])) for r in s.rows]
        if not any(boxes):
            s.skip("regions", "the pairs have no boxes (the manifest's `boxes` column is empty)")
        else:
            cols: dict[str, list[float]] = {}
            for i in range(0, len(s.rows), 64):
                f, t = to_unit(s.fakes[i:i + 64]), to_unit(s.targets[i:i + 64])  # (B, 3, H, W)
                inside = torch.stack([region_mask(b, *f.shape[-2:]) for b in boxes[i:i + 64]])  # (B, H, W)
                for k, v in region_scores(f, t, inside).items():
                    cols.setdefault(k, []).extend(math.nan if not b else float(x) for x, b in zip(v, boxes[i:i + 64]))
            s.cols.update(cols)
    if s.wants("blob"):
        s.cols["blob"] = [float(v) for i in range(0, len(s.rows), 64)
                          for v in blob_share(to_unit(s.fakes[i:i + 64]), to_unit(s.inputs[i:i + 64]),
                                              to_unit(s.targets[i:i + 64]))]


def score_lpips(s: Scoring) -> None:
    paths, why = W.find(s.a.weights_dir, "lpips")
    if why:
        return s.skip("lpips", why)
    from .lpips import LPIPS

    net = LPIPS.from_files(*paths)
    s.cols["lpips"] = per_pair(lambda f, t: net.from_unit(to_unit(f), to_unit(t)), s.fakes, s.targets, s.a.batch_size)


def score_fid(s: Scoring) -> None:
    """FID and KID on Inception features (and on the latents of ``--feature-vae``, an offline variant)."""
    if len(s.rows) < 2:
        return s.skip("fid", f"FID/KID need at least 2 pairs, got {len(s.rows)}")
    from .fid import fid, kid

    extractors = {}
    paths, why = W.find(s.a.weights_dir, "fid")
    if why:
        s.skip("fid", why)
    else:
        from .inception import FidInception

        extractors[""] = FidInception.from_file(paths[0])
    if s.a.feature_vae is not None:
        extractors["_vae"] = VaeFeatures(s.a.feature_vae)
    for suffix, ex in extractors.items():
        fr, ft = features(ex, s.targets, s.a.batch_size), features(ex, s.fakes, s.a.batch_size)
        if suffix:  # latents have no fixed scale: unit RMS on the real set keeps KID's cubic kernel sane
            rms = float(np.sqrt((fr ** 2).mean())) or 1.0
            fr, ft = fr / rms, ft / rms
        s.set_metrics[f"fid{suffix}"] = fid(fr, ft)
        k_mean, k_std = kid(fr, ft, subsets=100, subset_size=min(1000, len(s.rows)), seed=s.a.seed)
        s.set_metrics[f"kid{suffix}"] = k_mean
        s.set_metrics[f"kid{suffix}_std"] = k_std


def score_clip(s: Scoring) -> None:
    clip = s.model("clip", _load_clip)
    if clip is not None:
        s.cols["clip"] = per_pair(clip.image_image, s.fakes, s.targets, s.a.batch_size)


def score_egovlp(s: Scoring) -> None:
    ego = s.model("egovlp", _load_egovlp)
    if ego is not None:
        s.cols["egovlp"] = per_pair(ego.score, s.fakes, s.targets, s.a.batch_size)
        s.cols["egovlp_plus"] = per_pair(lambda f, ti: ego.score(f, [t for t, _ in ti], [i for _, i in ti]),
                                         s.fakes, list(zip(s.targets, s.inputs)), s.a.batch_size)


def _caption_text_similarity(s: Scoring):
    if s.a.caption_text == "clip":
        clip = s.model("clip", _load_clip)
        return clip.text_text if clip is not None else None
    ego = s.model("egovlp", _load_egovlp)
    if ego is None or ego.text_model is None:
        return None
    return lambda x, y: (ego.text_embeddings(x) * ego.text_embeddings(y)).sum(-1)


def score_blip(s: Scoring) -> None:
    """BLIP captions of the generated frames, compared with the descriptions by a text encoder."""
    text_sim = _caption_text_similarity(s)
    if text_sim is None:
        return s.skip("blip", f"needs the {s.a.caption_text} text encoder (see the lines above)")
    from .caption import BlipCaptioner

    for col in ("blip_b", "blip_l"):
        paths, why = W.find(s.a.weights_dir, col)
        if why:
            s.skip(col, why)
            continue
        cap = BlipCaptioner(paths[0])
        caps = [c for b in batches(s.fakes, s.a.batch_size) for c in cap(b)]
        s.cols[f"{col}_caption"] = caps
        s.cols[col] = per_pair(text_sim, caps, [r["description"] or r["label"] for r in s.rows], 64)


def score_egosynth(s: Scoring) -> None:
    """EgoSynth only: the judge on the generated frames (``action``) and the conditioning text's accuracy
    (``desc_acc``: does the text the model read — ``ldm.modes.text_key`` — name the right hand, object, position?)."""
    from .generate_set import REFERENCES

    truth = _egosynth_truth(s)
    if not truth:
        for m in {"action", "desc_acc"} & set(s.a.metrics):
            s.skip(m, "the pairs do not come from EgoSynth (or pass --egosynth DIR)")
        return
    if s.wants("action"):
        from ..synth.judge import judge

        vs = [judge(f, truth[r["pair_id"]]) if r["pair_id"] in truth else None for f, r in zip(s.fakes, s.rows)]
        for k in ("hand", "object", "state", "all"):
            s.cols[f"action_{k}"] = [float(getattr(v, k)) if v is not None else math.nan for v in vs]
    if s.wants("desc_acc") and s.mode not in REFERENCES:
        from ..baselines import BASELINES
        from ..ldm.modes import text_key
        from ..synth.describe import description_accuracy

        key = "label" if s.mode in BASELINES else text_key(s.mode)  # the baselines' prompt is the label
        texts = [r[key] for r in s.rows]
        ds = [description_accuracy(t, truth[r["pair_id"]]) if r["pair_id"] in truth else None
              for t, r in zip(texts, s.rows)]
        for k in ("hand", "object", "position", "all"):
            s.cols[f"desc_acc_{k}"] = [float(d[k]) if d is not None else math.nan for d in ds]


# (metric names a scorer serves, scorer), in the order they run; ALL_METRICS is their union
SCORERS = ((("psnr", "ssim"), score_pixels), (("regions", "blob"), score_regions), (("lpips",), score_lpips), (("fid",), score_fid),
           (("clip",), score_clip), (("egovlp",), score_egovlp), (("blip",), score_blip),
           (("action", "desc_acc"), score_egosynth))
ALL_METRICS = tuple(m for names, _ in SCORERS for m in names)


def score(s: Scoring) -> None:
    """Run every scorer that serves a requested metric."""
    for names, scorer in SCORERS:
        if set(names) & set(s.a.metrics):
            scorer(s)
