"""``egolego eval-timeline``: the action part-way, scored against the true frames along it (issue 27).

On the test actions of a timeline manifest (``data build --timeline K``), for every timeline frame (progress p):

- ``progress``: a model trained with ``ldm.progress``, asked for p; the frames of one action share one seed, as the
  frames of a clip (``FrameGenerator.clip``) do;
- ``hold``: a single-frame model's frame (asked for the action done) shown at every p — what LEGO can do today;
- ``interpolate``: ``(1 - p) x input + p x`` that frame — the obvious way to fake the motion;
- ``input``: the input frame at every p (a floor).

Per p (in ``bins`` even bins): the EgoSynth judge at the frame's true pose (``synth.pairs.frame_pose``) — and on the
true frames, its ceiling at that p —, PSNR and SSIM against the true frame, with bootstrap intervals and the paired
difference ``progress - hold``. Per action, a consistency figure: the mean change between consecutive frames of
``input, frame(p_1), …, frame(1)`` over the pixels where the true clip stays still (the background), against the true
clip's own change there. Within each generated method, every bin against p = 1, paired by action (``vs_done``:
is the hand on its way part-way as often as at the end?). ``draws`` > 1 draws every generated frame with the noise
seeds ``seed``, ``seed + 1`` … (draw d under ``draws/<d>/``) and averages each frame's scores over them.
``per_frame.parquet`` holds every frame's scores (method, pair, action, progress, bin). Frames are written once and
reused when drawn the same way (``<out>/<method>/``): a killed run resumes.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..data.manifest import action_key, progress_of, read_manifest, resolve
from ..errors import InputError
from ..ldm.frame_set import drawn_with, frame_file, keep_frames_drawn_with, missing_rows, save_frame
from ..ldm.model_folder import lego_model_folder
from ..names import pair_seed
from .draws import draw_dir, merge_columns
from .pixels import psnr, ssim, to_unit
from .stats import bootstrap_ci

STILL = 0.08  # a pixel of the true clip "stays still" when no consecutive pair of its frames differs by more


@dataclass
class TimelineArgs:
    model: Path  # trained with ldm.progress
    pairs: Path  # a timeline manifest
    out: Path
    single: Path | None = None  # a single-frame model: the hold and interpolate baselines
    store: Path | None = None
    egosynth: Path | None = None
    split: str = "test"
    actions: int | None = None  # the first N test actions
    bins: int = 4
    seed: int = 0
    draws: int = 1  # noise draws per frame (seeds seed, seed + 1 …), each frame's scores averaged over them
    batch_size: int = 16
    bootstrap: int = 1000
    clip_start: float | None = None  # the progress model's clip sampling (default: the model's ldm.clip_start)
    progress_guidance: float | None = None  # the progress model's s_p (default: the model's ldm.progress_guidance)


def _timeline_rows(a: TimelineArgs) -> dict[str, list[dict]]:
    """{action id: its rows sorted by progress (the single-frame pair last)} of the split's actions with timelines."""
    by_action: dict[str, list[dict]] = defaultdict(list)
    for r in read_manifest(a.pairs):
        if r["split"] == a.split:
            by_action[action_key(r["pair_id"])].append(r)
    kept = {k: sorted(v, key=progress_of) for k, v in sorted(by_action.items()) if len(v) > 1}
    if not kept:
        raise InputError("pairs", f"{a.pairs} holds no timeline pairs in split {a.split!r}: build it with "
                         "`egolego data build --timeline K`")
    if a.actions:
        kept = dict(list(kept.items())[:a.actions])
    return kept


def _generate(gen, model: str, rows: list[dict], a: TimelineArgs, folder: Path, progress: bool,
              desc: str) -> dict[str, Image.Image]:
    """{pair id: frame} for ``rows`` (written to ``folder``, reused when drawn the same way); each action's frames
    share its seed. With ``clip_start`` < 1 (a progress model's clip sampling) each action's last frame is drawn
    first and its earlier frames start from it, as ``generate.sample_clip`` draws a clip."""
    folder.mkdir(parents=True, exist_ok=True)
    gen.check_rows(rows, a.store)
    keep_frames_drawn_with(folder, drawn_with(model, gen, a.seed, a.store), progress)
    todo = missing_rows(rows, folder)
    waves = [(todo, None)]  # (rows, {action: the pair id of the frame they start from} or None: from pure noise)
    if gen.takes_progress and gen.sampling.clip_start < 1:
        done = {}  # action -> its row furthest along (the action done)
        for r in rows:
            k = action_key(r["pair_id"])
            if k not in done or progress_of(r) > progress_of(done[k]):
                done[k] = r
        last = {k: r["pair_id"] for k, r in done.items()}
        ends = set(last.values())
        waves = [([r for r in todo if r["pair_id"] in ends], None), ([r for r in todo if r["pair_id"] not in ends], last)]
    bar = tqdm(total=len(todo), desc=desc, unit="frame", disable=not progress)
    for wave, start_from in waves:
        for i in range(0, len(wave), a.batch_size):
            batch = wave[i:i + a.batch_size]
            squares = [Image.open(resolve(a.pairs, r["input_path"])).convert("RGB") for r in batch]
            gens = [torch.Generator().manual_seed(pair_seed(a.seed, action_key(r["pair_id"]))) for r in batch]
            ps = [progress_of(r) for r in batch] if gen.takes_progress else None
            start = None if start_from is None else [
                Image.open(frame_file(folder, start_from[action_key(r["pair_id"])])).convert("RGB") for r in batch]
            for r, im in zip(batch, gen.batch(squares, batch, gens, a.store, progress=ps, start=start)):
                save_frame(im, frame_file(folder, r["pair_id"]))
            bar.update(len(batch))
    bar.close()
    return {r["pair_id"]: Image.open(frame_file(folder, r["pair_id"])).convert("RGB") for r in rows}


def _by_bin(rows: list[dict], values: list[float], bins: int) -> dict[float, list[float]]:
    """{progress bin: the values of its rows, in row order (action by action); NaN (not judged) left out}."""
    out: dict[float, list[float]] = defaultdict(list)
    for r, v in zip(rows, values, strict=True):
        if not math.isnan(v):
            out[_bin(progress_of(r), bins)].append(v)
    return out


def against_the_end(rows: list[dict], values: list[float], bins: int) -> dict[float, list[float]]:
    """{progress bin below 1: per action, the mean of its frames in that bin minus the mean of its frames at p = 1},
    over the actions judged in both. Per action, not per position: an action can have two frames in one bin (best of
    7 moves a frame across a bin's edge) or none."""
    per: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r, v in zip(rows, values, strict=True):
        if not math.isnan(v):
            per[action_key(r["pair_id"])][_bin(progress_of(r), bins)].append(v)
    out: dict[float, list[float]] = defaultdict(list)
    for by_bin in per.values():
        if 1.0 in by_bin:
            end = np.mean(by_bin[1.0])
            for b, vs in by_bin.items():
                if b != 1.0:
                    out[b].append(float(np.mean(vs) - end))
    return out


def _write_per_frame(rows: list[dict], per_frame: dict[str, dict[str, list[float]]], bins: int, path: Path) -> None:
    """One row per (method, frame): ids, progress, its bin and every score — what paired comparisons need."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table: dict[str, list] = defaultdict(list)
    metrics = sorted({k for c in per_frame.values() for k in c})
    for method, c in per_frame.items():
        for i, r in enumerate(rows):
            table["method"].append(method)
            table["pair_id"].append(r["pair_id"])
            table["action"].append(action_key(r["pair_id"]))
            table["progress"].append(float(progress_of(r)))
            table["bin"].append(_bin(progress_of(r), bins))
            for k in metrics:
                table[k].append(float(c[k][i]) if k in c else float("nan"))
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(dict(table)), tmp)


def interpolate(image: Image.Image, frame: Image.Image, p: float) -> Image.Image:
    """``(1 - p) x image + p x frame``, pixel by pixel."""
    x = np.asarray(image.convert("RGB").resize(frame.size), dtype=np.float32)
    y = np.asarray(frame.convert("RGB"), dtype=np.float32)
    return Image.fromarray(np.clip((1 - p) * x + p * y + 0.5, 0, 255).astype(np.uint8))


def background_change(clip: list[Image.Image], true_clip: list[Image.Image]) -> tuple[float, float]:
    """(mean change between consecutive frames of ``clip``, the same of ``true_clip``), in [0, 1] units, over the
    pixels where the true clip stays still (``STILL``); both clips start with the input frame."""
    size = true_clip[-1].size
    g, t = to_unit(clip, size), to_unit(true_clip, size)  # (K+1, 3, H, W)
    dt = (t[1:] - t[:-1]).abs().amax(1)  # (K, H, W)
    still = dt.amax(0) < STILL  # (H, W)
    if not still.any():
        return float("nan"), float("nan")
    dg = (g[1:] - g[:-1]).abs().mean(1)  # (K, H, W)
    return float(dg[:, still].mean()), float((t[1:] - t[:-1]).abs().mean(1)[:, still].mean())


def _bin(p: float, bins: int) -> float:
    return max(1, round(p * bins)) / bins


def evaluate_timeline(a: TimelineArgs, progress: bool = True) -> dict:
    """Generate, score and aggregate; writes ``<out>/timeline.json`` and returns it."""
    from ..ldm.generate import FrameGenerator
    from ..synth.judge import judge
    from ..synth.pairs import egosynth_root, frame_pose, truth_by_pair_id

    lego_model_folder(a.model)
    by_action = _timeline_rows(a)
    rows = [r for rs in by_action.values() for r in rs]
    gen = FrameGenerator(a.model, clip_start=a.clip_start, progress_guidance=a.progress_guidance)
    if not gen.takes_progress:
        raise InputError("model", f"{a.model} was trained on single frames (ldm.progress: false); eval-timeline scores "
                         "a model trained on timeline pairs (give a single-frame model as --single)")
    inputs = {r["pair_id"]: Image.open(resolve(a.pairs, r["input_path"])).convert("RGB") for r in rows}
    truths = {r["pair_id"]: Image.open(resolve(a.pairs, r["target_path"])).convert("RGB") for r in rows}
    single = FrameGenerator(a.single) if a.single is not None else None
    draws = []  # per draw: {method: {pair id: frame}}
    for d in range(a.draws):
        sub = draw_dir(a.out, d)
        ad = dataclasses.replace(a, seed=a.seed + d)
        fr = {"progress": _generate(gen, a.model, rows, ad, sub / "progress", progress, "timeline: progress model")}
        if single is not None:
            last = [rs[-1] for rs in by_action.values()]  # the single-frame pairs: p = 1
            done = _generate(single, a.single, last, ad, sub / "single", progress, "timeline: single-frame model")
            fr["hold"] = {r["pair_id"]: done[rs[-1]["pair_id"]] for rs in by_action.values() for r in rs}
            fr["interpolate"] = {r["pair_id"]: interpolate(inputs[r["pair_id"]], done[rs[-1]["pair_id"]],
                                                           progress_of(r))
                                 for rs in by_action.values() for r in rs}
        draws.append(fr)
    frames = {**draws[0], "input": inputs}
    root = egosynth_root(Path(a.pairs), a.egosynth)
    truth = truth_by_pair_id(root) if root is not None else {}

    def scores(fr: dict[str, Image.Image]) -> dict[str, list[float]]:
        """{metric: one value per row} of one method's frames."""
        out = defaultdict(list)
        for r in rows:
            pid = r["pair_id"]
            x, t = to_unit([fr[pid]]), to_unit([truths[pid]], fr[pid].size)  # (1, 3, H, W) each
            out["psnr"].append(float(psnr(x, t)[0]))
            out["ssim"].append(float(ssim(x, t)[0]))
            if truth:  # EgoSynth pairs: the judge (NaN for a frame whose action has no truth record)
                tr = truth.get(action_key(pid))
                v = judge(fr[pid], tr, frame_pose(tr, r)) if tr is not None else None
                out["action_all"].append(float(v.all) if v is not None else math.nan)
                out["action_hand"].append(float(v.hand) if v is not None else math.nan)
        return out

    per_frame = {m: scores(inputs if m == "input" else truths) for m in ("input", "true frame")}
    for m in draws[0]:  # generated methods: each frame's scores averaged over the draws
        per_frame[m] = merge_columns([scores(fr[m]) for fr in draws])
    per_frame = {m: per_frame[m] for m in (*draws[0], "input", "true frame")}  # the tables' order
    _write_per_frame(rows, per_frame, a.bins, a.out / "per_frame.parquet")
    cols = {m: {k: _by_bin(rows, v, a.bins) for k, v in c.items()} for m, c in per_frame.items()}
    result = {"model": str(a.model), "single": str(a.single) if a.single else None, "pairs": str(a.pairs),
              "actions": len(by_action), "frames": len(rows), "bins": a.bins, "draws": a.draws, "judge": bool(truth),
              "by_p": {}, "paired": {}, "vs_done": {}, "consistency": {}}
    for method, c in cols.items():
        result["by_p"][method] = {m: {f"{b:.2f}": bootstrap_ci(v, a.bootstrap, seed=a.seed) for b, v in sorted(d.items())}
                                  for m, d in c.items()}
    if "hold" in cols:
        for m in cols["progress"]:
            result["paired"][m] = {f"{b:.2f}": bootstrap_ci(np.subtract(cols["progress"][m][b], cols["hold"][m][b]),
                                                           a.bootstrap, seed=a.seed)
                                   for b in sorted(cols["progress"][m])}
    for method in draws[0]:  # along the action within one method: each bin against p = 1, paired by action
        result["vs_done"][method] = {m: {f"{b:.2f}": bootstrap_ci(d, a.bootstrap, seed=a.seed)
                                         for b, d in sorted(against_the_end(rows, v, a.bins).items())}
                                     for m, v in per_frame[method].items()}
    for method, fr in draws[0].items():
        pairs = [background_change([inputs[rs[0]["pair_id"]], *(fr[r["pair_id"]] for r in rs)],
                                   [inputs[rs[0]["pair_id"]], *(truths[r["pair_id"]] for r in rs)])
                 for rs in by_action.values()]
        result["consistency"][method] = {"generated": bootstrap_ci([g for g, _ in pairs], a.bootstrap, seed=a.seed),
                                         "true": bootstrap_ci([t for _, t in pairs], a.bootstrap, seed=a.seed)}
    _figure(by_action, inputs, truths, frames, a.out / "clips.png")
    write_json(a.out / "timeline.json", result)
    return result


def _figure(by_action, inputs, truths, frames, path: Path, n: int = 4) -> None:
    """The first ``n`` actions: the true clip above each method's, input frame first."""
    from ..ldm.clip_file import strip

    lines = []
    for rs in list(by_action.values())[:n]:
        first = inputs[rs[0]["pair_id"]]
        lines.append(strip([first, *(truths[r["pair_id"]] for r in rs)]))
        for m in ("progress", "interpolate"):
            if m in frames:
                lines.append(strip([first, *(frames[m][r["pair_id"]].resize(first.size) for r in rs)]))
    if not lines:
        return
    w = max(im.width for im in lines)
    out = Image.new("RGB", (w, sum(im.height + 4 for im in lines)), "white")
    y = 0
    for im in lines:
        out.paste(im, (0, y))
        y += im.height + 4
    out.save(path)


def table_rows(result: dict) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """(progress bins, [(method, metric, formatted means per bin)]): judge all-correct and hand-correct in %, PSNR,
    SSIM — what the CLI's markdown table and the report's HTML table both show."""
    bins = sorted({b for m in result["by_p"].values() for b in m.get("psnr", {})})
    rows = []
    for method, ms in result["by_p"].items():
        for m in ("action_all", "action_hand", "psnr", "ssim"):
            if m not in ms:
                continue
            scale, digits = (100, 1) if m.startswith("action") else (1, 3 if m == "ssim" else 2)
            rows.append((method, m, [f"{ms[m][b]['mean'] * scale:.{digits}f}" if b in ms[m] else "-" for b in bins]))
    return bins, rows


def table(result: dict) -> str:
    """Markdown: judge all-correct, hand-correct, PSNR and SSIM per progress bin and method."""
    bins, rows = table_rows(result)
    lines = ["| method | metric | " + " | ".join(f"p={b}" for b in bins) + " |",
             "|---|---|" + "---|" * len(bins)]
    lines += [f"| {method} | {m} | " + " | ".join(cells) + " |" for method, m, cells in rows]
    return "\n".join(lines)


def along_the_action(result: dict, method: str = "progress") -> str:
    """One line per judge metric: each progress bin minus p = 1 within ``method``, paired by action, in points —
    whether the hand is on its way to the right object part-way as often as at the end."""
    lines = []
    for m, d in result.get("vs_done", {}).get(method, {}).items():
        if m.startswith("action") and d:
            cells = ", ".join(f"p={b} {v['mean'] * 100:+.1f} [{v['lo'] * 100:+.1f}, {v['hi'] * 100:+.1f}]"
                              for b, v in d.items())
            lines.append(f"{method}, {m} at p minus at p = 1 (points, paired by action): {cells}")
    return "\n".join(lines)
