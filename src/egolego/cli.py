"""The ``egolego`` command: one entry point and its argument parser (the sub-commands live in ``commands.py``).

Bad arguments end with one line, ``egolego <command>: error: <what>``, and exit status 2 — never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from .cli_checks import check_args
from .commands import (
    CliError,
    add_sampling_flags,
    cmd_config,
    cmd_curate,
    cmd_data_build,
    cmd_data_export,
    cmd_data_merge,
    cmd_demo,
    cmd_generate,
    cmd_pairs_egosynth,
    cmd_reproduce,
    cmd_synth,
    cmd_tokenizer,
    cmd_train,
    cmd_vae_train,
    cmd_vllm_data,
    cmd_vllm_enrich,
    cmd_vllm_tune,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded at run time


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


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
    tr.add_argument("--conditioning", help="label | desc | desc+img | desc+txt | lego (default lego) | t2i "
                    "(the text-to-image model of the SDEdit / ProxNPI baselines)")
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
    g.add_argument("--image", required=True, help="the egocentric frame (any size; the output keeps its aspect ratio)")
    g.add_argument("--action", required=True, help='the action, e.g. "open drawer"')
    g.add_argument("--out", required=True, help="output PNG")
    g.add_argument("--description", help="the detailed description (default: written by the model's tuned VLLM)")
    g.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    add_sampling_flags(g)
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
    ve.add_argument("--max-new-tokens", type=int, help="default: vllm.max_new_tokens of --config / --preset, "
                    "else of the config the model was tuned with")
    ve.add_argument("--sample", action="store_true", help="sample (temperature 0.2, seeded) instead of greedy")
    ve.add_argument("--seed", type=int, default=0)
    ve.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], help="store dtype (default: vllm.store_dtype)")
    ve.add_argument("--preset", choices=["tiny", "paper"], help="take vllm.* enrichment settings from this preset")
    ve.add_argument("--config", help="take vllm.* enrichment settings (inference_template, max_new_tokens, "
                    "text_rows, store_dtype) from this file; default: those the model was tuned with")
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
    db.add_argument("--overwrite", action="store_true", help="replace a manifest (or unfinished build) in --out")
    db.set_defaults(func=cmd_data_build)
    de = das.add_parser("export", help="official LEGO JSON or InstructPix2Pix parquet",
                        description="Export a pairs manifest: `lego` (the official JSON layout) or `ip2p` (parquet "
                        "with input_image / edit_prompt / edited_image for diffusers' InstructPix2Pix trainer).")
    de.add_argument("--pairs", required=True)
    de.add_argument("--format", required=True, choices=["lego", "ip2p"])
    de.add_argument("--out", required=True)
    de.add_argument("--prompt", default="description", choices=["description", "label"])
    de.set_defaults(func=cmd_data_export)
    dm = das.add_parser("merge", help="one manifest over the shard-IofK folders of a sharded build",
                        description="Merge pairs manifests (images stay in place; paths become relative to --out).")
    dm.add_argument("shards", nargs="+", help="manifest folders, e.g. PAIRS/shard-*of4")
    dm.add_argument("--out", required=True)
    dm.add_argument("--overwrite", action="store_true", help="replace a manifest already in --out")
    dm.set_defaults(func=cmd_data_merge)

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
    d.add_argument("--weights-dir", help="metric weights (README: Evaluation weights); without it those metrics are skipped")
    d.add_argument("--baseline", action="store_true",
                   help="also train the `label` baseline (InstructPix2Pix) with the same steps: twice the training")
    d.set_defaults(func=cmd_demo)

    rp = sub.add_parser("reproduce", help="the paper's Tables 1, 3, 4 at toy scale on EgoSynth (6 LDMs, one budget)",
                        description="Train label, desc, desc+img, desc+txt, lego and lego on the untuned VLLM with "
                        "one recipe and one budget, evaluate them on the same test pairs, and write report.html with "
                        "the tables and paired bootstrap intervals (lego - label, overall and on twin scenes). "
                        "Resumable: rerun after a kill.")
    rp.add_argument("--out", required=True, help="output folder (one sub-folder per EgoSynth seed)")
    rp.add_argument("--minutes", type=float, default=60.0, help="time budget that sizes the training (default 60)")
    rp.add_argument("--seeds", type=int, default=1, help="EgoSynth seeds, from synth.seed on (default 1)")
    rp.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train and sample (default cpu)")
    rp.add_argument("--config", help="a YAML config file (default: the tiny preset)")
    rp.add_argument("--actions", type=int, help="EgoSynth actions per seed (default: the config's synth.actions)")
    rp.add_argument("--test-pairs", type=int, default=96, help="test pairs evaluated per model (default 96)")
    rp.add_argument("--ldm-steps", type=int, help="training steps per model (default: sized from --minutes)")
    add_sampling_flags(rp)
    rp.set_defaults(func=cmd_reproduce)

    from .eval.cli import add_parsers

    add_parsers(sub)
    from .app.cli import add_parsers as add_app_parsers

    add_app_parsers(sub)
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
    except CliError as e:
        print(f"egolego {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"egolego {a.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
