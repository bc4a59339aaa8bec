"""``egolego eval`` and ``egolego report``: score a method on a split (paper §4.1), and the HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CliError, add_sampling_flags, fail, out_file, positive, sampling_args, writable_dir


def eval_parser(sub) -> None:
    from ..eval.metric_names import METRIC_NAMES as ALL_METRICS

    e = sub.add_parser("eval", help="generate the test split with one method and score it (paper §4.1)",
                       description="Generate every pair of a split with a LEGO model (or the `input` / `target` "
                       "references), compute the metrics per pair, aggregate with 95 %% bootstrap intervals.")
    e.add_argument("--model", required=True, help="a LEGO model folder, or `input` (copy the input) / `target` (GT)")
    e.add_argument("--pairs", required=True, help="the pairs manifest folder")
    e.add_argument("--out", required=True, help="output folder (images/, per_pair.parquet, eval.json)")
    e.add_argument("--split", default="test", help="the manifest split to evaluate (default %(default)s)")
    e.add_argument("--metrics", default=",".join(ALL_METRICS), help=f"comma list of {','.join(ALL_METRICS)}")
    e.add_argument("--weights-dir", help="folder with the metric weights (README: Evaluation weights)")
    add_sampling_flags(e)
    e.add_argument("--baseline", choices=("sdedit", "proxnpi"),
                   help="evaluate a baseline on --model, a text-to-image model (`train --conditioning t2i`)")
    e.add_argument("--strength", type=float, help="SDEdit: noise strength in (0, 1] (default 0.6, README)")
    e.add_argument("--batch-size", type=int, default=8, help="frames per pipeline call (default %(default)s)")
    e.add_argument("--seed", type=int, default=0, help="noise seed; each pair's noise depends on it and its id only")
    e.add_argument("--draws", type=int, default=1, help="noise draws per pair (seeds --seed, --seed + 1 …): each "
                   "pair's metrics are averaged over them, narrowing paired intervals under a stochastic sampler "
                   "(default %(default)s)")
    e.add_argument("--limit", type=int, help="evaluate only the first N pairs")
    e.add_argument("--store", help="embedding store of `vllm enrich` (modes that use H_i / H_t; default: the "
                   "model's VLLM embeds each input frame)")
    e.add_argument("--name", help="the method's name in tables (default: the model's run folder)")
    e.add_argument("--tag", default="", help="a variant label for the ablation table, e.g. 'untuned VLLM'")
    e.add_argument("--egosynth", help="EgoSynth folder for the action judge (default: found from the manifest)")
    e.add_argument("--feature-vae", help="an AutoencoderKL folder: adds FID/KID on its latents (offline variant)")
    e.add_argument("--caption-text", choices=("clip", "egovlp"), default="clip",
                   help="text encoder comparing BLIP captions with descriptions (paper: clip; official code: egovlp)")
    e.add_argument("--new-actions", type=int, default=6, help="frames in the new-actions strip (0: none)")
    e.add_argument("--quiet", action="store_true", help="no progress lines")
    e.set_defaults(func=cmd_eval)


def report_parser(sub) -> None:
    r = sub.add_parser("report", help="one self-contained HTML report from eval folders",
                       description="Tables, plots, sample grid, new-actions strip and configs of one or more "
                       "`egolego eval` folders, in one HTML file with embedded images.")
    r.add_argument("evals", nargs="+", help="eval folders")
    r.add_argument("--out", required=True, help="the HTML file to write")
    r.add_argument("--title", default="egolego evaluation", help="the page title")
    r.add_argument("--sample", type=int, default=8, help="pairs in the image grid")
    r.add_argument("--timeline", action="append", default=[], metavar="DIR", help="an `egolego eval-timeline` "
                   "folder: adds its table per progress and its clips (repeatable)")
    r.add_argument("--votes", help="the SQLite file of `egolego study`: adds the win rates and votes per rater")
    r.set_defaults(func=cmd_report)


def cmd_eval(a: argparse.Namespace) -> int:
    positive(a.batch_size, "--batch-size")
    positive(a.draws, "--draws")
    if a.limit is not None:
        positive(a.limit, "--limit")
    metrics = tuple(m.strip() for m in a.metrics.split(",") if m.strip())
    for flag, p in (("--pairs", a.pairs), ("--weights-dir", a.weights_dir), ("--store", a.store),
                    ("--egosynth", a.egosynth), ("--feature-vae", a.feature_vae)):
        if p is not None and not Path(p).exists():
            raise CliError(f"{flag}: {p} does not exist")
    from ..eval.report import headline  # after the paths' checks: the model code's imports take seconds
    from ..eval.run import EvalArgs, evaluate
    from ..eval.tables import load_run

    args = EvalArgs(model=a.model, pairs=Path(a.pairs), out=writable_dir(Path(a.out), "--out"), split=a.split,
                    metrics=metrics, weights_dir=Path(a.weights_dir) if a.weights_dir else None,
                    batch_size=a.batch_size, seed=a.seed, draws=a.draws, limit=a.limit, store=Path(a.store) if a.store else None,
                    name=a.name, tag=a.tag, egosynth=Path(a.egosynth) if a.egosynth else None,
                    feature_vae=Path(a.feature_vae) if a.feature_vae else None, caption_text=a.caption_text,
                    new_actions=a.new_actions, baseline=a.baseline, strength=a.strength, **sampling_args(a))
    try:
        evaluate(args, progress=not a.quiet)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(headline(load_run(args.out)))
    print(f"eval: {args.out / 'eval.json'}")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from ..eval.report import build_report, timeline_sections

    positive(a.sample, "--sample")
    out_file(a.out, "--out", (".html", ".htm"))
    try:
        votes = None
        if a.votes:
            from ..app.votes import read_votes

            votes = read_votes(a.votes)
        out = build_report(a.evals, a.out, a.title, a.sample, votes=votes, votes_from=str(a.votes or ""),
                           sections=timeline_sections(a.timeline))
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(f"report: {out}")
    return 0


def timeline_parser(sub) -> None:
    t = sub.add_parser("eval-timeline", help="score a progress model along each action (timeline pairs)",
                       description="Generate every timeline frame of the test actions with a model trained with "
                       "ldm.progress, and score them per progress against the true frames (EgoSynth judge at the "
                       "frame's pose, PSNR, SSIM), beside a single-frame model held or interpolated (--single); "
                       "writes timeline.json and clips.png.")
    t.add_argument("--model", required=True, help="a LEGO model trained with ldm.progress")
    t.add_argument("--pairs", required=True, help="a timeline manifest (`egolego data build --timeline K`)")
    t.add_argument("--out", required=True, help="output folder (frames per method, timeline.json, clips.png)")
    t.add_argument("--single", help="a single-frame model of the same mode: the hold / interpolate baselines")
    t.add_argument("--store", help="embedding store of `vllm enrich` (modes that use H_i / H_t)")
    t.add_argument("--egosynth", help="EgoSynth folder for the judge (default: found from the manifest)")
    t.add_argument("--split", default="test", help="the manifest split (default %(default)s)")
    t.add_argument("--actions", type=int, help="only the first N actions")
    t.add_argument("--bins", type=int, default=4, help="progress bins of the tables (default %(default)s)")
    t.add_argument("--batch-size", type=int, default=16, help="frames per pipeline call (default %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="noise seed (one per action: its frames share it)")
    t.add_argument("--draws", type=int, default=1, help="noise draws per frame (seeds --seed, --seed + 1 …), each "
                   "frame's scores averaged over them (default %(default)s)")
    t.add_argument("--clip-start", type=float, help="the progress model's frames before p = 1: 1 = each from pure "
                   "noise; S < 1 = from the action's last frame noised to level S (default: the model's ldm.clip_start)")
    t.add_argument("--progress-guidance", type=float, help="the progress model's s_p: guide each frame away from the "
                   "action not begun by s_p; 0 = off (default: the model's ldm.progress_guidance)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_eval_timeline)


def cmd_eval_timeline(a: argparse.Namespace) -> int:
    positive(a.batch_size, "--batch-size")
    positive(a.draws, "--draws")
    positive(a.bins, "--bins")
    if a.actions is not None:
        positive(a.actions, "--actions")
    for flag, p in (("--model", a.model), ("--pairs", a.pairs), ("--single", a.single), ("--store", a.store),
                    ("--egosynth", a.egosynth)):
        if p is not None and not Path(p).exists():
            raise CliError(f"{flag}: {p} does not exist")
    from ..eval.timeline import TimelineArgs, along_the_action, evaluate_timeline, table  # after the checks, as `eval`

    args = TimelineArgs(model=Path(a.model), pairs=Path(a.pairs), out=writable_dir(Path(a.out), "--out"),
                        single=Path(a.single) if a.single else None, store=Path(a.store) if a.store else None,
                        egosynth=Path(a.egosynth) if a.egosynth else None, split=a.split, actions=a.actions,
                        bins=a.bins, seed=a.seed, draws=a.draws, batch_size=a.batch_size, clip_start=a.clip_start,
                        progress_guidance=a.progress_guidance)
    try:
        r = evaluate_timeline(args, progress=not a.quiet)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(table(r))
    print(along_the_action(r))
    print(f"eval-timeline: {args.out / 'timeline.json'}")
    return 0
