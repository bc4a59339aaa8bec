"""Paired differences between two evaluated methods on the same pairs, and the data-efficiency curve built from them.

``egolego reproduce`` asks whether one method beats another (``lego − label``, ``lego − desc`` …). Both were scored
on the same test pairs, so the per-pair differences are what varies; the interval resamples pairs (percentile
bootstrap, ``stats.paired_bootstrap``), keeping the two methods' per-pair correlation. Each difference is given over
all pairs and over a named subset (EgoSynth's *look-alike scenes*: the ``rules`` world's rule scenes, the control
world's twin scenes), where the label alone cannot tell which object is meant.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from .stats import paired_bootstrap
from .tables import load_run

METRICS = ("action_all", "action_object", "psnr", "ssim")


def paired(a: Path, b: Path, subset: set[str], subset_name: str, metrics=METRICS,
           more: dict[str, set[str]] | None = None) -> dict[str, dict]:
    """{"metric/all pairs" | "metric/<subset_name>": mean [lo, hi] of a − b} for two eval folders; ``more`` adds
    further named subsets (e.g. the look-alike scenes split by whether the VLLM's description names the target)."""
    ra, rb = load_run(a), load_run(b)
    if ra.per_pair["pair_id"] != rb.per_pair["pair_id"]:
        raise ValueError(f"{a} and {b} did not score the same pairs in the same order")
    ids = ra.per_pair["pair_id"]
    out = {}
    for metric in metrics:
        if metric not in ra.per_pair or metric not in rb.per_pair:
            continue
        for name, keep in (("all pairs", None), (subset_name, subset), *(more or {}).items()):
            sel = [i for i, pid in enumerate(ids) if keep is None or pid in keep]
            if sel:
                out[f"{metric}/{name}"] = paired_bootstrap([ra.per_pair[metric][i] for i in sel],
                                                           [rb.per_pair[metric][i] for i in sel])
    return out


def points(metric: str) -> float:
    """Accuracies and SSIM are shown in points (× 100), PSNR in dB."""
    return 100 if metric.startswith(("action", "ssim")) else 1


def fmt(d: dict, metric: str) -> str:
    s = points(metric)
    return f"{d['mean'] * s:+.1f} [{d['lo'] * s:+.1f}, {d['hi'] * s:+.1f}]"


def paired_table(results: dict[str, dict[str, dict]]) -> str:
    """HTML: one row per (comparison, metric, subset) of ``{"lego − label": paired(...), ...}``."""
    rows = []
    for comparison, res in results.items():
        for key, d in res.items():
            metric, subset = key.split("/", 1)
            rows.append(f"<tr><td>{html.escape(comparison)}</td><td>{metric}</td><td>{html.escape(subset)}</td>"
                        f"<td>{d['n']}</td><td>{fmt(d, metric)}</td></tr>")
    return ("<p class='note'>a − b on the same test pairs; mean [95 % paired bootstrap interval, 1,000 resamples of "
            "pairs]; accuracies and SSIM in points, PSNR in dB.</p><table><tr><th>a − b</th><th>metric</th>"
            f"<th>pairs</th><th>n</th><th>difference</th></tr>{''.join(rows)}</table>")


def curve_section(curve: dict[int, dict[str, dict]], subset_name: str, path: Path | None = None) -> str:
    """The data-efficiency curve: ``lego − label`` (action all correct) against the LDM's training pairs, over all
    pairs and on the look-alike scenes; ``curve`` maps a pair count to ``paired(lego, label)``. Also saved as a PNG
    at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(curve)
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for j, (name, style) in enumerate((("all pairs", "o-"), (subset_name, "s--"))):
        key = f"action_all/{name}"
        xs = [k for k in ks if key in curve[k]]
        if not xs:
            continue
        d = [curve[k][key] for k in xs]
        shift = [x * (1.03 if j else 0.97) for x in xs]  # side by side at each count
        ax.errorbar(shift, [100 * v["mean"] for v in d], yerr=[[100 * (v["mean"] - v["lo"]) for v in d],
                                                               [100 * (v["hi"] - v["mean"]) for v in d]],
                    fmt=style, capsize=3, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("the diffusion model's training pairs")
    ax.set_ylabel("lego − label, action all correct (points)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    if path is not None:
        Path(path).write_bytes(buf.getvalue())
    plt.close(fig)
    rows = "".join(f"<tr><td>{k}</td>" + "".join(
        f"<td>{fmt(curve[k][key], 'action_all') if key in curve[k] else '–'}</td>"
        for key in ("action_all/all pairs", f"action_all/{subset_name}")) + "</tr>" for k in ks)
    return (f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="data efficiency">'
            f"<table><tr><th>training pairs</th><th>all pairs</th><th>{html.escape(subset_name)}</th></tr>{rows}"
            "</table>")
