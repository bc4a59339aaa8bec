"""``egolego import lego|lego-features|lego-dataset``: the files the LEGO authors released, in egolego's formats.

Nothing is downloaded: each command reads local copies (README, "Use the released LEGO model", lists the names).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..imports import release
from .common import existing, fail, writable_dir


def import_parser(sub) -> None:
    im = sub.add_parser("import", help="the released LEGO model, VLLM features and dataset, from local copies",
                        description="Import the files the LEGO authors released (no download: give local paths).")
    isub = im.add_subparsers(dest="import_command", required=True, parser_class=type(im))
    lg = isub.add_parser("lego", help="the released LDM .ckpt -> a LEGO model folder (generate, eval, serve)",
                         description="Convert the official Lightning checkpoint (e.g. ego4d_diffusion_with_vllm_"
                         "feature.ckpt) into a LegoPipeline folder. Strict: every key is used or knowingly dropped; "
                         "safe: the pickle is read by torch's weights-only loader.")
    lg.add_argument("--ldm", required=True, help="the released LDM checkpoint (.ckpt)")
    lg.add_argument("--out", required=True, help="the model folder to write")
    lg.add_argument("--clip-text", help="a local openai/clip-vit-large-patch14 folder: the tokenizer (and text "
                    "config) the checkpoint does not hold")
    lg.add_argument("--vllm", help="the released LLaVA folder (llava-llama-2-13b-chat-forecasting-finetune, original "
                    "layout): converted into <out>/vllm, so `generate` describes and embeds frames on the fly")
    lg.add_argument("--clip-vision", help="with --vllm: a local openai/clip-vit-large-patch14 folder (the vision tower "
                    "the LLaVA folder names but does not store)")
    lg.add_argument("--size", type=int, default=release.IMAGE_SIZE, help="the image side the model generates (default %(default)s, "
                    "the release's)")
    lg.add_argument("--no-ema", action="store_true", help="take model.diffusion_model.* instead of the EMA weights "
                    "the official sampler uses")
    lg.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    lg.set_defaults(func=cmd_import_lego)

    lf = isub.add_parser("lego-features", help="the released VLLM features (.npy) -> an embedding store",
                         description="Read <clip_id>/<action_id>/<frame>.npy from the image and text feature trees of "
                         "bolinlai/LEGO-VLLM-Features-* into an embedding store for train / eval --store.")
    lf.add_argument("--image-features", required=True,
                    help="the H_i tree, e.g. vllm_image_feature/llava-llama-2-13b-chat-forecasting-finetune-ckpt450/val")
    lf.add_argument("--text-features", required=True, help="the H_t tree of the same split")
    lf.add_argument("--out", required=True, help="the embedding store folder to write (a rerun resumes)")
    lf.add_argument("--rows", type=int, default=release.TEXT_ROWS, help="H_t is cut / zero-padded to this many rows "
                    "(default %(default)s, the release's)")
    lf.add_argument("--lengths", choices=("official", "true"), default="official",
                    help="official: store length = --rows, so π sees the padding unmasked as the released model "
                    "did; true: the real length, masked as our own enrichment (default %(default)s)")
    lf.set_defaults(func=cmd_import_features)

    ld = isub.add_parser("lego-dataset", help="the released dataset JSONs + frames -> a pairs manifest",
                         description="Read {ego4d,epickitchen}_{train,val}.json (or `data export --format lego` "
                         "output) and the frames into a pairs manifest; val becomes the test split.")
    ld.add_argument("--json", required=True, nargs="+", help="the JSON files, named <dataset>_<train|val>.json")
    ld.add_argument("--frames", required=True, help="the frames: EgoGen/ego4d.fho (holding train/ val/ "
                    "val_gt_for_metric/) or the folder the JSON's paths start from")
    ld.add_argument("--out", required=True, help="the manifest folder (frames are hard-linked into it)")
    ld.add_argument("--source", help="the manifest's source column (default: from the file name: ego4d, epic, "
                    "else lego)")
    ld.add_argument("--overwrite", action="store_true", help="replace a manifest already in --out")
    ld.set_defaults(func=cmd_import_dataset)


def cmd_import_lego(a: argparse.Namespace) -> int:
    from ..imports.official_ldm import import_lego

    existing(a.ldm, "--ldm", "file")
    existing(a.clip_text, "--clip-text", "folder")
    existing(a.vllm, "--vllm", "folder")
    existing(a.clip_vision, "--clip-vision", "folder")
    if a.clip_vision and not a.vllm:
        raise fail(ValueError("--clip-vision goes with --vllm (the LLaVA folder whose tower it is)"))
    if a.size % 8:
        raise fail(ValueError(f"--size must be a multiple of 8 (the VAE's factor), got {a.size}"))
    writable_dir(Path(a.out).parent, "--out")
    try:
        r = import_lego(a.ldm, a.out, a.clip_text, image_size=a.size, use_ema=not a.no_ema, overwrite=a.overwrite,
                        vllm=a.vllm, clip_vision=a.clip_vision)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    used = ", ".join(f"{k} {v}" for k, v in r["used"].items())
    dropped = sum(r["dropped"].values())
    print(f"import lego: UNet from the {r['unet_weights']} weights; keys used: {used}; {dropped} dropped knowingly "
          f"(see lego_import.json) -> {a.out}" + (f"; the VLLM ({r['vllm']['projector']} projector, vision tower "
                                                  f"{r['vllm']['vision_tower']}) -> {Path(a.out) / 'vllm'}"
                                                  if "vllm" in r else ""))
    return 0


def cmd_import_features(a: argparse.Namespace) -> int:
    from ..imports.lego_features import import_features

    if not 1 <= a.rows <= 4096:
        raise fail(ValueError(f"--rows must be between 1 and 4096 (the release: 77), got {a.rows}"))
    try:
        r = import_features(a.image_features, a.text_features, writable_dir(Path(a.out), "--out"), rows=a.rows,
                            lengths=a.lengths)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(f"import lego-features: {r['added']} pairs added, {r['skipped']} already stored; H_i {r['image_shape']}, "
          f"H_t {r['text_shape']} ({r['lengths']} lengths) -> {a.out}")
    return 0


def cmd_import_dataset(a: argparse.Namespace) -> int:
    from ..imports.lego_dataset import import_dataset

    try:
        r = import_dataset(a.json, a.frames, writable_dir(Path(a.out), "--out"), source=a.source,
                           overwrite=a.overwrite)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    splits = ", ".join(f"{k} {v}" for k, v in sorted(r["splits"].items()))
    print(f"import lego-dataset: {r['pairs']} pairs ({splits}) -> {a.out}")
    return 0
