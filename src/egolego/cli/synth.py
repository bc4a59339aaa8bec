"""``egolego synth``, ``egolego tokenizer`` and ``egolego pairs from-egosynth``: EgoSynth and what is made from it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import preset
from .common import CliError, add_config_flags, fail, load_cfg, positive, writable_dir


def synth_parser(sub) -> None:
    d = preset("tiny").synth
    s = sub.add_parser("synth", help="generate an EgoSynth dataset in the Ego4D / EPIC-KITCHENS formats",
                       description="Render procedural egocentric actions and write them as EPIC-KITCHENS-100 "
                       "(+VISOR) and Ego4D FHO files with videos, frames and exact ground truth (truth.jsonl). "
                       "Every setting defaults to the config's synth.* (--config / --preset, default tiny).")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--actions", type=int, help=f"number of actions (default: synth.actions, tiny {d.actions})")
    s.add_argument("--size", type=int, help=f"frame height in px, a multiple of 8 (default: synth.size, tiny {d.size})")
    s.add_argument("--seed", type=int, help=f"random seed, same seed = identical files (default: synth.seed, {d.seed})")
    s.add_argument("--format", help=f"comma-separated: epic, ego4d (default: synth.formats, {','.join(d.formats)})")
    s.add_argument("--workers", type=int, help=f"rendering processes (default: synth.workers, tiny {d.workers})")
    s.add_argument("--actions-per-scene", type=int, help="up to this many different actions on one scene, so the "
                   f"before-frame alone cannot tell them apart (default: synth.actions_per_scene, tiny "
                   f"{d.actions_per_scene})")
    s.add_argument("--knowledge", choices=("rules", "none"), help="the world: rules (a visible state decides which of "
                   "two or three look-alike objects an action is for, by a rule a person knows) or none (look-alikes "
                   f"differ only by a random colour: the control) (default: synth.knowledge, {d.knowledge})")
    s.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(s)
    s.set_defaults(func=cmd_synth)


def tokenizer_parser(sub) -> None:
    d = preset("tiny").tokenizer
    t = sub.add_parser("tokenizer", help="train the byte-level BPE tokenizer used by the tiny preset",
                       description="Train a byte-level BPE tokenizer and save it as a PreTrainedTokenizerFast folder.")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--truth", help="an EgoSynth folder: train on its labels and descriptions")
    src.add_argument("--corpus", help="a text file, one text per line")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--vocab-size", type=int, help=f"vocabulary size, at least 300 (default: tokenizer.vocab_size, "
                   f"{d.vocab_size})")
    t.add_argument("--max-length", type=int, help=f"model_max_length (default: tokenizer.model_max_length, "
                   f"{d.model_max_length})")
    add_config_flags(t)
    t.set_defaults(func=cmd_tokenizer)


def pairs_parser(sub) -> None:
    pr = sub.add_parser("pairs", help="pairs manifests", description="Pairs-manifest helpers.")
    psub = pr.add_subparsers(dest="pairs_command", required=True, parser_class=type(pr))
    pe = psub.add_parser("from-egosynth", help="oracle pairs straight from EgoSynth's truth",
                         description="Write a pairs manifest from EgoSynth's truth (its EPIC frames as they are, the "
                         "exact descriptions). `egolego data build` is the real path.")
    pe.add_argument("--egosynth", required=True, help="an EgoSynth folder (`egolego synth --format epic` output)")
    pe.add_argument("--out", required=True, help="the manifest folder to write")
    pe.add_argument("--size", type=int, help="side of the square input/target frames (default: image_size of "
                    f"--config / --preset, tiny {preset('tiny').image_size})")
    pe.add_argument("--no-description", action="store_true", help="leave the description column empty")
    add_config_flags(pe)
    pe.set_defaults(func=cmd_pairs_egosynth)


def _formats(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def cmd_synth(a: argparse.Namespace) -> int:
    from ..synth.dataset import DatasetExists, SynthArgs, generate

    c = load_cfg(a).synth
    args = SynthArgs(out=Path(a.out), actions=c.actions if a.actions is None else a.actions,
                     size=c.size if a.size is None else a.size, seed=c.seed if a.seed is None else a.seed,
                     formats=_formats(a.format) if a.format is not None else tuple(c.formats),
                     workers=c.workers if a.workers is None else a.workers,
                     actions_per_scene=c.actions_per_scene if a.actions_per_scene is None else a.actions_per_scene,
                     knowledge=c.knowledge if a.knowledge is None else a.knowledge, overwrite=a.overwrite)
    try:
        args.validate()
    except ValueError as e:
        raise fail(e) from None
    writable_dir(args.out, "--out")
    try:
        summary = generate(args, progress=not a.quiet)
    except DatasetExists as e:
        raise CliError(f"--out: {e}") from None
    print(f"egosynth: {summary['actions']} actions in {summary['videos']} videos, {summary['video_frames']} frames "
          f"({summary['frame_size'][0]}x{summary['frame_size'][1]}) in {summary['seconds']}s -> {args.out}")
    return 0


def cmd_tokenizer(a: argparse.Namespace) -> int:
    from ..synth.dataset import load_truth
    from ..tokenizer import corpus_from_truth, train_tokenizer

    c = load_cfg(a).tokenizer
    vocab_size = c.vocab_size if a.vocab_size is None else a.vocab_size
    max_length = c.model_max_length if a.max_length is None else a.max_length
    if vocab_size < 300:
        raise CliError(f"--vocab-size must be at least 300 (256 bytes + specials), got {vocab_size}")
    try:
        if a.corpus:
            p = Path(a.corpus)
            if not p.is_file():
                raise CliError(f"--corpus: {p} is not a file")
            texts = p.read_text(encoding="utf-8").splitlines()
        else:
            if not (Path(a.truth) / "truth.jsonl").is_file():
                raise CliError(f"--truth: {a.truth} holds no truth.jsonl (an EgoSynth dataset folder is expected)")
            texts = corpus_from_truth(load_truth(Path(a.truth)))
        out = writable_dir(Path(a.out), "--out")
        tok = train_tokenizer(texts, out, vocab_size, max_length, c.min_frequency)
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # not UTF-8, not JSON lines, an empty corpus
        flag = "--corpus" if a.corpus else "--truth"
        raise CliError(f"{flag}: {a.corpus or a.truth}: {' '.join(str(e).split())[:200] or type(e).__name__}") from None
    print(f"tokenizer: vocab {len(tok)}, model_max_length {tok.model_max_length} -> {a.out}")
    return 0


def cmd_pairs_egosynth(a: argparse.Namespace) -> int:
    from ..synth.pairs import pairs_from_egosynth

    if not (Path(a.egosynth) / "truth.jsonl").is_file():
        raise CliError(f"--egosynth: {a.egosynth} is not an EgoSynth folder (no truth.jsonl)")
    positive(a.size, "--size")
    size = load_cfg(a).image_size if a.size is None else a.size
    try:
        f = pairs_from_egosynth(a.egosynth, writable_dir(Path(a.out), "--out"), size, not a.no_description, True)
    except ValueError as e:
        raise fail(e) from None
    except (KeyError, TypeError, AttributeError, OSError) as e:  # a truth.jsonl of another shape, missing frames
        raise CliError(f"--egosynth: {a.egosynth} is not a complete EgoSynth dataset ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:150]})") from None
    print(f"pairs: {f}")
    return 0
