"""``egolego vllm data|tune|enrich``: visual instruction tuning and enrichment (paper §3.1)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import CliError, add_config_flags, existing, fail, load_cfg, out_file, override, positive, writable_dir


def vllm_parser(sub) -> None:
    vl = sub.add_parser("vllm", help="visual instruction tuning and enrichment", description="VLLM commands.")
    vls = vl.add_subparsers(dest="vllm_command", required=True, parser_class=type(vl))
    _data_parser(vls)
    _pretrain_vision_parser(vls)
    _tune_parser(vls)
    _enrich_parser(vls)


def _data_parser(vls) -> None:
    vd = vls.add_parser("data", help="LLaVA conversation JSON from a manifest's descriptions",
                        description="Write LLaVA conversation JSON (one random question template per pair).")
    vd.add_argument("--pairs", required=True, help="a pairs manifest folder with descriptions")
    vd.add_argument("--out", required=True, help="output JSON")
    vd.add_argument("--seed", type=int, default=0, help="seeds the choice of question templates (default 0)")
    vd.set_defaults(func=cmd_vllm_data)


def _pretrain_vision_parser(vls) -> None:
    vp = vls.add_parser("pretrain-vision", help="tiny: pre-train the LLaVA's vision tower on EgoSynth patch labels",
                        description="Tiny preset only: train the small CLIP vision tower on rendered EgoSynth scenes "
                        "(per patch: object kinds, colours, column, side of the frame), the stand-in for LLaVA's "
                        "pre-trained CLIP. `vllm tune --vision-tower DIR` then freezes it. ~2 minutes on 2 cores.")
    vp.add_argument("--out", required=True, help="folder: vision_tower.safetensors, config.json, report.json")
    vp.add_argument("--scenes", type=int, help="rendered scenes (default: vllm.vision_pretrain.scenes)")
    vp.add_argument("--epochs", type=int, help="default: vllm.vision_pretrain.epochs")
    vp.add_argument("--seed", type=int, help="default: vllm.vision_pretrain.seed")
    add_config_flags(vp)
    vp.set_defaults(func=cmd_vllm_pretrain_vision)


def _tune_parser(vls) -> None:
    vt = vls.add_parser("tune", help="tune a LLaVA to write detailed action descriptions",
                        description="Visual instruction tuning: frozen vision tower (tiny may train it), projector + "
                        "LLM trained, loss on answer tokens only. Multi-GPU: accelerate launch -m egolego.cli vllm tune")
    vt.add_argument("--data", required=True, help="LLaVA conversation JSON")
    vt.add_argument("--images", required=True, help="root the JSON's image paths are relative to")
    vt.add_argument("--out", required=True, help="run folder: checkpoints/, tune_log.jsonl, model/")
    vt.add_argument("--epochs", type=int, help="default: vllm.epochs of the config")
    vt.add_argument("--lora", action="store_true", help="LoRA (peft) instead of full tuning of the LLM")
    vt.add_argument("--model", help="paper: a local HF-format LLaVA folder (vllm.model)")
    vt.add_argument("--tokenizer", help="tiny: tokenizer folder (with <image>; vllm.tokenizer)")
    vt.add_argument("--vision-tower", help="tiny: a folder from `vllm pretrain-vision` (vllm.vision_tower); "
                    "without one the tiny tower is random and frozen")
    vt.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    add_config_flags(vt)
    vt.set_defaults(func=cmd_vllm_tune)


def _enrich_parser(vls) -> None:
    ve = vls.add_parser("enrich", help="descriptions + H_i / H_t embeddings for every pair",
                        description="Generate R for every pair, extract H_i and H_t into a sharded embedding store, "
                        "write R into the manifest. Resumable; split with --num-shards/--shard-index or accelerate. "
                        "The store records the VLLM folder, so a model trained on it finds its VLLM.")
    ve.add_argument("--model", required=True, help="tuned VLLM folder (<tune out>/model)")
    ve.add_argument("--pairs", required=True, help="the pairs manifest folder (its description column is written)")
    ve.add_argument("--out", required=True, help="embedding store folder")
    ve.add_argument("--batch-size", type=int, default=16, help="images per generate() call (default %(default)s)")
    ve.add_argument("--num-shards", type=int, default=1, help="split the pairs into K writers (default %(default)s)")
    ve.add_argument("--shard-index", type=int, default=0, help="this writer, 0..K-1 (default %(default)s)")
    ve.add_argument("--max-new-tokens", type=int, help="default: vllm.max_new_tokens of --config / --preset, "
                    "else of the config the model was tuned with")
    ve.add_argument("--sample", action="store_true", help="sample (temperature 0.2, seeded) instead of greedy")
    ve.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    ve.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], help="store dtype (default: vllm.store_dtype)")
    ve.add_argument("--preset", choices=["tiny", "paper"], help="take vllm.* enrichment settings from this preset")
    ve.add_argument("--config", help="take vllm.* enrichment settings (inference_template, max_new_tokens, "
                    "text_rows, store_dtype) from this file; default: those the model was tuned with")
    ve.set_defaults(func=cmd_vllm_enrich)


def cmd_vllm_data(a: argparse.Namespace) -> int:
    from ..data.llava_records import records_from_manifest, write_json
    from ..data.manifest import read_manifest

    out_file(a.out, "--out")
    try:
        recs = records_from_manifest(read_manifest(a.pairs), seed=a.seed)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    if not recs:
        raise CliError(f"--pairs: no training pair of {a.pairs} has a description (run `egolego curate` first)")
    write_json(recs, out_file(a.out, "--out"))
    print(f"vllm data: {len(recs)} conversations -> {a.out}")
    return 0


def cmd_vllm_tune(a: argparse.Namespace) -> int:
    cfg = load_cfg(a)
    v = cfg.vllm
    positive(a.epochs, "--epochs")
    override(v, epochs=a.epochs, model=a.model, tokenizer=a.tokenizer, vision_tower=a.vision_tower)
    v.lora = v.lora or a.lora
    for flag, path in (("--images", a.images), ("--model", a.model), ("--tokenizer", a.tokenizer),
                       ("--vision-tower", a.vision_tower)):
        existing(path, flag)
    if not (v.model or v.vision_tower or v.train_vision_tower):
        print("vllm tune: no --vision-tower: the tiny vision tower stays random and frozen, and the descriptions "
              "will not follow the image (run `egolego vllm pretrain-vision` first)", file=sys.stderr)
    existing(a.data, "--data", "file")
    out = writable_dir(Path(a.out), "--out")
    from ..vllm.tune import VllmTuner  # after the arguments' checks: its imports take seconds, a wrong path should not

    data, images = a.data, a.images
    try:
        if v.synthetic_records:  # the config's rendered stills, as `demo` and `reproduce` add them
            from ..stages import with_scene_records

            print(f"vllm tune: + {v.synthetic_records} rendered EgoSynth stills (vllm.synthetic_records, "
                  f"synth.knowledge {cfg.synth.knowledge}) -> {out / 'tuning_scenes'}", file=sys.stderr)
            data, images = with_scene_records(Path(a.data), Path(a.images), out, v.synthetic_records, v.seed,
                                              cfg.image_size, cfg.synth.knowledge)
            if a.epochs is None:
                v.epochs = v.synthetic_epochs
        r = VllmTuner(cfg, data, images, out).run(resume=a.resume)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    last = r["losses"][-1] if r["losses"] else float("nan")
    print(f"vllm tune: steps {r['start']}->{r['end']}, last loss {last:.4f}, {len(r['skipped_images'])} unreadable "
          f"images skipped -> {Path(a.out) / 'model'}")
    return 0


def cmd_vllm_pretrain_vision(a: argparse.Namespace) -> int:
    cfg = load_cfg(a)
    if cfg.vllm.from_model or cfg.vllm.model:
        raise CliError("pretrain-vision is for a LLaVA built from scratch (vllm.from_model: false, the tiny preset's): "
                       "a real LLaVA brings its own pre-trained CLIP tower")
    from ..synth.patch_labels import scene_patch_labels
    from ..vllm.vision_pretrain import pretrain_vision_tower

    pc = cfg.vllm.vision_pretrain
    override(pc, scenes=a.scenes, epochs=a.epochs, seed=a.seed)
    try:
        r = pretrain_vision_tower(pc, writable_dir(Path(a.out), "--out"), scene_patch_labels, cfg.vllm.tiny_llava,
                                  knowledge=cfg.synth.knowledge)
    except ValueError as e:
        raise fail(e) from None
    q = r["held_out"]
    print(f"vllm pretrain-vision: {'reused, ' if r.get('reused') else ''}{r['scenes']} scenes x {r['epochs']} epochs; "
          f"held-out label F1 {q['label_f1']}, state F1 {q.get('state_f1', '-')}, side accuracy {q['side_accuracy']} "
          f"(world: {r.get('knowledge', 'none')}) -> {a.out}")
    return 0


def cmd_vllm_enrich(a: argparse.Namespace) -> int:
    positive(a.batch_size, "--batch-size")
    positive(a.num_shards, "--num-shards")
    positive(a.max_new_tokens, "--max-new-tokens")
    settings = load_cfg(a).vllm if (a.config or a.preset) else None  # else: the config the model was tuned with
    shards, index = a.num_shards, a.shard_index
    if shards == 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # accelerate launch / torchrun
        shards, index = int(os.environ["WORLD_SIZE"]), int(os.environ.get("RANK", "0"))
    if not (Path(a.model) / "config.json").is_file():
        raise CliError(f"--model: {a.model} is not a tuned VLLM folder (no config.json)")
    if not 0 <= index < shards:
        raise CliError(f"--shard-index must be in [0, {shards}), got {index}")
    writable_dir(Path(a.out), "--out")
    from ..vllm.enrich import enrich  # after the arguments' checks, as `vllm tune`

    try:
        s = enrich(a.model, a.pairs, a.out, a.batch_size, shards, index, max_new_tokens=a.max_new_tokens,
                   sample=a.sample, seed=a.seed, dtype=a.dtype, settings=settings)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(f"vllm enrich: {s['done']} pairs done, {s['skipped']} skipped" + (f" (see {s['report']})" if s["report"] else "")
          + f", store holds {s['stored']} pairs at {s['bytes_per_pair'] / 1024:.1f} KiB/pair -> {a.out}")
    return 0
