"""``egolego reproduce``: the paper's comparison and ablations at toy scale, on EgoSynth, in one command.

Per EgoSynth seed: the shared stages (data, curation, tuned VLLM, embeddings), then six LDMs trained with the same
recipe and the same number of steps — ``label`` (the InstructPix2Pix baseline), ``desc``, ``desc+img``,
``desc+txt``, ``lego`` (Tab. 1, 3) and ``lego`` on the embeddings and descriptions of the *untuned* VLLM (Tab. 4) —
each evaluated on the same test pairs with PSNR, SSIM, the EgoSynth action judge and the description accuracy, next
to the two references (copy the input; the ground truth). ``report.html`` holds the tables, the transition-time plot
and paired bootstrap intervals (``COMPARISONS``: lego − label, lego − desc, desc − label, tuned − untuned), overall
and on the *look-alike scenes* (another object of the target's kind in the scene, so the label alone is ambiguous:
in the ``rules`` world a knowledge rule decides them, in the control world nothing does). With ``baselines`` (the
default) a text-to-image model is trained on the same pairs for the same steps and SDEdit and ProxNPI
(``egolego.baselines``) run on it, so the comparison table has the paper's four methods. ``control`` runs the headline
models in the world without knowledge on the same seed; ``curve`` adds the data-efficiency curve (``label`` and
``lego`` on fewer training pairs). Every stage is resumable: rerun the same command after a kill.
"""

from __future__ import annotations

import copy
import html
import json
import os
import shutil
from pathlib import Path

from .config import Config
from .data.manifest import read_manifest
from .stages import TIMINGS, Prepared, Stage, prepare, train_ldm

# (run name, conditioning mode, tag): the ablation rows, in the paper's order
RUNS = [("label", "label", ""), ("desc", "desc", ""), ("desc+img", "desc+img", ""), ("desc+txt", "desc+txt", ""),
        ("lego", "lego", ""), ("lego-untuned", "lego", "untuned VLLM")]
METRICS = ("psnr", "ssim", "regions", "blob", "action", "desc_acc")
# a − b: Tab. 1's claim (LEGO over InstructPix2Pix), Tab. 3's (the embeddings over the description alone; the
# description over the label) and Tab. 4's (tuned over untuned VLLM)
COMPARISONS = (("lego", "label"), ("lego", "desc"), ("desc", "label"), ("lego", "lego-untuned"))
CONTROL_RUNS = ("label", "desc", "lego")  # the models `--control` trains in the world without knowledge
CURVE_RUNS = ("label", "lego")  # the models of the data-efficiency curve, at each `--curve` pair count
JOBS_GAIN = 1.27  # models trained per unit time with --jobs 2 against --jobs 1 (2-core CPU, RESULTS.md)


def steps_for(minutes: float, seeds: int, device: str, steps_per_s: float | None = None, baselines: bool = True,
              jobs: int = 1, runs: int = len(RUNS)) -> int:
    """LDM steps per model so that the whole command fits ``minutes``: training is budgeted 80 % of the time,
    shared by the ``runs`` LEGO-family models per seed (default 6) (+ the baselines' text-to-image model), at a measured rate (2-core
    CPU: 5.4 steps/s on average over the 7 models with the tiny recipe; 5.0 leaves a margin). On a CPU, ``jobs`` > 1
    counts the measured gain of training side by side (``JOBS_GAIN``: two 1-thread models against one 2-thread model
    at a time, start-up included, ``benchmarks/bench_jobs.py``); more jobs are not assumed to gain more."""
    rate = steps_per_s or (5.0 if device == "cpu" else 25.0)
    if jobs > 1 and device == "cpu":
        rate *= JOBS_GAIN
    return max(20, int(minutes * 60 * 0.8 / ((runs + baselines) * seeds) * rate))


def untuned(cfg: Config, p: Prepared, root: Path) -> tuple[Path, Path]:
    """(pairs, store) of the VLLM *before* instruction tuning: its own descriptions and embeddings (Tab. 4).

    The pairs folder is copied first, because enrichment writes its descriptions into the manifest."""
    from .hf_quiet import quiet_loading
    from .vllm.enrich import enrich
    from .vllm.tune import build_model

    pairs, model_dir, store = root / "pairs_untuned", root / "vllm_untuned", root / "embeddings_untuned"
    with Stage("untuned VLLM: describe and embed every pair (Tab. 4)") as s:
        if not (pairs / "pairs.parquet").exists():
            shutil.copytree(p.pairs, pairs, dirs_exist_ok=True)
        if not (model_dir / "config.json").exists():
            cfg = copy.deepcopy(cfg)
            cfg.vllm.tokenizer = str(p.tokenizer)
            cfg.vllm.vision_tower = str(p.vision_tower) if p.vision_tower else None  # the tuned one's tower
            model, proc = build_model(cfg, model_dir)
            with quiet_loading():
                model.save_pretrained(str(model_dir))
            proc.save_pretrained(str(model_dir))
        sm = enrich(model_dir, pairs, store, batch_size=32, progress=False, settings=cfg.vllm)
        s.done(f"{sm['stored']} pairs")
    return pairs, store


def twin_ids(rows: list[dict], egosynth: Path) -> set[str]:
    """Look-alike scenes: pairs whose scene holds another object of the target's kind, so the label alone cannot say
    which one is meant (in the ``rules`` world these are exactly the rule scenes; in the control world, twins)."""
    from .synth.pairs import truth_by_pair_id

    truth = truth_by_pair_id(egosynth)
    out = set()
    for r in rows:
        t = truth.get(r["pair_id"])
        if t is not None:
            kinds = [o["kind"] for o in t["scene"]["objects"]]
            if kinds.count(t["target"]["kind"]) > 1:
                out.add(r["pair_id"])
    return out


def named_ids(rows: list[dict], egosynth: Path) -> set[str]:
    """Pairs whose manifest description (the tuned VLLM's, after ``vllm enrich``) names the target object and its
    side (``description_accuracy``'s "position"): on the look-alike scenes, where the VLLM knows which one is meant.
    Splitting the rule scenes by it tells the two halves of LEGO's claim apart: whether the VLLM knows, and whether
    the diffusion model draws what it knows."""
    from .synth.describe import description_accuracy
    from .synth.pairs import truth_by_pair_id

    truth = truth_by_pair_id(egosynth)
    return {r["pair_id"] for r in rows if r["pair_id"] in truth and r.get("description")
            and description_accuracy(r["description"], truth[r["pair_id"]])["position"]}


def subset_name(cfg: Config) -> str:
    """What the look-alike scenes are called in the tables: rule scenes where a knowledge rule decides them."""
    return "rule scenes" if cfg.synth.knowledge != "none" else "twin scenes"


def comparisons(evals: dict[str, Path], twins: set[str], name: str, named: set[str]) -> dict[str, dict]:
    """The paired differences the paper's claims rest on, for the models this run trained: over all pairs, on the
    look-alike scenes, and on those the VLLM's description gets right (``named``: ``named_ids``) and wrong."""
    from .eval.paired import paired

    more = {f"{name}, the VLLM names the target": twins & named, f"{name}, the VLLM misses it": twins - named}
    return {f"{a} − {b}": paired(evals[a], evals[b], twins, name, more=more)
            for a, b in COMPARISONS if a in evals and b in evals}


def _train_one(threads: int, args: tuple) -> dict[str, float]:
    """One model in a worker process with ``threads`` torch threads; returns its stage timings."""
    import torch

    torch.set_num_threads(threads)
    Stage.command = "reproduce"  # a spawned process starts with the class default
    TIMINGS.clear()
    train_ldm(*args)
    return dict(TIMINGS)


def train_parallel(tasks: list[tuple], jobs: int) -> None:
    """Train the models ``jobs`` at a time, each in its own (spawned) process with 1/jobs of this process's threads.

    Why: a 64-px model uses two threads poorly; on 2 CPU cores two 1-thread runs make ~1.4x the steps of one
    2-thread run (benchmarks/RESULTS.md). ``tasks`` are ``train_ldm`` arguments; a model already trained is reused
    and a killed one resumes, as in the sequential loop, which then finds every model trained. The first failure
    is raised once the running ones have stopped; the runs not yet started are cancelled."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_train_one, threads, t) for t in tasks]
        try:
            for f in as_completed(futures):
                # own keys: the sequential loop's reuse of the same stage would overwrite them with ~0 s
                TIMINGS.update({f"{k} [worker]": v for k, v in f.result().items()})
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def run_seed(cfg: Config, root: Path, steps: int, test_pairs: int, sampling: dict, device: str,
             baselines: bool = True, jobs: int = 1, runs: list[tuple] | None = None, curve: tuple[int, ...] = ()) -> dict:
    """Train and evaluate one EgoSynth seed's models (``runs``, default ``RUNS``; the baselines' text-to-image model
    when ``baselines``; ``label`` and ``lego`` on each ``curve`` count of training pairs), all on the same test pairs."""
    from .baselines import BASELINES
    from .eval.run import EvalArgs, evaluate
    from .eval.tables import load_run
    from .methods import DISPLAY, REFERENCES

    runs = RUNS if runs is None else runs
    p = prepare(cfg, root, scale=1.0)
    if any(tag for _, _, tag in runs):
        u_pairs, u_store = untuned(cfg, p, root)

    def data_of(tag: str) -> tuple[Path, Path]:  # (pairs, store): the untuned VLLM's for Tab. 4's row
        return (u_pairs, u_store) if tag else (p.pairs, p.store)

    def train_args(name: str, mode: str, tag: str) -> tuple:  # one model's ``train_ldm`` arguments
        pairs, store = data_of(tag)
        return cfg, p, mode, steps, root / f"ldm_{name}", store, pairs, name

    def curve_args(k: int, mode: str) -> tuple:  # the same model on the first k training pairs (ldm.train_pairs)
        c = copy.deepcopy(cfg)
        c.ldm.train_pairs = k
        return c, p, mode, steps, root / "curve" / f"ldm_{mode}_{k}", None, None, f"{mode} on {k} pairs"

    t2i_args = (copy.deepcopy(cfg), p, "t2i", steps, root / "ldm_t2i")
    curve_tasks = [curve_args(k, mode) for k in curve for mode in CURVE_RUNS]
    if jobs > 1:  # the same train_ldm calls as below, in worker processes; the loops below then reuse the models
        headline_first = sorted(runs, key=lambda r: r[0] not in ("lego", "label"))  # ready earliest
        train_parallel([train_args(*r) for r in headline_first] + ([t2i_args] if baselines else []) + curve_tasks, jobs)
    evals = {}
    for name, mode, tag in runs:
        pairs, store = data_of(tag)
        model = train_ldm(*train_args(name, mode, tag))
        vllm = root / "vllm_untuned" if tag else p.vllm
        if mode != "label" and not (model / "vllm").exists():
            shutil.copytree(vllm, model / "vllm")
        evals[name] = _eval(EvalArgs(model=str(model), pairs=pairs, out=root / "eval" / name, metrics=METRICS, limit=test_pairs,
                                     store=store, name=name, tag=tag, egosynth=p.data, batch_size=32,
                                     new_actions=6 if name in ("label", "lego") else 0, device=device, **sampling),
                            evaluate, load_run)
    if baselines:  # SDEdit and ProxNPI on one text-to-image model trained on the same pairs for the same steps
        t2i = train_ldm(*t2i_args)
        for baseline in BASELINES:
            evals[DISPLAY[baseline]] = _eval(EvalArgs(model=str(t2i), pairs=p.pairs, out=root / "eval" / baseline,
                                                      metrics=METRICS, limit=test_pairs, name=DISPLAY[baseline],
                                                      baseline=baseline, egosynth=p.data, batch_size=32,
                                                      new_actions=6, device=device,
                                                      draws=sampling.get("draws", 1)), evaluate, load_run)
    for name, ref in ((DISPLAY[r], r) for r in REFERENCES):
        evals[name] = _eval(EvalArgs(model=ref, pairs=p.pairs, out=root / "eval" / name.replace(" ", "_"), metrics=METRICS,
                                     limit=test_pairs, name=name, egosynth=p.data), evaluate, load_run)
    curve_evals: dict[int, dict[str, Path]] = {}
    for task in curve_tasks:
        mode, k = task[2], task[0].ldm.train_pairs
        model = train_ldm(*task)
        if mode != "label" and not (model / "vllm").exists():
            shutil.copytree(p.vllm, model / "vllm")
        curve_evals.setdefault(k, {})[mode] = _eval(
            EvalArgs(model=str(model), pairs=p.pairs, out=root / "curve" / "eval" / f"{mode}_{k}", metrics=METRICS,
                     limit=test_pairs, store=p.store, name=f"{mode} ({k} pairs)", egosynth=p.data, batch_size=32,
                     device=device, **sampling), evaluate, load_run)
    rows = [r for r in read_manifest(p.pairs) if r["split"] == "test"][:test_pairs]
    return {"evals": evals, "twins": twin_ids(rows, p.data), "named": named_ids(rows, p.data), "curve": curve_evals,
            "prepared": p, "train_pairs": sum(r["split"] == "train" for r in read_manifest(p.pairs))}


def _eval(args, evaluate, load_run) -> Path:
    from .eval.report import headline
    from .eval.run import finished

    with Stage(f"eval `{args.name}`") as s:
        if finished(args):
            s.done(f"reused {args.out}")
        else:
            evaluate(args, progress=False)
            s.done(headline(load_run(args.out)).strip())
    return args.out


def select_runs(names: list[str] | None, clips: bool = False) -> list[tuple]:
    """The rows of ``RUNS`` named (all when ``names`` is None), in the paper's order; an unknown name is an error, and
    so is ``clips`` (they extend the ``lego`` model) without ``lego``."""
    known = [r[0] for r in RUNS]
    unknown = [n for n in names or () if n not in known]
    if names is not None and (unknown or not names):
        raise ValueError(f"unknown run(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
    chosen = list(RUNS) if names is None else [r for r in RUNS if r[0] in names]
    if clips and "lego" not in [r[0] for r in chosen]:
        raise ValueError("--clips extends the lego model: add lego to the runs")
    return chosen


def run_reproduce(cfg: Config, out: Path, minutes: float = 60.0, seeds: int = 1, device: str = "cpu",
                  test_pairs: int = 96, steps: int | None = None, sampling: dict | None = None,
                  baselines: bool = True, jobs: int = 1, control: bool = False, curve: tuple[int, ...] = (),
                  runs: list[str] | None = None, clips: bool = False) -> dict:
    """Train, evaluate and report every seed; returns {seed: {"report", "paired", ...}} and writes summary.json.

    ``runs`` names the rows of ``RUNS`` to train (default all six; e.g. the headline ``label,desc,lego``);
    comparisons whose two models were not trained are left out of the tables.

    ``jobs`` > 1 trains that many models at once (``train_parallel``); ``control`` also runs ``CONTROL_RUNS`` in the
    world without knowledge (``synth.knowledge: none``) on the same seed; ``curve`` trains ``label`` and ``lego`` on
    each of these numbers of training pairs (the data-efficiency curve); ``clips`` extends each seed's ``lego`` with a
    progress input for half its steps and scores it along the action on the test actions (``stages.timeline_stage``,
    the recipe measured on test seed 2: RESULTS.md "eval-timeline"), the report's section "The action as a clip"."""
    saved = os.environ.get("ACCELERATE_USE_CPU")
    if device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # accelerate would otherwise take a GPU when there is one
    try:
        return _run(cfg, out, minutes, seeds, device, test_pairs, steps, sampling, baselines, jobs, control, curve,
                    select_runs(runs, clips), clips)
    finally:
        if saved is None:
            os.environ.pop("ACCELERATE_USE_CPU", None)
        else:
            os.environ["ACCELERATE_USE_CPU"] = saved


def _notes(c: Config, r: dict, steps: int) -> str:
    v = c.vllm
    stills = f" + {v.synthetic_records} rendered stills × {v.synthetic_epochs} epochs" if v.synthetic_records else ""
    return (f"World: synth.knowledge = {c.synth.knowledge}. {c.synth.actions} EgoSynth actions; the diffusion model "
            f"trains on {r['train_pairs']} pairs; the VLLM is tuned on the curated records{stills}. Each LDM {steps} "
            f"steps of batch {c.ldm.batch_size} (conditioner gate: {c.ldm.conditioner_gate}); "
            f"{len(r['twins'])} of the evaluated pairs are {subset_name(c)}.")


def _report_seed(c: Config, r: dict, steps: int, title: str, extra: list[tuple[str, str]] = ()) -> tuple[Path, dict]:
    from .eval.paired import curve_section, paired, paired_table
    from .eval.report import build_report
    from .synth.pairs import rule_marks

    name = subset_name(c)
    diffs = comparisons(r["evals"], r["twins"], name, r["named"])
    sections = [("Paired differences (Tab. 1, 3, 4 at toy scale)", paired_table(diffs))]
    curve = {}
    if r["curve"]:
        curve = {k: paired(e["lego"], e["label"], r["twins"], name) for k, e in r["curve"].items()}
        if "lego" in r["evals"] and "label" in r["evals"]:
            curve[r["train_pairs"]] = diffs["lego − label"]
        root = r["prepared"].data.parent
        sections.append(("Data efficiency: lego − label against the diffusion model's training pairs",
                         curve_section(curve, name, root / "curve.png")))
    root = r["prepared"].data.parent
    report = build_report(list(r["evals"].values()), root / "report.html", title, notes=_notes(c, r, steps),
                          sections=sections + list(extra), marks=rule_marks(r["prepared"].data))
    return report, {"report": str(report), "paired": diffs, "look_alikes": len(r["twins"]), "subset": name,
                    "train_pairs": r["train_pairs"], "stills": c.vllm.synthetic_records,
                    "curve": {str(k): v for k, v in curve.items()}}


def _run(cfg: Config, out: Path, minutes: float, seeds: int, device: str, test_pairs: int, steps: int | None,
         sampling: dict | None, baselines: bool, jobs: int = 1, control: bool = False,
         curve: tuple[int, ...] = (), runs: list[tuple] = RUNS, clips: bool = False) -> dict:
    from .eval.paired import paired_table

    TIMINGS.clear()
    Stage.command = "reproduce"
    steps = steps or steps_for(minutes, seeds, device, baselines=baselines, jobs=jobs, runs=len(runs))
    summary = {"steps_per_model": steps, "device": device, "jobs": jobs, "runs": [r[0] for r in runs], "seeds": {}}
    for k in range(seeds):
        c = copy.deepcopy(cfg)
        c.synth.seed = cfg.synth.seed + k
        root = out / f"seed{c.synth.seed}"
        n_models = len(runs) + baselines + len(CURVE_RUNS) * len(curve)
        print(f"[reproduce] EgoSynth seed {c.synth.seed} ({c.synth.knowledge} world): {n_models} models x {steps} "
              f"steps -> {root}", flush=True)
        extra, ctl = [], None
        if control and c.synth.knowledge != "none":
            cc = copy.deepcopy(c)
            cc.synth.knowledge = "none"
            croot = out / f"seed{c.synth.seed}-control"
            print(f"[reproduce] control: the same seed without knowledge, {', '.join(CONTROL_RUNS)} -> {croot}", flush=True)
            rc = run_seed(cc, croot, steps, test_pairs, sampling or {}, device, False, jobs,
                          [r for r in runs if r[0] in CONTROL_RUNS])
            report_c, ctl = _report_seed(cc, rc, steps, f"egolego reproduce: EgoSynth seed {c.synth.seed}, control "
                                         "world (synth.knowledge: none)")
            extra = [("Control world (synth.knowledge: none, same seed)",
                      f"<p class='note'>Report: {html.escape(str(report_c))}</p>" + paired_table(ctl["paired"]))]
        r = run_seed(c, root, steps, test_pairs, sampling or {}, device, baselines, jobs, runs, curve=tuple(curve))
        timeline = None
        if clips:
            from .eval.report import timeline_section
            from .stages import timeline_stage

            timeline, tl_dir = timeline_stage(c, r["prepared"], root / "ldm_lego" / "model", max(10, steps // 2), root,
                                              test_pairs)
            extra = extra + [("The action as a clip (progress 1/4 … 1)", timeline_section(timeline, tl_dir / "clips.png"))]
        report, s = _report_seed(c, r, steps, f"egolego reproduce: EgoSynth seed {c.synth.seed}, tiny preset, "
                                 f"{c.synth.knowledge} world", extra)
        if ctl is not None:
            s["control"] = ctl
        if timeline is not None:  # all-correct per progress bin: the progress model, and the single-frame one held
            s["timeline"] = {m: {b: v["mean"] for b, v in timeline["by_p"][m].get("action_all", {}).items()}
                             for m in ("progress", "hold")}
        summary["seeds"][c.synth.seed] = s
        print(f"[reproduce] report: {report}", flush=True)
    summary["stages_s"] = dict(TIMINGS)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
