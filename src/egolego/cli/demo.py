"""``egolego demo`` and ``egolego reproduce``: the whole pipeline on EgoSynth (``stages.py``, ``reproduce.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CliError, add_sampling_flags, load_cfg, positive, sampling_args, writable_dir


def demo_parser(sub) -> None:
    d = sub.add_parser("demo", help="run the whole pipeline on the embedded default (EgoSynth, tiny, CPU)",
                       description="Run every stage that exists on EgoSynth with the tiny preset; reruns reuse "
                       "finished stages.")
    d.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    d.add_argument("--config", help="a YAML config file (default: the tiny preset)")
    d.add_argument("--actions", type=int, help="override the number of EgoSynth actions (default: synth.actions)")
    d.add_argument("--minutes", type=float, default=10.0, help="time budget that scales the training (default 10); "
                   "the LDM stops when the budget runs out, so a slower box trains fewer steps (see --fixed-steps)")
    d.add_argument("--fixed-steps", action="store_true", help="train the LDM's full step budget whatever the clock "
                   "says (the same model on every box; a slower box runs past --minutes)")
    d.add_argument("--stills", type=int, default=0, help="also tune the VLLM on this many rendered, exactly described "
                   "stills of the knowledge world (default 0; reproduce uses 12000: ~4.5 minutes more at --minutes 10, "
                   "taken from the LDM's training when the clock rules)")
    d.add_argument("--weights-dir", help="metric weights (README: Evaluation weights); without it those metrics are skipped")
    d.add_argument("--baseline", action="store_true",
                   help="also train the `label` baseline (InstructPix2Pix) with the same steps: twice the training")
    d.add_argument("--no-clips", action="store_true",
                   help="skip the action as a clip (timeline pairs, `lego` extended with a progress input for a third of "
                   "its steps, eval-timeline on 8 test actions, a report section)")
    d.set_defaults(func=cmd_demo)


def reproduce_parser(sub) -> None:
    rp = sub.add_parser("reproduce", help="the paper's Tables 1, 3, 4 at toy scale on EgoSynth (6 LDMs, one budget)",
                        description="Train label, desc, desc+img, desc+txt, lego and lego on the untuned VLLM with "
                        "one recipe and one budget, evaluate them on the same test pairs, and write report.html with "
                        "the tables and paired bootstrap intervals (lego - label, lego - desc, desc - label, tuned - "
                        "untuned; overall and on the look-alike scenes: rule scenes in the knowledge world). "
                        "Resumable: rerun after a kill.")
    rp.add_argument("--out", required=True, help="output folder (one sub-folder per EgoSynth seed)")
    rp.add_argument("--minutes", type=float, default=60.0, help="time budget that sizes the training (default 60)")
    rp.add_argument("--seeds", type=int, default=1, help="EgoSynth seeds, from synth.seed on (default 1)")
    rp.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train and sample (default cpu)")
    rp.add_argument("--config", help="a YAML config file (default: the tiny preset)")
    rp.add_argument("--actions", type=int, help="EgoSynth actions per seed (default: the config's synth.actions)")
    rp.add_argument("--test-pairs", type=int, default=96, help="test pairs evaluated per model (default 96)")
    rp.add_argument("--ldm-steps", type=int, help="training steps per model (default: sized from --minutes)")
    rp.add_argument("--jobs", type=int, default=1,
                    help="models trained at once, each in its own process with 1/jobs of the threads (default 1; "
                    "2 on a 2-core CPU: 1.27x faster for short runs, ~1.4x for long ones)")
    rp.add_argument("--no-baselines", dest="baselines", action="store_false",
                    help="skip the SDEdit and ProxNPI baselines (and their text-to-image model)")
    rp.add_argument("--control", action="store_true",
                    help="also train label, desc and lego on the same seed in the world without knowledge "
                    "(synth.knowledge: none), the control: 3 more models per seed")
    rp.add_argument("--curve", help="the data-efficiency curve: comma-separated numbers of training pairs (e.g. "
                    "250,500,1000) on which label and lego are trained again: 2 more models per number")
    rp.add_argument("--runs", help="comma-separated models to train, of label, desc, desc+img, desc+txt, lego, "
                    "lego-untuned (default all six; `label,desc,lego` is the headline at half the cost)")
    rp.add_argument("--clips", action="store_true",
                    help="also the action as a clip: lego extended with a progress input on timeline pairs for half "
                    "its steps, eval-timeline on the test actions, clips in the report (needs lego in --runs)")
    add_sampling_flags(rp)
    rp.add_argument("--draws", type=int, default=1, help="noise draws per test pair, each pair's metrics averaged "
                    "over them (`eval --draws`): narrower paired intervals under a stochastic sampler (default 1)")
    rp.set_defaults(func=cmd_reproduce)


def cmd_demo(a: argparse.Namespace) -> int:
    from ..demo import run_demo

    cfg = load_cfg(a)
    if a.actions is not None:
        positive(a.actions, "--actions")
        cfg.synth.actions = a.actions
    if a.minutes <= 0:
        raise CliError(f"--minutes must be positive, got {a.minutes}")
    if a.stills < 0:
        raise CliError(f"--stills must be 0 or more, got {a.stills}")
    if a.weights_dir is not None and not Path(a.weights_dir).is_dir():
        raise CliError(f"--weights-dir: {a.weights_dir} is not a folder")
    run_demo(cfg, writable_dir(Path(a.out), "--out"), minutes=a.minutes,
             weights_dir=Path(a.weights_dir) if a.weights_dir else None, baseline=a.baseline,
             follow_clock=not a.fixed_steps, stills=a.stills, clips=not a.no_clips)
    return 0


def cmd_reproduce(a: argparse.Namespace) -> int:
    from ..reproduce import run_reproduce, select_runs

    cfg = load_cfg(a)
    sampling = {**sampling_args(a), "draws": a.draws}
    for flag, v in (("--seeds", a.seeds), ("--draws", a.draws), ("--test-pairs", a.test_pairs), ("--ldm-steps", a.ldm_steps),
                    ("--actions", a.actions)):
        positive(v, flag)
    if a.minutes <= 0:
        raise CliError(f"--minutes must be positive, got {a.minutes}")
    if a.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device cuda: no CUDA device is visible to PyTorch")
    if a.actions:
        cfg.synth.actions = a.actions
    curve = _counts(a.curve) if a.curve else ()
    runs = [n.strip() for n in a.runs.split(",") if n.strip()] if a.runs else None
    try:
        select_runs(runs, a.clips)
    except ValueError as e:
        raise CliError(f"--runs: {e}") from None
    if a.control and cfg.synth.knowledge == "none":
        raise CliError("--control: this config's world is already the control (synth.knowledge: none)")
    s = run_reproduce(cfg, writable_dir(Path(a.out), "--out"), a.minutes, a.seeds, a.device, a.test_pairs,
                      a.ldm_steps, sampling, baselines=a.baselines, jobs=a.jobs, control=a.control, curve=curve,
                      runs=runs, clips=a.clips)
    for seed, r in s["seeds"].items():
        print(f"reproduce: seed {seed}: {r['report']}")
        for name, d in r["paired"].items():  # every comparison this run's models allow: lego − label, lego − desc …
            bits = [f"{_fmt(d[k])} on {k.split('/')[1]}" for k in ("action_all/all pairs", f"action_all/{r['subset']}")
                    if k in d]
            if bits:
                print(f"reproduce: seed {seed}: {name.replace('−', '-')} all correct {'; '.join(bits)} (points)")
        if "timeline" in r:
            print(f"reproduce: seed {seed}: clips, all correct by progress: " + ", ".join(
                f"p={b} {v * 100:.0f} % (held single frame {r['timeline']['hold'].get(b, float('nan')) * 100:.0f} %)"
                for b, v in r["timeline"]["progress"].items()))
    return 0


def _fmt(d: dict) -> str:
    return f"{d['mean'] * 100:+.1f} [{d['lo'] * 100:+.1f}, {d['hi'] * 100:+.1f}]"


def _counts(text: str) -> tuple[int, ...]:
    """--curve's comma-separated pair counts, each a positive integer."""
    try:
        counts = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise CliError(f"--curve: expected comma-separated numbers of training pairs, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise CliError(f"--curve: every number of training pairs must be at least 1, got {text!r}")
    return counts
