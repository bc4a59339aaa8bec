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
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ..atomic import atomic_path
from ..atomic import write_json as atomic_json
from ..baselines import BASELINES, check_model_kind
from ..data.manifest import action_rows, read_manifest, resolve
from ..errors import InputError, MissingInput
from ..ldm.frame_set import frame_file
from ..methods import REFERENCES, for_model
from .draws import draw_dir, merge_columns, merge_set_metrics, per_draw_means
from .generate_set import generate_set
from .scoring import ALL_METRICS, Scoring, score
from .stats import bootstrap_ci


@dataclass(kw_only=True)
class EvalArgs:
    """One ``egolego eval`` run: a method (model folder or reference) on a split of a pairs manifest."""

    model: str  # a LEGO model folder, or "input" / "target"; with ``baseline``, a text-to-image model folder
    pairs: Path
    out: Path
    split: str = "test"
    metrics: tuple[str, ...] = ALL_METRICS
    weights_dir: Path | None = None
    steps: int | None = None  # sampling: None = the model's own setting (its lego_config.yaml)
    scheduler: str | None = None
    condition_guidance: float | None = None
    image_guidance: float | None = None
    guidance_rescale: float | None = None
    guidance_interval: tuple[float, float] | None = None
    keep_input: float | None = None
    change_mask: bool | None = None
    batch_size: int = 8
    seed: int = 0
    draws: int = 1  # noise draws per pair (seeds seed, seed + 1 …), each pair's metrics averaged over them (draws.py)
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
    baseline: str | None = None  # sdedit | proxnpi (egolego.baselines) on the t2i model in ``model``
    strength: float | None = None  # SDEdit's noise strength (None: SdeditSettings' default)


def sampling_overrides(a: EvalArgs) -> dict:
    return {"steps": a.steps, "scheduler": a.scheduler, "condition_guidance": a.condition_guidance,
            "image_guidance": a.image_guidance, "guidance_rescale": a.guidance_rescale,
            "guidance_interval": a.guidance_interval, "keep_input": a.keep_input, "change_mask": a.change_mask}


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[eval] {msg}", flush=True)


def _check(a: EvalArgs) -> list[dict]:
    """The evaluated rows, after refusing unknown metrics and a method that is neither a model nor a reference."""
    unknown = [m for m in a.metrics if m not in ALL_METRICS]
    if unknown:
        raise InputError("metrics", f"unknown {unknown}; choose from {','.join(ALL_METRICS)}")
    if a.model not in REFERENCES and not (Path(a.model) / "model_index.json").is_file():
        raise MissingInput("model", f"{a.model} is neither a LEGO model folder (no model_index.json) nor one of "
                           f"{'/'.join(REFERENCES)}")
    rows = [r for r in action_rows(read_manifest(a.pairs)) if r["split"] == a.split]  # timelines: eval-timeline
    if not rows:
        raise InputError("split", f"{a.pairs}: no pairs in split {a.split!r}")
    return rows[:a.limit] if a.limit else rows


def _images(a: EvalArgs, rows: list[dict], folder: Path) -> tuple[list, list, list]:
    """(generated frames in ``folder/images``, targets, inputs), the last two resized to the generated frames' size."""
    fakes = [Image.open(frame_file(folder / "images", r["pair_id"])).convert("RGB") for r in rows]
    targets = [Image.open(resolve(a.pairs, r["target_path"])).convert("RGB").resize(f.size, Image.BICUBIC)
               for r, f in zip(rows, fakes)]
    inputs = [Image.open(resolve(a.pairs, r["input_path"])).convert("RGB").resize(f.size, Image.BICUBIC)
              for r, f in zip(rows, fakes)]
    return fakes, targets, inputs


def _model_config(model: str) -> str | None:
    """The YAML config the model was trained with (None for a reference)."""
    if model in REFERENCES:
        return None
    for cand in (Path(model) / "lego_config.yaml", Path(model).parent / "config.yaml"):
        if cand.is_file():
            return cand.read_text()
    return None


def _write_per_pair(s: Scoring, out: Path) -> None:
    with atomic_path(out / "per_pair.parquet") as tmp:
        pq.write_table(pa.table(dict(s.cols)), tmp)


# The arguments that decide an evaluation's figures (not batch size or device): a finished run is reused only when
# it was made with the same ones
DECIDING = ("model", "pairs", "split", "metrics", "weights_dir", "limit", "seed", "store", "egosynth", "feature_vae",
            "caption_text", "new_actions", "baseline", "strength", "steps", "scheduler", "condition_guidance",
            "image_guidance", "guidance_rescale", "guidance_interval", "keep_input", "change_mask", "draws")


def finished(a: EvalArgs) -> bool:
    """Whether ``a.out`` holds a finished evaluation made with the same deciding arguments — what a rerun of the demo
    or of ``reproduce`` may reuse. The recorded arguments decide, not the pair count: a test split smaller than
    ``limit`` is finished too, and the same folder asked for another sampler or seed is not."""
    try:
        saved = json.loads((Path(a.out) / "eval.json").read_text())["args"]
        return all(saved.get(k, str(EvalArgs.__dataclass_fields__[k].default)) == str(getattr(a, k))
                   for k in DECIDING)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def evaluate(a: EvalArgs, progress: bool = True) -> dict:
    """Generate the split with the method (resumably), score every pair, aggregate, write ``eval.json``."""
    t0 = time.perf_counter()
    rows = _check(a)
    a.out.mkdir(parents=True, exist_ok=True)
    m = for_model(a.model, a.baseline)
    name = a.name or (a.model if m.kind == "reference" else m.display if m.kind == "baseline" else
                      Path(a.model).parent.name or Path(a.model).name)
    check_model_kind(a.model, a.baseline)
    frames = m.generator(a.model, a.device, strength=a.strength, **sampling_overrides(a))
    if frames is not None:
        _log(f"{name}: generating {len(rows)} frames ({frames.sampling})", progress)
    draws = a.draws if frames is not None and frames.seeded else 1  # a reference or ProxNPI: one frame whatever the seed
    scored, gens = [], []
    for d in range(draws):
        folder = draw_dir(a.out, d)
        g = generate_set(a.model, a.pairs, rows, folder, a.batch_size, a.seed + d, a.store, progress=progress,
                         generator=frames)
        gens.append(g)
        s = Scoring(a, g["mode"], rows, *_images(a, rows, folder), log=lambda m: _log(m, progress),
                    _models=scored[0]._models if scored else {})
        score(s)
        scored.append(s)
    s, gen = scored[0], gens[0]
    if draws > 1:
        per_draw = per_draw_means([x.cols for x in scored])
        s.cols = merge_columns([x.cols for x in scored])
        s.set_metrics = merge_set_metrics([x.set_metrics for x in scored])
        for x in scored[1:]:
            s.skipped.update(x.skipped)
        gen = {**gen, "generated": sum(x["generated"] for x in gens), "reused": sum(x["reused"] for x in gens),
               "draws": draws, "per_draw": per_draw}
    s.cols.update({"pair_id": [r["pair_id"] for r in rows], "label": [r["label"] for r in rows],
                   "description": [r["description"] for r in rows], "delta": [r["delta"] for r in rows],
                   "video_id": [r["video_id"] for r in rows]})
    _write_per_pair(s, a.out)
    numeric = [k for k, v in s.cols.items() if k not in ("delta",) and v and isinstance(v[0], float)]
    summary = {k: bootstrap_ci(s.cols[k], a.bootstrap, seed=a.seed) for k in numeric}
    new = new_actions(a, frames, rows, progress) if a.new_actions and frames is not None else None
    result = {"name": name, "tag": a.tag, "method": a.model, "mode": gen["mode"], "split": a.split, "n": len(rows),
              "metrics": summary, "set_metrics": s.set_metrics, "skipped": s.skipped, "new_actions": new,
              "pairs": str(a.pairs), "args": {k: str(v) for k, v in a.__dict__.items()},
              "model_config": _model_config(a.model), "generated": gen, "seconds": round(time.perf_counter() - t0, 1)}
    atomic_json(a.out / "eval.json", result)
    return result


def new_actions(a: EvalArgs, frames, rows: list[dict], progress: bool) -> dict | None:
    """App. C.3: the first evaluated input frame with its own action and ``a.new_actions - 1`` other actions of the
    manifest (test split first, then train), generated one by one as a user would with ``egolego generate`` (through
    the same ``FrameGenerator``, loaded once)."""
    from ..ldm.generate import open_image

    if frames.mode not in ("label", *BASELINES) and frames.vllm_dir is None:
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
