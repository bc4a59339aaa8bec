"""``egolego serve`` and ``egolego study``: the web app and the user study (paper D.5, Fig. 10)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..vllm.memory import PRECISIONS
from .common import CliError, fail


def _net(p: argparse.ArgumentParser) -> None:
    from ..app.launch import LOOPBACK

    p.add_argument("--host", default=LOOPBACK, help="address to bind (default 127.0.0.1: this machine only; "
                   "0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on (default %(default)s)")


def serve_parser(sub) -> None:
    s = sub.add_parser("serve", help="web app: generate action frames, compare eval runs",
                       description="A Gradio app on this machine: Generate (upload or pick a frame, type an action, "
                       "edit the VLLM's description, sample) and Compare (eval runs side by side with per-pair metrics).")
    s.add_argument("--model", default="runs/demo/ldm_lego/model", help="a LEGO model folder (default: the demo's)")
    s.add_argument("--baseline", help="a `label` model folder shown beside it (optional)")
    s.add_argument("--runs", nargs="*", default=[], help="eval folders for the Compare tab")
    s.add_argument("--pairs", help="pairs manifest whose test pairs can be picked (default: the runs')")
    s.add_argument("--vllm-precision", choices=PRECISIONS, default="auto",
                   help="how the model's VLLM is held (as `generate --vllm-precision`; default %(default)s)")
    _net(s)
    s.set_defaults(func=cmd_serve)


def study_parser(sub) -> None:
    st = sub.add_parser("study", help="web app: the paper's user study, votes in SQLite",
                        description="Fig. 10 (methods: pick the best of the shuffled outputs of the eval runs) or "
                        "Fig. 6 (descriptions: does the VLLM's description match the frames). One row per vote.")
    st.add_argument("--runs", nargs="+", required=True, help="eval folders (one per method)")
    st.add_argument("--db", required=True, help="the SQLite votes file (created if missing; share it between servers)")
    st.add_argument("--mode", default="methods", choices=["methods", "descriptions"],
                    help="methods: pick the best output (Fig. 10); descriptions: rate the VLLM's text (Fig. 6)")
    st.add_argument("--seed", type=int, default=0, help="seeds each rater's pair order")
    _net(st)
    st.set_defaults(func=cmd_study)


def _port(a) -> None:
    if not 0 < a.port < 65536:
        raise CliError(f"--port must be 1-65535, got {a.port}")


def cmd_serve(a: argparse.Namespace) -> int:
    from ..app.engine import Engine
    from ..app.launch import launch
    from ..app.runs import load_runs
    from ..app.serve import build_serve, default_pairs

    _port(a)
    try:
        runs = load_runs(a.runs) if a.runs else None
        pairs = default_pairs(runs, a.pairs)
        engine = Engine(a.model, a.vllm_precision)
        baseline = Engine(a.baseline) if a.baseline else None
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise fail(e) from None
    if baseline is not None and baseline.mode != "label":
        raise CliError(f"--baseline: {a.baseline} is a {baseline.mode!r} model; the baseline is a `label` model")
    launch(build_serve(engine, baseline, pairs, runs), a.host, a.port)
    return 0


def cmd_study(a: argparse.Namespace) -> int:
    from ..app.launch import launch
    from ..app.runs import load_runs
    from ..app.study import Study, build_study

    _port(a)
    if Path(a.db).is_dir():
        raise CliError(f"--db: {a.db} is a folder; give a file name, e.g. votes.sqlite")
    try:
        study = Study(load_runs(a.runs), a.db, a.mode, a.seed)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise fail(e) from None
    print(f"study: {a.mode}, {len(study.runs.pairs.ids)} pairs, methods {', '.join(study.runs.names)}; votes -> {a.db}")
    launch(build_study(study), a.host, a.port)
    return 0
