"""Comparison and ablation tables (paper Tables 1–4) and the transition-time analysis (App. C.1).

Everything here reads finished ``egolego eval`` folders: ``eval.json`` and ``per_pair.parquet``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..baselines import BASELINES
from ..methods import REFERENCES
from .stats import equal_count_bins

# (column, header, lower is better), in the paper's order
METRICS = [("clip", "CLIP", False), ("egovlp", "EgoVLP", False), ("egovlp_plus", "EgoVLP+", False),
           ("fid", "FID", True), ("kid", "KID", True), ("fid_vae", "FID (VAE feat.)", True),
           ("kid_vae", "KID (VAE feat.)", True), ("psnr", "PSNR", False), ("ssim", "SSIM", False),
           ("psnr_out", "PSNR outside", False), ("ssim_out", "SSIM outside", False), ("psnr_in", "PSNR inside", False),
           ("ssim_in", "SSIM inside", False), ("blob", "blob %", True),
           ("lpips", "LPIPS", True), ("blip_b", "BLIP-B", False), ("blip_l", "BLIP-L", False),
           ("action_hand", "hand ok", False), ("action_object", "object ok", False),
           ("action_state", "state ok", False), ("action_all", "action acc.", False),
           ("desc_acc_all", "desc. acc.", False)]
MODE_ORDER = ["label", "desc", "desc+img", "desc+txt", "lego"]
PAPER_ORDER = [*BASELINES, *MODE_ORDER]  # Tab. 1's rows: ProxNPI, SDEdit, IP2P (label), …, LEGO


@dataclass
class EvalRun:
    folder: Path
    info: dict
    per_pair: dict  # column -> list

    @property
    def name(self) -> str:
        return self.info["name"] + (f" ({self.info['tag']})" if self.info.get("tag") else "")

    def value(self, metric: str) -> dict | None:
        """{"mean", "lo", "hi"} for a per-pair metric, {"mean"} for a set metric, None when absent."""
        if metric in self.info["metrics"]:
            return self.info["metrics"][metric]
        if metric in self.info.get("set_metrics", {}):
            return {"mean": self.info["set_metrics"][metric]}
        return None


def load_run(folder: str | Path) -> EvalRun:
    f = Path(folder)
    if not (f / "eval.json").is_file():
        raise FileNotFoundError(f"{f} is not an `egolego eval` folder (no eval.json)")
    per_pair = pq.read_table(f / "per_pair.parquet", use_threads=False).to_pydict()  # one thread: see read_manifest
    return EvalRun(f, json.loads((f / "eval.json").read_text()), per_pair)


def _fmt(v: dict | None, metric: str) -> str:
    if v is None or v["mean"] is None or (isinstance(v["mean"], float) and math.isnan(v["mean"])):
        return "–"
    scale = 100 if metric.startswith(("clip", "egovlp", "blip", "action", "ssim", "desc_acc")) or metric == "blob" else 1
    digits = 4 if metric.startswith("kid") or metric == "lpips" else 1 if scale == 100 or metric.startswith("fid") else 2
    s = f"{v['mean'] * scale + 0.0:.{digits}f}".replace("-0.0", "0.0") if abs(v["mean"] * scale) < 10 ** -digits \
        else f"{v['mean'] * scale:.{digits}f}"
    if "lo" in v and not math.isnan(v["lo"]):
        s += f" [{v['lo'] * scale:.{digits}f}, {v['hi'] * scale:.{digits}f}]"
    return s


def table(runs: list[EvalRun]) -> dict:
    """{"columns": [(metric, header, lower)], "rows": [(name, [cell...])], "best": {metric: {row index}}}.

    "Best" is among the generating methods only (the `input` / `target` references are shown, never bold);
    rows that tie with the best value as displayed are all bold.
    """
    cols = [m for m in METRICS if any(r.value(m[0]) is not None for r in runs)]
    rows, best = [], {}
    candidates = [i for i, r in enumerate(runs) if r.info["mode"] not in REFERENCES]
    for metric, _, lower in cols:
        shown = {i: _fmt(runs[i].value(metric), metric).split(" [")[0] for i in candidates}
        vals = {i: (runs[i].value(metric) or {}).get("mean") for i in candidates}
        ok = {i: v for i, v in vals.items() if v is not None and not math.isnan(v)}
        if len(ok) > 1:
            top = (min if lower else max)(ok, key=ok.get)
            best[metric] = {i for i in ok if shown[i] == shown[top]}
    for r in runs:
        rows.append((r.name, [_fmt(r.value(m), m) for m, _, _ in cols]))
    return {"columns": cols, "rows": rows, "best": best}


def paper_order(runs: list[EvalRun]) -> list[EvalRun]:
    """The methods in the paper's row order (ProxNPI, SDEdit, IP2P, LEGO; other modes after, in the given order);
    the `input` / `target` references keep their places."""
    slots = [i for i, r in enumerate(runs) if r.info["mode"] not in REFERENCES]
    methods = sorted((runs[i] for i in slots), key=lambda r: PAPER_ORDER.index(r.info["mode"])
                     if r.info["mode"] in PAPER_ORDER else len(PAPER_ORDER))
    out = list(runs)
    for i, r in zip(slots, methods):
        out[i] = r
    return out


def ablation_runs(runs: list[EvalRun]) -> list[EvalRun]:
    """The trained models (no references), ordered label → lego, then by tag (e.g. tuned / untuned VLLM)."""
    trained = [r for r in runs if r.info["mode"] in MODE_ORDER]
    return sorted(trained, key=lambda r: (MODE_ORDER.index(r.info["mode"]), r.info.get("tag", "")))


def markdown(t: dict) -> str:
    head = "| method | " + " | ".join(h + (" ↓" if lo else "") for _, h, lo in t["columns"]) + " |"
    lines = [head, "|" + "---|" * (len(t["columns"]) + 1)]
    for i, (name, cells) in enumerate(t["rows"]):
        cells = [f"**{c}**" if i in t["best"].get(m, ()) else c for c, (m, _, _) in zip(cells, t["columns"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def transition_bins(runs: list[EvalRun], metric: str, n_bins: int = 4) -> dict | None:
    """Per method, the metric's mean in each of ``n_bins`` equal-count bins of δ (over the pairs all share)."""
    runs = [r for r in runs if metric in r.per_pair]
    if not runs:
        return None
    common = set(runs[0].per_pair["pair_id"])
    for r in runs[1:]:
        common &= set(r.per_pair["pair_id"])
    ids = sorted(common)
    if len(ids) < n_bins:
        return None
    delta = dict(zip(runs[0].per_pair["pair_id"], runs[0].per_pair["delta"]))
    idx, edges = equal_count_bins([delta[i] for i in ids], n_bins)
    out = {"edges": [float(e) for e in edges], "counts": np.bincount(idx, minlength=n_bins).tolist(), "methods": {}}
    for r in runs:
        v = dict(zip(r.per_pair["pair_id"], r.per_pair[metric]))
        vals = np.array([v[i] for i in ids], dtype=np.float64)
        out["methods"][r.name] = [float(np.nanmean(vals[idx == b])) if (idx == b).any() else float("nan")
                                  for b in range(n_bins)]
    return out
