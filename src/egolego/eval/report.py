"""``egolego report EVAL [EVAL …] --out report.html``: one self-contained HTML file.

Holds the comparison table (every method × every metric, best in bold, 95 % bootstrap intervals), the ablation
table when several conditioning modes were evaluated, the transition-time plot (App. C.1), a grid of input /
each method / ground truth for a sample of pairs, the new-actions strip (App. C.3), the skipped metrics and
every run's config, and with ``--votes`` the user study's win rates and votes per rater. Images and plots are embedded as base64 PNGs, so the file can be mailed or archived alone.
A small script marks the page ``data-rendered="ok"`` once every image has decoded (the headless-browser test
checks it).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

from PIL import Image

from ..atomic import write_text
from ..baselines import BASELINES
from ..data.manifest import read_manifest, resolve
from ..errors import InputError, MissingInput
from ..methods import REFERENCES
from ..names import safe_name
from ..safe_load import first_line
from .tables import METRICS, EvalRun, ablation_runs, load_run, paper_order, table, transition_bins
from .timeline import along_the_action, table_rows

CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
th{background:#f3f3f3}td.b{font-weight:bold}.grid img,.strip img{width:112px;height:112px;image-rendering:pixelated}
img{max-width:100%}.grid td{text-align:center;font-size:11px;max-width:130px}.note{color:#666;font-size:13px}pre{background:#f7f7f7;
padding:8px;font-size:12px;overflow:auto;max-height:300px}.mark{color:#a40;font-weight:bold}"""
SCRIPT = """window.addEventListener('load',function(){var bad=[].filter.call(document.images,function(i){
return !(i.complete&&i.naturalWidth>0)});document.body.setAttribute('data-rendered',bad.length?'broken:'+bad.length:'ok');});"""


def _png(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _img(im: Image.Image, title: str = "") -> str:
    return f'<img src="{_png(im)}" title="{html.escape(title)}" alt="{html.escape(title)}">'


def _table_html(t: dict) -> str:
    head = "".join(f"<th>{html.escape(h)}{' ↓' if lo else ''}</th>" for _, h, lo in t["columns"])
    body = []
    for i, (name, cells) in enumerate(t["rows"]):
        tds = "".join(f'<td class="{"b" if i in t["best"].get(m, ()) else ""}">{html.escape(c)}</td>'
                      for c, (m, _, _) in zip(cells, t["columns"]))
        body.append(f"<tr><td>{html.escape(name)}</td>{tds}</tr>")
    return f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"


def _transition_plot(runs: list[EvalRun]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prefer = ["psnr", "lpips", "clip", "egovlp_plus", "blip_b", "action_all", "ssim"]
    metrics = [m for m in prefer if any(m in r.per_pair for r in runs)][:3]
    data = [(m, transition_bins(runs, m)) for m in metrics]
    data = [(m, d) for m, d in data if d is not None]
    if not data:
        return '<p class="note">Too few pairs for transition-time bins.</p>'
    fig, axes = plt.subplots(1, len(data), figsize=(4 * len(data), 3.2), squeeze=False)
    headers = {m: h for m, h, _ in METRICS}
    for ax, (m, d) in zip(axes[0], data):
        labels = [f"{d['edges'][i]:.2f}–{d['edges'][i + 1]:.2f}s\n(n={d['counts'][i]})" for i in range(len(d["counts"]))]
        for name, vals in plotted(runs, m, d).items():
            ax.plot(range(len(vals)), vals, marker="o", label=name)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_title(headers[m])
        ax.set_xlabel("transition time δ")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="transition time">'


def plotted(runs: list[EvalRun], metric: str, bins: dict) -> dict[str, list[float]]:
    """The lines of one transition-time panel: every method's per-bin values, but the ground truth's on a PSNR axis
    (100 dB, identical: drawn, it squashes every other line against the bottom)."""
    exact = {r.name for r in runs if r.info["mode"] == "target"}
    return {n: v for n, v in bins["methods"].items() if not (metric == "psnr" and n in exact)}


def _grid(runs: list[EvalRun], n: int, marks: dict[str, str] | None = None) -> str:
    """input | each method | ground truth; the `input` / `target` references are those first and last columns.
    Under each row: the action, the description the models were given (the VLLM's, after enrichment) and ``marks``'
    note for the pair (e.g. the knowledge rule that decides its target)."""
    runs = [r for r in runs if r.info["mode"] not in REFERENCES] or runs
    common = [p for p in runs[0].per_pair["pair_id"] if all(p in r.per_pair["pair_id"] for r in runs)][:n]
    pairs_dir = Path(runs[0].info["pairs"])
    try:
        rows = {r["pair_id"]: r for r in read_manifest(pairs_dir)}
    except (FileNotFoundError, ValueError):
        return f'<p class="note">The pairs manifest {html.escape(str(pairs_dir))} is not readable; no image grid.</p>'
    head = "<tr><th>input</th>" + "".join(f"<th>{html.escape(r.name)}</th>" for r in runs) + "<th>ground truth</th></tr>"
    body = []
    for pid in common:
        r = rows[pid]
        cells = [_img(Image.open(resolve(pairs_dir, r["input_path"])), "input")]
        for run in runs:
            p = run.folder / "images" / f"{safe_name(pid)}.png"
            cells.append(_img(Image.open(p), run.name) if p.is_file() else "–")
        cells.append(_img(Image.open(resolve(pairs_dir, r["target_path"])), "ground truth"))
        caption = f"<br><b>{html.escape(r['label'])}</b>"
        if r.get("description"):
            caption += f"<br>VLLM: {html.escape(r['description'])}"
        if marks and marks.get(pid):
            caption += f"<br><span class='mark'>{html.escape(marks[pid])}</span>"
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
                    + f'<tr><td colspan="{len(cells)}" class="note">{html.escape(pid)}{caption}</td></tr>')
    return f'<table class="grid">{head}{"".join(body)}</table>'


def _strips(runs: list[EvalRun]) -> str:
    parts = []
    for run in runs:
        na = run.info.get("new_actions")
        if not na:
            continue
        src = Path(na["input"])
        cells = [f"<td>{_img(Image.open(src), 'input')}<br>input</td>"] if src.is_file() else []
        for it in na["items"]:
            p = run.folder / "new_actions" / it["image"]
            if p.is_file():
                cells.append(f"<td>{_img(Image.open(p), it['text'] or it['action'])}<br>{html.escape(it['action'])}</td>")
        parts.append(f"<h3>{html.escape(run.name)}</h3><table class='strip grid'><tr>{''.join(cells)}</tr></table>")
    return "".join(parts) or '<p class="note">No run generated new actions.</p>'


def _bar_chart(names: list[str], rates: list[float], lo: list[float], hi: list[float], ylabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.2))
    ax.bar(range(len(names)), [100 * r for r in rates], yerr=[[100 * (r - a) for r, a in zip(rates, lo)],
                                                              [100 * (b - r) for r, b in zip(rates, hi)]], capsize=4)
    ax.set_xticks(range(len(names)), names, fontsize=8, rotation=15)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="{html.escape(ylabel)}">'


def _user_study(votes: list[dict], source: str) -> str:
    """Fig. 4's win rates (95 % Wilson intervals), Fig. 6's aligned share, and the votes per rater."""
    from .votes_stats import aligned_rate, rater_counts, win_rates

    parts = [f"<p class='note'>{len(votes)} votes in {html.escape(source)}; 95 % Wilson intervals (votes are "
             "treated as independent: raters and pairs repeat, so the intervals are optimistic).</p>"]
    w = win_rates(votes)
    if w:
        parts.append("<h3>Generated frames (Fig. 4, protocol of Fig. 10)</h3>"
                     + _bar_chart(list(w), [v["rate"] for v in w.values()], [v["lo"] for v in w.values()],
                                  [v["hi"] for v in w.values()], "win rate (%)")
                     + "<table><tr><th>method</th><th>picked / trials</th><th>win rate</th></tr>"
                     + "".join(f"<tr><td>{html.escape(m)}</td><td>{v['wins']}/{v['n']}</td><td>{100 * v['rate']:.1f} % "
                               f"[{100 * v['lo']:.1f}, {100 * v['hi']:.1f}]</td></tr>" for m, v in w.items()) + "</table>")
    a = aligned_rate(votes)
    if a:
        parts.append(f"<h3>Descriptions (Fig. 6)</h3><p>The description matches the frames in {a['aligned']}/{a['n']} "
                     f"votes: {100 * a['rate']:.1f} % [{100 * a['lo']:.1f}, {100 * a['hi']:.1f}].</p>")
    counts = rater_counts(votes)
    parts.append("<h3>Votes per rater</h3><table><tr><th>rater</th><th>frames</th><th>descriptions</th></tr>"
                 + "".join(f"<tr><td>{html.escape(r)}</td><td>{c.get('methods', 0)}</td><td>{c.get('descriptions', 0)}"
                           "</td></tr>" for r, c in counts.items()) + "</table>")
    return "<h2>User study</h2>" + "".join(parts)


def sampling_note(runs: list[EvalRun]) -> str:
    """A warning paragraph when the LEGO models compared were sampled differently (each ``eval.json`` records its
    sampling): e.g. a ``reproduce`` folder resumed across a change of the preset's sampler pairs a model sampled one
    way with one sampled another. Baselines and references sample their own way and are left out."""
    gens = {r.name: r.info.get("generated") or {} for r in runs if r.info.get("mode") not in (*REFERENCES, *BASELINES)}
    seen = {name: {**g["sampling"], "noise draws": g.get("draws", 1)} for name, g in gens.items() if g.get("sampling")}
    if len({json.dumps(smp, sort_keys=True) for smp in seen.values()}) < 2:
        return ""
    rows = "".join(f"<li>{html.escape(name)}: {html.escape(', '.join(f'{k} {v}' for k, v in sorted(smp.items())))}</li>"
                   for name, smp in seen.items())
    return ("<p class='note'><b>These models were sampled differently</b>, so their differences mix model and "
            f"sampler; evaluate them again with the same sampling flags to compare like with like:</p><ul>{rows}</ul>")


def build_report(folders: list[str | Path], out: str | Path, title: str = "egolego evaluation",
                 sample: int = 8, notes: str = "", votes: list[dict] | None = None, votes_from: str = "",
                 sections: list[tuple[str, str]] = (), marks: dict[str, str] | None = None) -> Path:
    """``votes``: the user study's votes (``app.votes.read_votes`` of an `egolego study` database, named by
    ``votes_from``); ``sections``: extra (heading, HTML) blocks placed after
    the tables (``egolego reproduce``'s paired tests); ``marks``: a note per pair id shown under its samples (the
    demo and ``reproduce`` mark EgoSynth's rule scenes)."""
    runs = paper_order([load_run(f) for f in folders])  # every section lists the methods in the paper's order
    comp = table(runs)
    abl = ablation_runs(runs)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if notes:
        parts.append(f'<p class="note">{html.escape(notes)}</p>')
    n = {r.info["n"] for r in runs}
    parts.append(f"<h2>Comparison</h2><p class='note'>{'/'.join(map(str, sorted(n)))} pairs of split "
                 f"{html.escape(runs[0].info['split'])}; mean [95 % bootstrap interval]; CLIP, EgoVLP, BLIP, SSIM and "
                 "accuracies in %; best trained method in bold (the references are not ranked). <i>Outside</i> / "
                 "<i>inside</i>: PSNR and SSIM outside / inside the action's hand and object boxes (outside, the "
                 "input is the answer); <i>blob %</i>: pixels whose colour the input and target never had.</p>"
                 + _table_html(comp) + sampling_note(runs))
    if len({r.info["mode"] for r in abl}) > 1:
        parts.append("<h2>Ablation: conditioning</h2>" + _table_html(table(abl)))
    parts += [f"<h2>{html.escape(h)}</h2>{body}" for h, body in sections]
    parts.append("<h2>Transition time (App. C.1)</h2><p class='note'>4 bins of δ with equal counts.</p>"
                 + _transition_plot(runs))
    parts.append(f"<h2>Samples</h2>{_grid(runs, sample, marks)}")
    parts.append(f"<h2>New actions (App. C.3)</h2>{_strips(runs)}")
    if votes is not None:
        parts.append(_user_study(votes, votes_from))
    skipped: dict[tuple[str, str], list[str]] = {}
    for r in runs:
        for m, why in r.info.get("skipped", {}).items():
            skipped.setdefault((m, why), []).append(r.name)
    if skipped:
        items = "".join(f"<li><b>{html.escape(m)}</b> — {html.escape(w)} ({html.escape(', '.join(names))})</li>"
                        for (m, w), names in skipped.items())
        parts.append(f"<h2>Skipped metrics</h2><ul>{items}</ul>")
    cfg = []
    for r in runs:
        text = "\n".join(f"{k}: {v}" for k, v in r.info["args"].items())
        if r.info.get("model_config"):
            text += "\n\n# model config\n" + r.info["model_config"]
        cfg.append(f"<details><summary>{html.escape(r.name)} ({r.info['seconds']} s)</summary><pre>{html.escape(text)}"
                   "</pre></details>")
    parts.append("<h2>Runs and configs</h2>" + "".join(cfg))
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>{''.join(parts)}</body></html>")
    write_text(out, doc)
    return Path(out)


def headline(run: EvalRun) -> str:
    """One line per method for the terminal."""
    keys = ["psnr", "ssim", "psnr_out", "ssim_out", "blob", "lpips", "clip", "egovlp", "egovlp_plus", "fid", "kid",
            "fid_vae", "kid_vae", "blip_b", "blip_l", "action_all"]
    bits = []
    for k in keys:
        v = run.value(k)
        if v is not None and not (isinstance(v["mean"], float) and math.isnan(v["mean"])):
            bits.append(f"{k} {v['mean']:.4g}")
    return f"{run.name:>22}: " + "  ".join(bits)


def timeline_section(result: dict, clips: Path | None = None) -> str:
    """``egolego eval-timeline``'s figures as report HTML: judge all-correct / hand-correct (%), PSNR, SSIM per progress
    bin and method, and its ``clips.png`` (true clip, then the progress model's and the interpolation's)."""
    bins, rows = table_rows(result)
    head = "".join(f"<th>p = {html.escape(b)}</th>" for b in bins)
    body = [f"<tr><td>{html.escape(method)}</td><td>{m}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
            for method, m, cells in rows]
    note = (f"<p class='note'>{result['actions']} test actions, {result['frames']} frames along them. <i>progress</i>: "
            "the model drawing the action part-way; <i>hold</i>: the single-frame model's frame at every p; "
            "<i>interpolate</i>: (1 − p) × input + p × that frame; <i>true frame</i>: the judge on the real frames (its "
            "ceiling at that p). Judge at the pose the true frame shows; action scores in %.</p>")
    img = f'<img src="{_png(Image.open(clips))}" alt="clips">' if clips is not None and Path(clips).is_file() else ""
    along = along_the_action(result)
    if along:
        note += "<p class='note'>" + "<br>".join(html.escape(line) for line in along.splitlines()) + "</p>"
    return note + f"<table><tr><th>method</th><th>metric</th>{head}</tr>{''.join(body)}</table>" + img


def timeline_sections(folders: list[str | Path]) -> list[tuple[str, str]]:
    """(heading, HTML) of each ``egolego eval-timeline`` folder (its ``timeline.json`` and ``clips.png``), for
    ``build_report``'s ``sections``; a folder without a readable ``timeline.json`` is refused naming it."""
    out = []
    for d in map(Path, folders):
        f = d / "timeline.json"
        if not f.is_file():
            raise MissingInput("timeline", f"{d} holds no timeline.json (`egolego eval-timeline` writes it)")
        try:
            section = timeline_section(json.loads(f.read_text()), d / "clips.png")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError("timeline", f"{f} is not an eval-timeline result ({first_line(e)})") from None
        out.append((f"The action as a clip: {d.name} (progress 1/K … 1)", section))
    return out
