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


def _load_cfg(a: argparse.Namespace):
    from . import config

    try:
        cfg = config.load(a.config) if getattr(a, "config", None) else config.preset(getattr(a, "preset", None) or "tiny")
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    if getattr(a, "config", None) and getattr(a, "preset", None) and a.preset != cfg.preset:
        raise CliError(f"--preset {a.preset} contradicts the config file's preset {cfg.preset}")
    return cfg


def _positive(value: int | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise CliError(f"{flag} must be a positive integer, got {value}")


def cmd_vae_train(a: argparse.Namespace) -> int:
    from .ldm.vae_train import train_vae

    cfg = _load_cfg(a)
    _positive(a.steps, "--steps")
    if a.steps:
        cfg.vae.steps = a.steps
    try:
        q = train_vae(cfg, a.images, _writable_dir(Path(a.out), "--out"))
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    print(f"vae: held-out reconstruction PSNR {q['psnr_heldout_db']} dB ({q['heldout_images']} images), "
          f"{q['steps']} steps in {q['seconds']}s -> {a.out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .ldm.conditioner import MODES

    cfg = _load_cfg(a)
    c = cfg.ldm
    for flag, value in (("--max-steps", a.max_steps), ("--batch-size", a.batch_size)):
        _positive(value, flag)
    if a.conditioning and a.conditioning not in MODES:
        raise CliError(f"--conditioning must be one of {', '.join(MODES)}, got {a.conditioning!r}")
    for key, value in (("conditioning", a.conditioning), ("max_steps", a.max_steps), ("batch_size", a.batch_size),
                       ("vae", a.vae), ("base", a.base), ("tokenizer", a.tokenizer), ("seed", a.seed)):
        if value is not None:
            setattr(c, key, value)
    from .ldm.train import Trainer

    try:
        trainer = Trainer(cfg, a.pairs, a.embeddings, _writable_dir(Path(a.out), "--out"))
        r = trainer.run(resume=a.resume)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    last = r["losses"][-1] if r["losses"] else float("nan")
    print(f"train: {c.conditioning}, steps {r['start']}->{r['end']}, last loss {last:.4f} -> {Path(a.out) / 'model'}")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from .ldm.generate import generate_one

    _positive(a.steps, "--steps")
    out = Path(a.out)
    _writable_dir(out.parent if str(out.parent) else Path("."), "--out")
    try:
        img, prompt = generate_one(a.model, a.image, a.action, a.description, a.steps, a.seed, scheduler=a.scheduler)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    img.save(out)
    print(f"generate: \"{prompt}\" -> {out}")
    return 0


def cmd_pairs_egosynth(a: argparse.Namespace) -> int:
    from .data.manifest import pairs_from_egosynth

    if not (Path(a.egosynth) / "truth.jsonl").is_file():
        raise CliError(f"--egosynth: {a.egosynth} is not an EgoSynth folder (no truth.jsonl)")
    _positive(a.size, "--size")
    try:
        f = pairs_from_egosynth(a.egosynth, _writable_dir(Path(a.out), "--out"), a.size, not a.no_description, True)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(f"pairs: {f}")
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

    v = sub.add_parser("vae", help="the tiny preset's autoencoder", description="Autoencoder commands.")
    vsub = v.add_subparsers(dest="vae_command", required=True, parser_class=OneLineParser)
    vt = vsub.add_parser("train", help="train the tiny AutoencoderKL on frames; reports held-out PSNR",
                         description="Train the tiny preset's AutoencoderKL (a random one cannot reconstruct images).")
    vt.add_argument("--images", required=True, help="a folder of JPEG/PNG frames or a pairs manifest folder")
    vt.add_argument("--out", required=True, help="output folder (diffusers AutoencoderKL + quality.json)")
    vt.add_argument("--steps", type=int, help="training steps (default from the config: 600)")
    vt.add_argument("--config", help="a YAML config file")
    vt.set_defaults(func=cmd_vae_train)

    tr = sub.add_parser("train", help="train the LEGO diffusion model (accelerate: CPU, GPUs, nodes)",
                        description="Train the UNet and the conditioner (σ, μ, π) on a pairs manifest + embedding "
                        "store. Multi-GPU: accelerate launch -m egolego.cli train ...")
    tr.add_argument("--pairs", required=True, help="pairs manifest folder")
    tr.add_argument("--embeddings", help="embedding store (needed by desc+img, desc+txt, lego)")
    tr.add_argument("--preset", choices=["tiny", "paper"], help="default tiny (or the config file's)")
    tr.add_argument("--conditioning", help="label | desc | desc+img | desc+txt | lego (default lego)")
    tr.add_argument("--out", required=True, help="run folder: checkpoints/, train_log.jsonl, model/")
    tr.add_argument("--max-steps", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    tr.add_argument("--config", help="a YAML config file")
    tr.add_argument("--vae", help="tiny: autoencoder folder from `egolego vae train`")
    tr.add_argument("--base", help="paper: local SD-1.5 or InstructPix2Pix diffusers folder")
    tr.add_argument("--tokenizer", help="tiny: tokenizer folder (default: trained on the manifest's texts)")
    tr.add_argument("--seed", type=int)
    tr.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate the action frame for one image",
                       description="Generate the egocentric action frame for an image and an action.")
    g.add_argument("--model", required=True, help="a LEGO model folder (<train out>/model)")
    g.add_argument("--image", required=True)
    g.add_argument("--action", required=True, help='the action, e.g. "open drawer"')
    g.add_argument("--out", required=True, help="output PNG")
    g.add_argument("--description", help="the detailed description (modes without a VLLM)")
    g.add_argument("--steps", type=int, default=100)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--scheduler", default="euler_a", choices=["euler_a", "ddim", "dpm++"])
    g.set_defaults(func=cmd_generate)

    pr = sub.add_parser("pairs", help="pairs manifests", description="Pairs-manifest helpers.")
    psub = pr.add_subparsers(dest="pairs_command", required=True, parser_class=OneLineParser)
    pe = psub.add_parser("from-egosynth", help="oracle pairs straight from EgoSynth's truth",
                         description="Write a pairs manifest from EgoSynth's truth (its EPIC frames as they are, the "
                         "exact descriptions). `egolego data build` is the real path.")
    pe.add_argument("--egosynth", required=True)
    pe.add_argument("--out", required=True)
    pe.add_argument("--size", type=int, default=64)
    pe.add_argument("--no-description", action="store_true", help="leave the description column empty")
    pe.set_defaults(func=cmd_pairs_egosynth)

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
