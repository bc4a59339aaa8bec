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
    if a.minutes <= 0:
        raise CliError(f"--minutes must be positive, got {a.minutes}")
    run_demo(cfg, _writable_dir(Path(a.out), "--out"), minutes=a.minutes)
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
    shards, index = a.num_shards, a.shard_index
    if shards == 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # accelerate launch / torchrun
        shards, index = int(os.environ["WORLD_SIZE"]), int(os.environ.get("RANK", "0"))
    if not (Path(a.model) / "config.json").is_file():
        raise CliError(f"--model: {a.model} is not a tuned VLLM folder (no config.json)")
    try:
        s = enrich(a.model, a.pairs, a.out, a.batch_size, shards, index, max_new_tokens=a.max_new_tokens,
                   sample=a.sample, seed=a.seed, dtype=a.dtype)
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
    g.add_argument("--model", default="runs/demo/ldm_lego/model",
                   help="a LEGO model folder (<train out>/model; default: the demo's lego model)")
    g.add_argument("--image", required=True)
    g.add_argument("--action", required=True, help='the action, e.g. "open drawer"')
    g.add_argument("--out", required=True, help="output PNG")
    g.add_argument("--description", help="the detailed description (modes without a VLLM)")
    g.add_argument("--steps", type=int, default=100)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--scheduler", default="euler_a", choices=["euler_a", "ddim", "dpm++"])
    g.set_defaults(func=cmd_generate)

    vl = sub.add_parser("vllm", help="visual instruction tuning and enrichment", description="VLLM commands.")
    vls = vl.add_subparsers(dest="vllm_command", required=True, parser_class=OneLineParser)
    vd = vls.add_parser("data", help="LLaVA conversation JSON from a manifest's descriptions",
                        description="Write LLaVA conversation JSON (one random question template per pair).")
    vd.add_argument("--pairs", required=True)
    vd.add_argument("--out", required=True, help="output JSON")
    vd.add_argument("--seed", type=int, default=0)
    vd.set_defaults(func=cmd_vllm_data)
    vt2 = vls.add_parser("tune", help="tune a LLaVA to write detailed action descriptions",
                         description="Visual instruction tuning: frozen vision tower (tiny may train it), projector + "
                         "LLM trained, loss on answer tokens only. Multi-GPU: accelerate launch -m egolego.cli vllm tune")
    vt2.add_argument("--data", required=True, help="LLaVA conversation JSON")
    vt2.add_argument("--images", required=True, help="root the JSON's image paths are relative to")
    vt2.add_argument("--preset", choices=["tiny", "paper"])
    vt2.add_argument("--out", required=True)
    vt2.add_argument("--epochs", type=int)
    vt2.add_argument("--lora", action="store_true", help="LoRA (peft) instead of full tuning of the LLM")
    vt2.add_argument("--model", help="paper: a local HF-format LLaVA folder")
    vt2.add_argument("--tokenizer", help="tiny: tokenizer folder (with <image>)")
    vt2.add_argument("--resume", action="store_true")
    vt2.add_argument("--config")
    vt2.set_defaults(func=cmd_vllm_tune)
    ve = vls.add_parser("enrich", help="descriptions + H_i / H_t embeddings for every pair",
                        description="Generate R for every pair, extract H_i and H_t into a sharded embedding store, "
                        "write R into the manifest. Resumable; split with --num-shards/--shard-index or accelerate.")
    ve.add_argument("--model", required=True, help="tuned VLLM folder (<tune out>/model)")
    ve.add_argument("--pairs", required=True)
    ve.add_argument("--out", required=True, help="embedding store folder")
    ve.add_argument("--batch-size", type=int, default=16)
    ve.add_argument("--num-shards", type=int, default=1)
    ve.add_argument("--shard-index", type=int, default=0)
    ve.add_argument("--max-new-tokens", type=int, default=64)
    ve.add_argument("--sample", action="store_true", help="sample (temperature 0.2, seeded) instead of greedy")
    ve.add_argument("--seed", type=int, default=0)
    ve.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ve.set_defaults(func=cmd_vllm_enrich)

    da = sub.add_parser("data", help="build training pairs from Ego4D / EPIC-KITCHENS", description="Data commands.")
    das = da.add_subparsers(dest="data_command", required=True, parser_class=OneLineParser)
    db = das.add_parser("build", help="raw dataset -> pairs manifest",
                        description="Parse the annotations, choose input/target frames (paper 4.1), decode, pick the "
                        "best of 7 by quality, filter by similarity, split by video, write a pairs manifest.")
    db.add_argument("--source", required=True, choices=["epic", "ego4d"])
    db.add_argument("--root", required=True, help="EPIC: folder with the CSVs, videos/, rgb_frames/, visor/; "
                    "Ego4D: the folder holding v2/")
    db.add_argument("--out", required=True)
    db.add_argument("--frames-from", default="video", choices=["video", "jpg"])
    db.add_argument("--quality", default="sharpness", choices=["sharpness", "laion"])
    db.add_argument("--quality-weights", help="laion: the improved-aesthetic MLP .pth (and --clip-weights)")
    db.add_argument("--similarity", default="pixel", choices=["pixel", "clip"])
    db.add_argument("--clip-weights", help="a local CLIP ViT-L/14 folder")
    db.add_argument("--sim-range", type=float, nargs=2, metavar=("LO", "HI"))
    db.add_argument("--size", type=int, default=256)
    db.add_argument("--workers", type=int, default=1)
    db.add_argument("--num-shards", type=int, default=1)
    db.add_argument("--shard-index", type=int, default=0)
    db.set_defaults(func=cmd_data_build)
    de = das.add_parser("export", help="official LEGO JSON or InstructPix2Pix parquet",
                        description="Export a pairs manifest: `lego` (the official JSON layout) or `ip2p` (parquet "
                        "with input_image / edit_prompt / edited_image for diffusers' InstructPix2Pix trainer).")
    de.add_argument("--pairs", required=True)
    de.add_argument("--format", required=True, choices=["lego", "ip2p"])
    de.add_argument("--out", required=True)
    de.add_argument("--prompt", default="description", choices=["description", "label"])
    de.set_defaults(func=cmd_data_export)

    cu = sub.add_parser("curate", help="detailed descriptions for the pairs (Fig. 9 prompt or offline)",
                        description="Write a description per pair into the manifest and the LLaVA tuning JSON.")
    cu.add_argument("--pairs", required=True)
    cu.add_argument("--backend", default="geometric", choices=["geometric", "openai"])
    cu.add_argument("--examples", help="YAML with the 12 in-context examples (openai)")
    cu.add_argument("--base-url", help="an OpenAI-compatible endpoint, e.g. https://api.openai.com/v1")
    cu.add_argument("--model", help="chat model name, e.g. gpt-3.5-turbo")
    cu.add_argument("--concurrency", type=int, default=4)
    cu.add_argument("--out", required=True, help="tuning JSON")
    cu.set_defaults(func=cmd_curate)

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
    d.add_argument("--minutes", type=float, default=10.0, help="time budget that scales the training (default 10)")
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
