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


def _out_file(path: str, flag: str, suffixes: tuple[str, ...] = ()) -> Path:
    """A file to be written: not a folder, in a writable folder, with one of ``suffixes`` when given."""
    from .atomic import check_out_file

    if suffixes and Path(path).suffix.lower() not in suffixes:
        raise CliError(f"{flag}: {path} must end in {' or '.join(suffixes)}")
    try:
        return check_out_file(path, flag)
    except ValueError as e:
        raise CliError(str(e)) from None


def _existing(path: str | None, flag: str, what: str = "folder") -> None:
    """A path the user named must exist (a folder, or a file) before any work starts."""
    p = Path(path) if path is not None else None
    ok = p is None or {"folder": p.is_dir, "file": p.is_file}.get(what, p.exists)()
    if not ok:
        raise CliError(f"{flag}: {path} is not a {what}" if what in ("folder", "file") else f"{flag}: {path} does not exist")


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

    if a.vocab_size < 300:
        raise CliError(f"--vocab-size must be at least 300 (256 bytes + specials), got {a.vocab_size}")
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
        out = _writable_dir(Path(a.out), "--out")
        tok = train_tokenizer(texts, out, a.vocab_size, a.max_length)
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # not UTF-8, not JSON lines, an empty corpus
        flag = "--corpus" if a.corpus else "--truth"
        raise CliError(f"{flag}: {a.corpus or a.truth}: {' '.join(str(e).split())[:200] or type(e).__name__}") from None
    print(f"tokenizer: vocab {len(tok)}, model_max_length {tok.model_max_length} -> {a.out}")
    return 0


def cmd_config(a: argparse.Namespace) -> int:
    import yaml

    from . import config
    from .cli_checks import check_config

    try:
        cfg = config.load(a.file) if a.file else config.preset(a.preset)
    except (ValueError, FileNotFoundError, yaml.YAMLError) as e:
        raise CliError(f"--file: {' '.join(str(e).split())[:300]}") from None
    bad = check_config(cfg, "config")
    if bad:
        raise CliError(f"--file: {bad}")

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
             weights_dir=Path(a.weights_dir) if a.weights_dir else None, baseline=a.baseline)
    return 0


def cmd_reproduce(a: argparse.Namespace) -> int:
    from .reproduce import run_reproduce

    cfg = _load_cfg(a)
    sampling = sampling_args(a)
    for flag, v in (("--seeds", a.seeds), ("--test-pairs", a.test_pairs), ("--ldm-steps", a.ldm_steps),
                    ("--actions", a.actions)):
        _positive(v, flag)
    if a.minutes <= 0:
        raise CliError(f"--minutes must be positive, got {a.minutes}")
    if a.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device cuda: no CUDA device is visible to PyTorch")
    if a.actions:
        cfg.synth.actions = a.actions
    s = run_reproduce(cfg, _writable_dir(Path(a.out), "--out"), a.minutes, a.seeds, a.device, a.test_pairs,
                      a.ldm_steps, sampling)
    for seed, r in s["seeds"].items():
        d = r["paired"].get("action_all/twin scenes")
        twin = f"; lego - label on {r['twins']} twin scenes: {d['mean'] * 100:+.1f} [{d['lo'] * 100:+.1f}, " \
               f"{d['hi'] * 100:+.1f}] points" if d else ""
        print(f"reproduce: seed {seed}: {r['report']}{twin}")
    return 0


def _load_cfg(a: argparse.Namespace):
    import yaml

    from . import config
    from .cli_checks import check_config

    try:
        cfg = config.load(a.config) if getattr(a, "config", None) else config.preset(getattr(a, "preset", None) or "tiny")
    except (ValueError, FileNotFoundError, yaml.YAMLError) as e:
        raise CliError(f"--config: {' '.join(str(e).split())[:300]}") from None
    bad = check_config(cfg, "config")
    if bad:
        raise CliError(f"--config: {bad}")
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
    if a.conditioning and a.conditioning not in (*MODES, "t2i"):
        raise CliError(f"--conditioning must be one of {', '.join(MODES)}, t2i; got {a.conditioning!r}")
    for key, value in (("conditioning", a.conditioning), ("max_steps", a.max_steps), ("batch_size", a.batch_size),
                       ("vae", a.vae), ("base", a.base), ("tokenizer", a.tokenizer), ("seed", a.seed)):
        if value is not None:
            setattr(c, key, value)
    for flag, path in (("--pairs", a.pairs), ("--embeddings", a.embeddings), ("--vae", a.vae), ("--base", a.base),
                       ("--tokenizer", a.tokenizer)):
        _existing(path, flag, "path")  # --pairs may name the folder or its pairs.parquet
    from .ldm.train import Trainer

    if c.conditioning == "t2i":  # the text-to-image model of the SDEdit / ProxNPI baselines
        from .baselines.t2i import TextToImageTrainer as Trainer
    try:
        trainer = Trainer(cfg, a.pairs, a.embeddings, _writable_dir(Path(a.out), "--out"))
        r = trainer.run(resume=a.resume)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    last = r["losses"][-1] if r["losses"] else float("nan")
    print(f"train: {c.conditioning}, steps {r['start']}->{r['end']}, last loss {last:.4f} -> {Path(a.out) / 'model'}")
    return 0


def add_sampling_flags(p: argparse.ArgumentParser) -> None:
    """--steps, --scheduler and both guidance scales; each defaults to the model's own setting (lego_config.yaml)."""
    from .ldm.pipeline import SCHEDULERS

    p.add_argument("--steps", type=int, help="denoising steps (default: the model's ldm.steps; paper preset 100)")
    p.add_argument("--scheduler", choices=list(SCHEDULERS),
                   help="sampler (default: the model's ldm.scheduler; paper preset euler_a, tiny flow_euler)")
    p.add_argument("--condition-guidance", type=float,
                   help="s_c, guidance on the condition C (default: the model's; paper preset 7.5)")
    p.add_argument("--image-guidance", type=float,
                   help="s_x, guidance on the input image (default: the model's; paper preset 1.5)")


def sampling_args(a: argparse.Namespace) -> dict:
    """The sampling flags as overrides (None: keep the model's)."""
    _positive(a.steps, "--steps")
    for flag, v in (("--condition-guidance", a.condition_guidance), ("--image-guidance", a.image_guidance)):
        if v is not None and not (0 <= v < 1e4):
            raise CliError(f"{flag} must be a finite number >= 0, got {v}")
    return {"steps": a.steps, "scheduler": a.scheduler, "condition_guidance": a.condition_guidance,
            "image_guidance": a.image_guidance}


def cmd_generate(a: argparse.Namespace) -> int:
    from .ldm.generate import generate_one

    sampling = sampling_args(a)
    out = _out_file(a.out, "--out", (".png", ".jpg", ".jpeg", ".webp"))
    try:
        img, prompt = generate_one(a.model, a.image, a.action, a.description, seed=a.seed, **sampling)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    try:
        img.save(out)
    except OSError as e:
        raise CliError(f"--out: cannot write {out}: {e.strerror or e}") from None
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
    except (KeyError, TypeError, AttributeError, OSError) as e:  # a truth.jsonl of another shape, missing frames
        raise CliError(f"--egosynth: {a.egosynth} is not a complete EgoSynth dataset ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:150]})") from None
    print(f"pairs: {f}")
    return 0


def cmd_vllm_data(a: argparse.Namespace) -> int:
    from .data.manifest import read_manifest
    from .vllm.conversation import records_from_manifest, write_json

    _out_file(a.out, "--out")
    try:
        recs = records_from_manifest(read_manifest(a.pairs), seed=a.seed)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    if not recs:
        raise CliError(f"--pairs: no training pair of {a.pairs} has a description (run `egolego curate` first)")
    write_json(recs, _out_file(a.out, "--out"))
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
    for flag, path in (("--images", a.images), ("--model", a.model), ("--tokenizer", a.tokenizer)):
        _existing(path, flag)
    _existing(a.data, "--data", "file")
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
    if not 0 <= index < shards:
        raise CliError(f"--shard-index must be in [0, {shards}), got {index}")
    _writable_dir(Path(a.out), "--out")
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
                     a.shard_index, a.overwrite)
    try:
        args.validate()
        _writable_dir(Path(a.out), "--out")
        s = build(args)
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(s["dropped"].items())) or "none"
    warned = "".join(f"; {v} x {k}" for k, v in sorted(s.get("warnings", {}).items()))
    print(f"data build: {s['kept']} pairs kept ({s['train']} train / {s['test']} test) of {s['rows_parsed']} "
          f"annotated actions; dropped: {dropped}{warned} -> {a.out}")
    return 0


def cmd_data_export(a: argparse.Namespace) -> int:
    from .data.export import export_ip2p, export_lego

    _writable_dir(Path(a.out), "--out")
    try:
        files = export_lego(a.pairs, a.out) if a.format == "lego" else export_ip2p(a.pairs, a.out, a.prompt)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    print(f"data export: {', '.join(str(f) for f in files)}")
    return 0


def cmd_data_merge(a: argparse.Namespace) -> int:
    from .data.manifest import merge_manifests

    try:
        f, n = merge_manifests(a.shards, _writable_dir(Path(a.out), "--out"), a.overwrite)
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


