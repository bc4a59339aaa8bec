"""``egolego data build|export|merge`` and ``egolego curate``: training pairs from the raw datasets, and their
descriptions."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import fail, positive, writable_dir


def data_parser(sub) -> None:
    da = sub.add_parser("data", help="build training pairs from Ego4D / EPIC-KITCHENS", description="Data commands.")
    das = da.add_subparsers(dest="data_command", required=True, parser_class=type(da))
    _build_parser(das)
    _export_parser(das)
    _merge_parser(das)


def _build_parser(das) -> None:
    from ..data.build import SIM_RANGES, BuildArgs

    d = BuildArgs.__dataclass_fields__
    db = das.add_parser("build", help="raw dataset -> pairs manifest",
                        description="Parse the annotations, choose input/target frames (paper 4.1), decode, pick the "
                        "best of 7 by quality, filter by similarity, split by video, write a pairs manifest.")
    db.add_argument("--source", required=True, choices=["epic", "ego4d"], help="the dataset's format")
    db.add_argument("--root", required=True, help="EPIC: folder with the CSVs, videos/, rgb_frames/, visor/; "
                    "Ego4D: the folder holding v2/")
    db.add_argument("--out", required=True, help="the manifest folder to write (with its frames)")
    db.add_argument("--frames-from", default=d["frames_from"].default, choices=["video", "jpg"],
                    help="decode the videos, or read EPIC's rgb_frames JPEGs (default %(default)s)")
    db.add_argument("--quality", default=d["quality"].default, choices=["sharpness", "laion"],
                    help="how the best of 7 frames is picked (default %(default)s; laion needs --quality-weights)")
    db.add_argument("--quality-weights", help="laion: the improved-aesthetic MLP .pth (and --clip-weights)")
    db.add_argument("--similarity", default=d["similarity"].default, choices=["pixel", "clip"],
                    help="the input/target similarity filter's encoder (default %(default)s; clip needs --clip-weights)")
    db.add_argument("--clip-weights", help="a local CLIP ViT-L/14 folder")
    db.add_argument("--sim-range", type=float, nargs=2, metavar=("LO", "HI"),
                    help="keep pairs with similarity in [LO, HI] (default: " +
                    ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in SIM_RANGES.items()) + ")")
    db.add_argument("--size", type=int, default=d["size"].default, help="side of the square frames (default %(default)s)")
    db.add_argument("--workers", type=int, default=d["workers"].default, help="decoding processes (default %(default)s)")
    db.add_argument("--num-shards", type=int, default=d["num_shards"].default,
                    help="split the videos into K shards (Slurm arrays; default %(default)s)")
    db.add_argument("--shard-index", type=int, default=d["shard_index"].default,
                    help="the shard this run builds, 0..K-1 (default %(default)s)")
    db.add_argument("--overwrite", action="store_true", help="replace a manifest (or unfinished build) in --out")
    db.add_argument("--timeline", type=int, default=d["timeline"].default, metavar="K",
                    help="also keep the frames along each action, as pairs with a `progress` in (0, 1): EPIC at K - 1 "
                    "even fractions between input and target, Ego4D at its critical frames pre_frame and "
                    "contact_frame (any K > 0); 0 = single frames only (default %(default)s)")
    db.set_defaults(func=cmd_data_build)


def _export_parser(das) -> None:
    de = das.add_parser("export", help="official LEGO JSON or InstructPix2Pix parquet",
                        description="Export a pairs manifest: `lego` (the official JSON layout) or `ip2p` (parquet "
                        "with input_image / edit_prompt / edited_image for diffusers' InstructPix2Pix trainer).")
    de.add_argument("--pairs", required=True, help="the pairs manifest folder")
    de.add_argument("--format", required=True, choices=["lego", "ip2p"], help="the layout to write")
    de.add_argument("--out", required=True, help="output folder")
    de.add_argument("--prompt", default="description", choices=["description", "label"],
                    help="ip2p: the text written as edit_prompt (default %(default)s)")
    de.set_defaults(func=cmd_data_export)


def _merge_parser(das) -> None:
    dm = das.add_parser("merge", help="one manifest over the shard-IofK folders of a sharded build",
                        description="Merge pairs manifests (images stay in place; paths become relative to --out).")
    dm.add_argument("shards", nargs="+", help="manifest folders, e.g. PAIRS/shard-*of4")
    dm.add_argument("--out", required=True, help="the merged manifest's folder")
    dm.add_argument("--overwrite", action="store_true", help="replace a manifest already in --out")
    dm.set_defaults(func=cmd_data_merge)


def curate_parser(sub) -> None:
    cu = sub.add_parser("curate", help="detailed descriptions for the pairs (Fig. 9 prompt or offline)",
                        description="Write a description per pair into the manifest and the LLaVA tuning JSON.")
    cu.add_argument("--pairs", required=True, help="the pairs manifest folder (its description column is written)")
    cu.add_argument("--backend", default="geometric", choices=["geometric", "openai"],
                    help="geometric: offline, from the boxes; openai: an OpenAI-compatible chat API (default %(default)s)")
    cu.add_argument("--examples", help="YAML with the 12 in-context examples (openai)")
    cu.add_argument("--base-url", help="an OpenAI-compatible endpoint, e.g. https://api.openai.com/v1")
    cu.add_argument("--model", help="chat model name, e.g. gpt-3.5-turbo")
    cu.add_argument("--concurrency", type=int, default=4, help="requests in flight (openai; default %(default)s)")
    cu.add_argument("--out", required=True, help="tuning JSON")
    cu.set_defaults(func=cmd_curate)


def cmd_data_build(a: argparse.Namespace) -> int:
    from ..data.build import BuildArgs, build

    args = BuildArgs(source=a.source, root=Path(a.root), out=Path(a.out), frames_from=a.frames_from, quality=a.quality,
                     quality_weights=a.quality_weights, similarity=a.similarity, clip_weights=a.clip_weights,
                     sim_range=tuple(a.sim_range) if a.sim_range else None, size=a.size, workers=a.workers,
                     num_shards=a.num_shards, shard_index=a.shard_index, overwrite=a.overwrite, timeline=a.timeline)
    try:
        args.validate()
        writable_dir(Path(a.out), "--out")
        s = build(args)
    except (ValueError, FileNotFoundError) as e:
        raise fail(e) from None
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(s["dropped"].items())) or "none"
    warned = "".join(f"; {v} x {k}" for k, v in sorted(s.get("warnings", {}).items()))
    print(f"data build: {s['kept']} pairs kept ({s['train']} train / {s['test']} test) of {s['rows_parsed']} "
          f"annotated actions; dropped: {dropped}{warned}"
          + (f"; {s['timeline_pairs']} timeline pairs" if a.timeline else "") + f" -> {a.out}")
    return 0


def cmd_data_export(a: argparse.Namespace) -> int:
    from ..data.export import export_ip2p, export_lego

    writable_dir(Path(a.out), "--out")
    try:
        files = export_lego(a.pairs, a.out) if a.format == "lego" else export_ip2p(a.pairs, a.out, a.prompt)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(f"data export: {', '.join(str(f) for f in files)}")
    return 0


def cmd_data_merge(a: argparse.Namespace) -> int:
    from ..data.manifest import merge_manifests

    try:
        f, n = merge_manifests(a.shards, writable_dir(Path(a.out), "--out"), a.overwrite)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(f"data merge: {n} pairs from {len(a.shards)} manifests -> {f}")
    return 0


def cmd_curate(a: argparse.Namespace) -> int:
    from ..curate.run import curate

    positive(a.concurrency, "--concurrency")
    try:
        s = curate(a.pairs, a.out, a.backend, a.examples, a.base_url, a.model, a.concurrency)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise fail(e) from None
    extra = (f", {s['calls']} API calls ({s['cached']} cached, {s['retries']} retries), {s['prompt_tokens']}+"
             f"{s['completion_tokens']} tokens, ~${s['cost_usd']}") if "calls" in s else ""
    print(f"curate: {s['pairs']} descriptions ({a.backend}){extra}; {s['tuning_records']} tuning records -> {a.out}")
    return 0
