"""The ``egolego`` command: the parser, built from one small function per sub-command, and ``main``.

One module per command group, each holding its parser functions and its ``cmd_*`` functions side by side::

    synth.py        synth, tokenizer, pairs from-egosynth
    data.py         data build|export|merge, curate
    vllm.py         vllm data|tune|enrich
    ldm.py          vae train, train, generate
    eval.py         eval, report
    app.py          serve, study
    demo.py         demo, reproduce
    show_config.py  config
    common.py       CliError, path and number checks, --config/--preset, the sampling flags
    bounds.py       bounds on every number of a command line or a config, checked before any work

Bad arguments end with one line, ``egolego <command>: error: <what>``, and exit status 2 — never a
traceback. Library errors that name their argument (``errors.InputError``) name the flag in that line.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import InputError
from .app import serve_parser, study_parser
from .bounds import check_args
from .common import CliError
from .data import curate_parser, data_parser
from .demo import demo_parser, reproduce_parser
from .eval import eval_parser, report_parser, timeline_parser
from .imports import import_parser
from .ldm import generate_parser, mask_parser, train_parser, vae_parser
from .show_config import config_parser
from .synth import pairs_parser, synth_parser, tokenizer_parser
from .vllm import vllm_parser

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded at run time

# the sub-commands, in the order --help lists them
PARSERS = (synth_parser, tokenizer_parser, config_parser, vae_parser, train_parser, mask_parser, generate_parser, vllm_parser,
           data_parser, curate_parser, pairs_parser, demo_parser, reproduce_parser, eval_parser, timeline_parser,
           report_parser, serve_parser, study_parser, import_parser)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="egolego", description="LEGO: egocentric action frame generation (data, training, "
                      "inference, evaluation). Every sub-command has --help.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for add in PARSERS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    bad = check_args(a.command, a)
    if bad:
        print(f"egolego {a.command}: error: {bad}", file=sys.stderr)
        return 2
    try:
        return a.func(a)
    except (CliError, InputError) as e:
        msg = e.with_flag() if isinstance(e, InputError) else str(e)
        print(f"egolego {a.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"egolego {a.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
