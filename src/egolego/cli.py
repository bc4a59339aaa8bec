"""The ``egolego`` command: one entry point, one small function per sub-command.

Bad arguments end with one line, ``egolego <command>: error: <what>``, and exit status 2 — never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded at run time


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


class CliError(Exception):
    """A user error reported as one line."""


def _writable_dir(path: Path, flag: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".egolego_write_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise CliError(f"{flag}: cannot write to {path}: {e.strerror or e}") from None
    return path


def _formats(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


# ----------------------------------------------------------------------------- sub-commands


def cmd_synth(a: argparse.Namespace) -> int:
    from .synth.dataset import DatasetExists, SynthArgs, generate

    args = SynthArgs(Path(a.out), a.actions, a.size, a.seed, _formats(a.format), a.workers, a.overwrite)
    try:
        args.validate()
    except ValueError as e:
        raise CliError(str(e)) from None
    _writable_dir(args.out, "--out")
    try:
        summary = generate(args, progress=not a.quiet)
    except DatasetExists as e:
        raise CliError(f"--out: {e}") from None
    print(f"egosynth: {summary['actions']} actions in {summary['videos']} videos, {summary['video_frames']} frames "
          f"({summary['frame_size'][0]}x{summary['frame_size'][1]}) in {summary['seconds']}s -> {args.out}")
    return 0


def cmd_tokenizer(a: argparse.Namespace) -> int:
    from .synth.dataset import load_truth
    from .tokenizer import corpus_from_truth, train_tokenizer

    if a.corpus:
        p = Path(a.corpus)
        if not p.is_file():
            raise CliError(f"--corpus: {p} is not a file")
        texts = p.read_text().splitlines()
    else:
        if not (Path(a.truth) / "truth.jsonl").is_file():
            raise CliError(f"--truth: {a.truth} holds no truth.jsonl (an EgoSynth dataset folder is expected)")
        texts = corpus_from_truth(load_truth(Path(a.truth)))
    if a.vocab_size < 300:
        raise CliError(f"--vocab-size must be at least 300 (256 bytes + specials), got {a.vocab_size}")
    tok = train_tokenizer(texts, _writable_dir(Path(a.out), "--out"), a.vocab_size, a.max_length)
    print(f"tokenizer: vocab {len(tok)}, model_max_length {tok.model_max_length} -> {a.out}")
    return 0


def cmd_config(a: argparse.Namespace) -> int:
    from . import config

    try:
        cfg = config.load(a.file) if a.file else config.preset(a.preset)
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    import yaml

    print(yaml.safe_dump(config.to_dict(cfg), sort_keys=False), end="")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from . import config
    from .demo import run_demo

    try:
        cfg = config.load(a.config) if a.config else config.preset("tiny")
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    if a.actions is not None:
        if a.actions <= 0:
            raise CliError(f"--actions must be a positive integer, got {a.actions}")
        cfg.synth.actions = a.actions
    run_demo(cfg, _writable_dir(Path(a.out), "--out"))
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="egolego", description="LEGO: egocentric action frame generation (data, training, "
                      "inference, evaluation). Every sub-command has --help.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    s = sub.add_parser("synth", help="generate an EgoSynth dataset in the Ego4D / EPIC-KITCHENS formats",
                       description="Render procedural egocentric actions and write them as EPIC-KITCHENS-100 "
                       "(+VISOR) and Ego4D FHO files with videos, frames and exact ground truth (truth.jsonl).")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--actions", type=int, default=300, help="number of actions (default 300)")
    s.add_argument("--size", type=int, default=64, help="frame height in px, a multiple of 8 (default 64)")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed = identical files)")
    s.add_argument("--format", default="epic,ego4d", help="comma-separated: epic, ego4d (default both)")
    s.add_argument("--workers", type=int, default=1, help="rendering processes (default 1)")
    s.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_synth)

    t = sub.add_parser("tokenizer", help="train the byte-level BPE tokenizer used by the tiny preset",
                       description="Train a byte-level BPE tokenizer and save it as a PreTrainedTokenizerFast folder.")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--truth", help="an EgoSynth folder: train on its labels and descriptions")
    src.add_argument("--corpus", help="a text file, one text per line")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--vocab-size", type=int, default=512)
    t.add_argument("--max-length", type=int, default=77, help="model_max_length (default 77)")
    t.set_defaults(func=cmd_tokenizer)

    c = sub.add_parser("config", help="print a preset or a config file, resolved",
                       description="Print the full configuration of a preset (or of a YAML file) as YAML.")
    c.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    c.add_argument("--file", help="a YAML config file (its preset is the base)")
    c.set_defaults(func=cmd_config)

    d = sub.add_parser("demo", help="run the whole pipeline on the embedded default (EgoSynth, tiny, CPU)",
                       description="Run every stage that exists on EgoSynth with the tiny preset; reruns reuse "
                       "finished stages.")
    d.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    d.add_argument("--config", help="a YAML config file (default: the tiny preset)")
    d.add_argument("--actions", type=int, help="override the number of EgoSynth actions")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return a.func(a)
    except CliError as e:
        print(f"egolego {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"egolego {a.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
