"""``egolego reproduce``: the paper's comparison and ablations at toy scale, on EgoSynth, in one command.

Per EgoSynth seed: the shared stages (data, curation, tuned VLLM, embeddings), then six LDMs trained with the same
recipe and the same number of steps — ``label`` (the InstructPix2Pix baseline), ``desc``, ``desc+img``,
``desc+txt``, ``lego`` (Tab. 1, 3) and ``lego`` on the embeddings and descriptions of the *untuned* VLLM (Tab. 4) —
each evaluated on the same test pairs with PSNR, SSIM, the EgoSynth action judge and the description accuracy, next
to the two references (copy the input; the ground truth). ``report.html`` holds the tables, the transition-time plot
and paired bootstrap intervals for lego − label, overall and on *twin scenes* (another object of the target's kind
in the scene, so the label alone is ambiguous). With ``baselines`` (the default) a text-to-image model is trained on the same pairs for the same steps and SDEdit
and ProxNPI (``egolego.baselines``) run on it, so the comparison table has the paper's four methods. Every stage is
resumable: rerun the same command after a kill.
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
METRICS = ("psnr", "ssim", "action", "desc_acc")
JOBS_GAIN = 1.27  # models trained per unit time with --jobs 2 against --jobs 1 (2-core CPU, RESULTS.md)


def steps_for(minutes: float, seeds: int, device: str, steps_per_s: float | None = None, baselines: bool = True,
              jobs: int = 1) -> int:
    """LDM steps per model so that the whole command fits ``minutes``: training is budgeted 80 % of the time,
    shared by the 6 LEGO-family models per seed (+ the baselines' text-to-image model), at a measured rate (2-core
    CPU: 5.4 steps/s on average over the 7 models with the tiny recipe; 5.0 leaves a margin). On a CPU, ``jobs`` > 1
    counts the measured gain of training side by side (``JOBS_GAIN``: two 1-thread models against one 2-thread model
    at a time, start-up included, ``benchmarks/bench_jobs.py``); more jobs are not assumed to gain more."""
    rate = steps_per_s or (5.0 if device == "cpu" else 25.0)
    if jobs > 1 and device == "cpu":
        rate *= JOBS_GAIN
    return max(20, int(minutes * 60 * 0.8 / ((len(RUNS) + baselines) * seeds) * rate))


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
            cfg.vllm.tokenizer = str(p.tokenizer)
            model, proc = build_model(cfg, model_dir)
            with quiet_loading():
                model.save_pretrained(str(model_dir))
            proc.save_pretrained(str(model_dir))
        sm = enrich(model_dir, pairs, store, batch_size=32, progress=False, settings=cfg.vllm)
        s.done(f"{sm['stored']} pairs")
    return pairs, store


def twin_ids(rows: list[dict], egosynth: Path) -> set[str]:
    """Pairs whose scene holds another object of the target's kind (the label alone cannot say which)."""
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


def paired_section(evals: dict[str, Path], twins: set[str], a: str = "lego", b: str = "label") -> tuple[str, dict]:
    """HTML table and figures of a − b per metric (paired bootstrap over the same pairs), overall and on twins."""
    from .eval.stats import paired_bootstrap
    from .eval.tables import load_run

    ra, rb = load_run(evals[a]), load_run(evals[b])
    assert ra.per_pair["pair_id"] == rb.per_pair["pair_id"], "both runs must score the same pairs in the same order"
    ids = ra.per_pair["pair_id"]
    result, rows = {}, []
    for metric in ("action_all", "action_object", "psnr", "ssim"):
        if metric not in ra.per_pair or metric not in rb.per_pair:
            continue
        for subset, keep in (("all pairs", None), ("twin scenes", twins)):
            sel = [i for i, pid in enumerate(ids) if keep is None or pid in keep]
            if not sel:
                continue
            d = paired_bootstrap([ra.per_pair[metric][i] for i in sel], [rb.per_pair[metric][i] for i in sel])
            result[f"{metric}/{subset}"] = d
            scale = 100 if metric.startswith(("action", "ssim")) else 1
            rows.append(f"<tr><td>{metric}</td><td>{subset}</td><td>{d['n']}</td><td>{d['mean'] * scale:+.1f} "
                        f"[{d['lo'] * scale:+.1f}, {d['hi'] * scale:+.1f}]</td></tr>")
    body = (f"<p class='note'>{html.escape(a)} − {html.escape(b)} on the same test pairs; mean [95 % paired bootstrap "
            "interval, 1,000 resamples of pairs]; accuracies and SSIM in points.</p><table><tr><th>metric</th>"
            f"<th>pairs</th><th>n</th><th>difference</th></tr>{''.join(rows)}</table>")
    return body, result


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
             baselines: bool = True, jobs: int = 1) -> dict:
    from .baselines import BASELINES, DISPLAY
    from .eval.run import EvalArgs, evaluate
    from .eval.tables import load_run

    p = prepare(cfg, root, scale=1.0)
    u_pairs, u_store = untuned(cfg, p, root)

    def data_of(tag: str) -> tuple[Path, Path]:  # (pairs, store): the untuned VLLM's for Tab. 4's row
        return (u_pairs, u_store) if tag else (p.pairs, p.store)

    def train_args(name: str, mode: str, tag: str) -> tuple:  # one model's ``train_ldm`` arguments
        pairs, store = data_of(tag)
        return cfg, p, mode, steps, root / f"ldm_{name}", store, pairs, name

    t2i_args = (copy.deepcopy(cfg), p, "t2i", steps, root / "ldm_t2i")
    if jobs > 1:  # the same train_ldm calls as below, in worker processes; the loop below then reuses the models
        headline_first = sorted(RUNS, key=lambda r: r[0] not in ("lego", "label"))  # ready earliest
        train_parallel([train_args(*r) for r in headline_first] + ([t2i_args] if baselines else []), jobs)
    evals = {}
    for name, mode, tag in RUNS:
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
                                                      new_actions=6, device=device), evaluate, load_run)
    for name, ref in (("input copy", "input"), ("ground truth", "target")):
        evals[name] = _eval(EvalArgs(model=ref, pairs=p.pairs, out=root / "eval" / name.replace(" ", "_"), metrics=METRICS,
                                     limit=test_pairs, name=name, egosynth=p.data), evaluate, load_run)
    rows = [r for r in read_manifest(p.pairs) if r["split"] == "test"][:test_pairs]
    return {"evals": evals, "twins": twin_ids(rows, p.data)}


def _eval(args, evaluate, load_run) -> Path:
    from .eval.report import headline

    with Stage(f"eval `{args.name}`") as s:
        done = args.out / "eval.json"
        if done.exists() and json.loads(done.read_text())["n"] == (args.limit or 0):
            s.done(f"reused {args.out}")
        else:
            evaluate(args, progress=False)
            s.done(headline(load_run(args.out)).strip())
    return args.out


def run_reproduce(cfg: Config, out: Path, minutes: float = 60.0, seeds: int = 1, device: str = "cpu",
                  test_pairs: int = 96, steps: int | None = None, sampling: dict | None = None,
                  baselines: bool = True, jobs: int = 1) -> dict:
    """Train, evaluate and report every seed; returns {seed: {"report", "paired"}} and writes summary.json.

    ``jobs`` > 1 trains that many models at once (``train_parallel``)."""
    saved = os.environ.get("ACCELERATE_USE_CPU")
    if device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # accelerate would otherwise take a GPU when there is one
    try:
        return _run(cfg, out, minutes, seeds, device, test_pairs, steps, sampling, baselines, jobs)
    finally:
        if saved is None:
            os.environ.pop("ACCELERATE_USE_CPU", None)
        else:
            os.environ["ACCELERATE_USE_CPU"] = saved


def _run(cfg: Config, out: Path, minutes: float, seeds: int, device: str, test_pairs: int, steps: int | None,
         sampling: dict | None, baselines: bool, jobs: int = 1) -> dict:
    from .eval.report import build_report

    TIMINGS.clear()
    Stage.command = "reproduce"
    steps = steps or steps_for(minutes, seeds, device, baselines=baselines, jobs=jobs)
    summary = {"steps_per_model": steps, "device": device, "jobs": jobs, "seeds": {}}
    for k in range(seeds):
        c = copy.deepcopy(cfg)
        c.synth.seed = cfg.synth.seed + k
        root = out / f"seed{c.synth.seed}"
        print(f"[reproduce] EgoSynth seed {c.synth.seed}: {len(RUNS) + baselines} models x {steps} steps -> {root}",
              flush=True)
        r = run_seed(c, root, steps, test_pairs, sampling or {}, device, baselines, jobs)
        body, paired = paired_section(r["evals"], r["twins"])
        report = build_report(list(r["evals"].values()), root / "report.html",
                              f"egolego reproduce: EgoSynth seed {c.synth.seed}, tiny preset",
                              notes=f"{c.synth.actions} actions; each LDM {steps} steps of batch {c.ldm.batch_size}; "
                              f"{len(r['twins'])} of the evaluated pairs are twin scenes.",
                              sections=[("Paired: lego − label (Tab. 1 at toy scale)", body)])
        summary["seeds"][c.synth.seed] = {"report": str(report), "paired": paired, "twins": len(r["twins"])}
        print(f"[reproduce] report: {report}", flush=True)
    summary["stages_s"] = dict(TIMINGS)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
