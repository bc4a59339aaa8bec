"""The sub-commands of ``egolego``: thin functions that check arguments, call the library, print one line.

User errors raise ``CliError``; ``cli.main`` prints them as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


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
    from .demo import run_demo

    cfg = _load_cfg(a)
    if a.actions is not None:
        if a.actions <= 0:
            raise CliError(f"--actions must be a positive integer, got {a.actions}")
        cfg.synth.actions = a.actions
    if a.minutes <= 0:
        raise CliError(f"--minutes must be positive, got {a.minutes}")
    if a.weights_dir is not None and not Path(a.weights_dir).is_dir():
        raise CliError(f"--weights-dir: {a.weights_dir} is not a folder")
    run_demo(cfg, _writable_dir(Path(a.out), "--out"), minutes=a.minutes,
             weights_dir=Path(a.weights_dir) if a.weights_dir else None)
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


def cmd_vllm_data(a: argparse.Namespace) -> int:
    from .data.manifest import read_manifest
    from .vllm.conversation import records_from_manifest, write_json

    try:
        recs = records_from_manifest(read_manifest(a.pairs), seed=a.seed)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    if not recs:
        raise CliError(f"--pairs: no training pair of {a.pairs} has a description (run `egolego curate` first)")
    write_json(recs, a.out)
    print(f"vllm data: {len(recs)} conversations -> {a.out}")
    return 0


def cmd_vllm_tune(a: argparse.Namespace) -> int:
    from .vllm.tune import VllmTuner

    cfg = _load_cfg(a)
    v = cfg.vllm
    _positive(a.epochs, "--epochs")
    for key, value in (("epochs", a.epochs), ("model", a.model), ("tokenizer", a.tokenizer)):
        if value is not None:
            setattr(v, key, value)
    v.lora = v.lora or a.lora
    try:
        r = VllmTuner(cfg, a.data, a.images, _writable_dir(Path(a.out), "--out")).run(resume=a.resume)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    last = r["losses"][-1] if r["losses"] else float("nan")
    print(f"vllm tune: steps {r['start']}->{r['end']}, last loss {last:.4f}, {len(r['skipped_images'])} unreadable "
          f"images skipped -> {Path(a.out) / 'model'}")
    return 0


def cmd_vllm_enrich(a: argparse.Namespace) -> int:
    from .vllm.enrich import enrich

    _positive(a.batch_size, "--batch-size")
    _positive(a.num_shards, "--num-shards")
    _positive(a.max_new_tokens, "--max-new-tokens")
    settings = _load_cfg(a).vllm if (a.config or a.preset) else None  # else: the config the model was tuned with
    shards, index = a.num_shards, a.shard_index
    if shards == 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # accelerate launch / torchrun
        shards, index = int(os.environ["WORLD_SIZE"]), int(os.environ.get("RANK", "0"))
    if not (Path(a.model) / "config.json").is_file():
        raise CliError(f"--model: {a.model} is not a tuned VLLM folder (no config.json)")
    try:
        s = enrich(a.model, a.pairs, a.out, a.batch_size, shards, index, max_new_tokens=a.max_new_tokens,
                   sample=a.sample, seed=a.seed, dtype=a.dtype, settings=settings)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    print(f"vllm enrich: {s['done']} pairs done, {s['skipped']} skipped" + (f" (see {s['report']})" if s["report"] else "")
          + f", store holds {s['stored']} pairs at {s['bytes_per_pair'] / 1024:.1f} KiB/pair -> {a.out}")
    return 0


def cmd_data_build(a: argparse.Namespace) -> int:
    from .data.build import BuildArgs, build

    args = BuildArgs(a.source, Path(a.root), Path(a.out), a.frames_from, a.quality, a.quality_weights, a.similarity,
                     a.clip_weights, tuple(a.sim_range) if a.sim_range else None, a.size, a.workers, a.num_shards,
                     a.shard_index)
    try:
        args.validate()
        _writable_dir(Path(a.out), "--out")
        s = build(args)
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(s["dropped"].items())) or "none"
    print(f"data build: {s['kept']} pairs kept ({s['train']} train / {s['test']} test) of {s['rows_parsed']} "
          f"annotated actions; dropped: {dropped} -> {a.out}")
    return 0


def cmd_data_export(a: argparse.Namespace) -> int:
    from .data.export import export_ip2p, export_lego

    try:
        files = export_lego(a.pairs, a.out) if a.format == "lego" else export_ip2p(a.pairs, a.out, a.prompt)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    print(f"data export: {', '.join(str(f) for f in files)}")
    return 0


def cmd_data_merge(a: argparse.Namespace) -> int:
    from .data.manifest import merge_manifests

    try:
        f, n = merge_manifests(a.shards, _writable_dir(Path(a.out), "--out"))
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    print(f"data merge: {n} pairs from {len(a.shards)} manifests -> {f}")
    return 0


def cmd_curate(a: argparse.Namespace) -> int:
    from .curate.run import curate

    _positive(a.concurrency, "--concurrency")
    try:
        s = curate(a.pairs, a.out, a.backend, a.examples, a.base_url, a.model, a.concurrency)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise CliError(str(e)) from None
    extra = (f", {s['calls']} API calls ({s['cached']} cached, {s['retries']} retries), {s['prompt_tokens']}+"
             f"{s['completion_tokens']} tokens, ~${s['cost_usd']}") if "calls" in s else ""
    print(f"curate: {s['pairs']} descriptions ({a.backend}){extra}; {s['tuning_records']} tuning records -> {a.out}")
    return 0


