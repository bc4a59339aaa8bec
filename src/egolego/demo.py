"""``egolego demo``: the whole pipeline on the embedded default (EgoSynth, tiny preset, CPU).

EgoSynth → data build (EPIC format) → curate (geometric) → VLLM tune → enrich → [VAE, if the recipe uses one] →
train ``lego`` (and, with ``baseline``, the ``label`` baseline) → ``egolego eval`` of the model(s) and of the two
references (copy the input; the ground truth) → ``report.html`` and a figure. Each stage prints one line and reuses
what an earlier run built in the same folder. ``--minutes`` scales the training steps to fit a time budget
(default about 10 minutes on 2 cores). Without ``weights_dir`` the metrics that need pretrained networks are
skipped (listed in the report); the offline ones (PSNR, SSIM, the EgoSynth action judge, the description accuracy)
always run.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

from PIL import Image, ImageDraw

from . import precision
from .config import Config
from .data.manifest import read_manifest, resolve
from .stages import TIMINGS, Stage, prepare, train_ldm
from .synth.pairs import rule_marks

# The most LDM steps the 10-minute demo trains (scaled by --minutes), by the precision training runs in; the clock
# may stop it sooner (``run_demo``): bf16 autocast trains ~5.3 steps/s on the slower AVX512-BF16 dev box, fp32 ~4.7
LDM_STEPS_10MIN = {"bf16": 2000, "fp16": 1800, "no": 1800}
# The demo's vision tower: half the tiny preset's 16,000 scenes (109 s on 2 cores, held-out label F1 .56 / state F1
# .70). The demo tunes the VLLM on its curated records only unless ``stills`` says otherwise: the tiny preset's
# 12,000 rendered stills take the VLLM ~1,100 steps and ~270 s to learn to look (RESULTS.md, 2026-12-06), which with
# the tower leaves the LDM ~900 steps of the 10 minutes, too few to draw an action (0 of 48 test pairs, measured)
DEMO_TOWER_SCENES = 8000
EVAL_RESERVE_S = 30  # what the end of the demo needs on 2 cores: eval of the model and the references, the report
MIN_LDM_S = 90  # the LDM trains at least this long, however slow the box (an untrained model shows nothing)
# Below this many LDM steps the measured demos drew no action (947 steps: 0 of 48 test pairs; 1,533-2,000: 6-15 %;
# on a box 3x slower the clock left 221: 0 %, SSIM below copying the input; RESULTS.md, bench_demo.py)
MIN_DRAWING_STEPS = 1500


def too_few_steps(reached: int, budget: int, seconds: float) -> str | None:
    """A warning when the demo's ``lego`` trained too few steps to draw an action, saying why and what to run instead
    (``seconds``: how long those steps took here, 0 when the model was reused); None when it trained enough."""
    if reached >= MIN_DRAWING_STEPS:
        return None
    if reached < budget:  # the clock cut it
        why = f"the clock stopped `lego` after {reached} of its {budget} steps"
        fix = f"`egolego demo --fixed-steps` trains all {budget}"
        if seconds > 0:
            fix += f" (about {budget / (reached / seconds) / 60:.0f} min of LDM training on this box)"
    else:
        why = f"`lego`'s budget is {budget} steps"
        lo, hi = min(LDM_STEPS_10MIN.values()), max(LDM_STEPS_10MIN.values())
        fix = f"a larger `--minutes` raises it (10 minutes give {lo:,}-{hi:,})"
    return (f"[demo] warning: {why}, fewer than the {MIN_DRAWING_STEPS:,} below which the demo has drawn no action "
            f"(its frames will show little of it); {fix}.")


def run_demo(cfg: Config, out: Path, minutes: float = 10.0, test_pairs: int = 48, weights_dir: Path | None = None,
             ldm_steps_10min: int | None = None, baseline: bool = False, follow_clock: bool = True,
             stills: int = 0, clips: bool = True) -> dict:
    """``baseline`` also trains the ``label`` model (InstructPix2Pix) with the same steps: twice the training time
    (``egolego reproduce`` is the comparison with every baseline and ablation). ``cfg`` is not changed: the stages
    write the run's effective values (scaled epochs and steps, the folders they made) into a copy.

    ``follow_clock``: the LDM trains up to its step budget but stops when the ``minutes`` budget (less the time the
    evaluation needs) runs out, so a slower box trains fewer steps instead of running late; the steps reached are
    printed, saved with the model and used for ``label``. Off, the steps are fixed (the same model on every box).

    ``stills``: rendered, exactly described stills the VLLM is tuned on beside the curated records (scaled with
    ``minutes``; ``vllm.synthetic_records`` for this run): the way the VLLM learns the knowledge world's rules.

    ``clips``: also the action as a clip — the ``lego`` model extended with a progress input on timeline pairs for a
    third of its steps, scored along the action and shown in the report (``stages.timeline_stage``)."""
    cfg = copy.deepcopy(cfg)
    TIMINGS.clear()
    Stage.command = "demo"
    t0 = time.monotonic()
    scale = max(0.05, minutes / 10.0)
    pc = cfg.vllm.vision_pretrain
    pc.scenes, cfg.vllm.synthetic_records = min(pc.scenes, DEMO_TOWER_SCENES), stills
    p = prepare(cfg, out, scale)
    per_10min = ldm_steps_10min or LDM_STEPS_10MIN[precision.resolve(cfg.ldm.mixed_precision)]
    ldm_steps = max(20, int(round(per_10min * scale)))
    deadline = None
    if follow_clock:
        deadline = max(t0 + minutes * 60 - EVAL_RESERVE_S, time.monotonic() + MIN_LDM_S * scale)
    fresh = not (out / "ldm_lego").exists()  # trained here from step 0: its pace is this box's
    t_ldm = time.monotonic()
    models = {"lego": train_ldm(cfg, p, "lego", ldm_steps, out / "ldm_lego", deadline=deadline)}
    budget, ldm_steps = ldm_steps, trained_steps(out / "ldm_lego", ldm_steps)
    warning = too_few_steps(ldm_steps, budget, time.monotonic() - t_ldm if fresh else 0.0)
    if warning:
        print(warning, flush=True)
    if baseline:  # the same steps as lego reached, whatever the clock says now
        models["label"] = train_ldm(cfg, p, "label", ldm_steps, out / "ldm_label")
    if not (models["lego"] / "vllm").exists():  # `egolego generate` finds the VLLM next to the LDM
        shutil.copytree(p.vllm, models["lego"] / "vllm")
    pairs, data, vae_dir, store = p.pairs, p.data, p.vae, p.store
    rows = read_manifest(pairs)

    from .eval.report import build_report, headline
    from .eval.run import EvalArgs, evaluate, finished
    from .eval.tables import load_run

    n_test = sum(r["split"] == "test" for r in rows)
    evals = {}
    from .methods import DISPLAY, REFERENCES

    for name, method in [*models.items(), *((DISPLAY[r], r) for r in REFERENCES)]:
        d = out / "eval" / name.replace(" ", "_")
        with Stage(f"eval `{name}` on {min(test_pairs, n_test)} test pairs (generate, PSNR/SSIM, judge)") as s:
            args = EvalArgs(model=str(method), pairs=pairs, out=d, weights_dir=weights_dir, batch_size=24, limit=test_pairs,
                            store=store, name=name, egosynth=data, feature_vae=vae_dir)
            if finished(args):
                s.done(f"reused {d}")
            else:
                evaluate(args, progress=False)
                s.done(headline(load_run(d)).strip())
        evals[name] = d
    sections = []
    if clips:
        from .eval.report import timeline_section
        from .stages import timeline_stage

        tl, tl_dir = timeline_stage(cfg, p, models["lego"], max(10, ldm_steps // 3), out, min(8, test_pairs, n_test))
        sections.append(("The action as a clip (progress 1/4 … 1)", timeline_section(tl, tl_dir / "clips.png")))
    runs = [load_run(d) for d in evals.values()]
    marks = rule_marks(data)
    fig = _figure(pairs, runs, out / "demo_results.png", marks=marks)
    stills = cfg.vllm.synthetic_records
    report = build_report(list(evals.values()), out / "report.html", "egolego demo: EgoSynth, tiny preset, CPU",
                          marks=marks, sections=sections,
                          notes=f"World: synth.knowledge = {cfg.synth.knowledge}. {cfg.synth.actions} EgoSynth actions at "
                          f"{cfg.synth.size}px ({sum(r['split'] == 'train' for r in rows)} training pairs for the diffusion "
                          f"model); the VLLM tuned on the curated records + {stills} rendered stills. LDM {ldm_steps} steps "
                          f"of batch {cfg.ldm.batch_size} ({cfg.ldm.objective}, {cfg.ldm.prediction}, autoencoder "
                          f"{cfg.ldm.autoencoder}); {cfg.ldm.steps} {cfg.ldm.scheduler} sampling steps. Toy scale: "
                          "the tiny recipe differs from the paper's (README, where we differ)."
                          + (f" {warning.removeprefix('[demo] ')}" if warning else ""))
    results = {r.info["name"]: {k: round(v["mean"], 4) for k, v in r.info["metrics"].items()}
               | {k: round(v, 4) for k, v in r.info["set_metrics"].items()} for r in runs}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"[demo] report: {report}")
    print(f"[demo] figure: {fig}")
    for r in runs:
        print(f"[demo] {headline(r)}")
    if warning:
        print(warning)
    return {"results": results, "figure": str(fig), "report": str(report), "out": str(out), "stages": dict(TIMINGS)}


def trained_steps(run: Path, default: int) -> int:
    """The steps a finished LDM run trained (its saved config's ``ldm.max_steps``: the clock may have cut them)."""
    from .config import load

    f = run / "config.yaml"
    return load(f).ldm.max_steps if f.is_file() else default


def _figure(pairs: Path, runs: list, path: Path, n: int = 8, marks: dict[str, str] | None = None) -> Path:
    """input | each method | ground truth for the first ``n`` evaluated pairs (the README's figure), with the action,
    the VLLM's description and, for a scene a knowledge rule decides, the rule under each row."""
    import textwrap

    from .methods import REFERENCES
    from .names import safe_name

    ids = runs[0].per_pair["pair_id"][:n]
    by_id = {r["pair_id"]: r for r in read_manifest(pairs)}
    methods = [r for r in runs if r.info["mode"] not in REFERENCES]
    cols = ["input"] + [r.name for r in methods] + ["ground truth"]
    s, pad, line = 128, 6, 12
    width = len(cols) * (s + pad) + pad
    chars = max(30, (width - 2 * pad) // 6)

    def caption(pid: str) -> list[tuple[str, str]]:
        row = by_id[pid]
        out = [(t, "black") for t in textwrap.wrap(f"action: {row['label']}", chars)]
        out += [(t, "#333") for t in textwrap.wrap(f"VLLM: {row['description']}", chars)]
        if marks and marks.get(pid):
            out += [(t, "#a40") for t in textwrap.wrap(marks[pid], chars)]
        return out

    caps = {pid: caption(pid) for pid in ids}
    heights = [s + pad + line * len(caps[pid]) + pad for pid in ids]
    sheet = Image.new("RGB", (width, 22 + sum(heights)), "white")
    d = ImageDraw.Draw(sheet)
    for c, name in enumerate(cols):
        d.text((pad + c * (s + pad), 6), name, fill="black")
    y = 22
    for pid, h in zip(ids, heights):
        row = by_id[pid]
        ims = [Image.open(resolve(pairs, row["input_path"]))]
        ims += [Image.open(r.folder / "images" / f"{safe_name(pid)}.png") for r in methods]
        ims.append(Image.open(resolve(pairs, row["target_path"])))
        for c, im in enumerate(ims):
            sheet.paste(im.convert("RGB").resize((s, s), Image.NEAREST), (pad + c * (s + pad), y))
        for k, (text, colour) in enumerate(caps[pid]):
            d.text((pad, y + s + 3 + k * line), text, fill=colour)
        y += h
    sheet.save(path)
    return path
