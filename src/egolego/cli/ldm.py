"""``egolego vae train``, ``egolego train`` and ``egolego generate``: the diffusion model (paper §3.2)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import preset
from ..vllm.memory import PRECISIONS
from .common import (
    CliError,
    add_config_flags,
    add_sampling_flags,
    existing,
    fail,
    load_cfg,
    out_file,
    override,
    positive,
    sampling_args,
    writable_dir,
)


def vae_parser(sub) -> None:
    v = sub.add_parser("vae", help="the tiny preset's autoencoder", description="Autoencoder commands.")
    vsub = v.add_subparsers(dest="vae_command", required=True, parser_class=type(v))
    vt = vsub.add_parser("train", help="train the tiny AutoencoderKL on frames; reports held-out PSNR",
                         description="Train the tiny preset's AutoencoderKL (a random one cannot reconstruct images).")
    vt.add_argument("--images", required=True, help="a folder of JPEG/PNG frames or a pairs manifest folder")
    vt.add_argument("--out", required=True, help="output folder (diffusers AutoencoderKL + quality.json)")
    vt.add_argument("--steps", type=int, help=f"training steps (default: vae.steps, tiny {preset('tiny').vae.steps})")
    vt.add_argument("--config", help="a YAML config file (default: the tiny preset)")
    vt.set_defaults(func=cmd_vae_train)


def train_parser(sub) -> None:
    from ..ldm.modes import MODES
    from ..methods import TRAINED

    tr = sub.add_parser("train", help="train the LEGO diffusion model (accelerate: CPU, GPUs, nodes)",
                        description="Train the UNet and the conditioner (σ, μ, π) on a pairs manifest + embedding "
                        "store. Every setting defaults to the config's ldm.* (--config / --preset). "
                        "Multi-GPU: accelerate launch -m egolego.cli train ...")
    tr.add_argument("--pairs", required=True, help="pairs manifest folder")
    tr.add_argument("--embeddings", help="embedding store of `vllm enrich` (needed by desc+img, desc+txt, lego); the "
                    "model records the VLLM that wrote it")
    tr.add_argument("--conditioning", choices=TRAINED, metavar="MODE",
                    help=f"{' | '.join(MODES)} (default: ldm.conditioning, {preset('tiny').ldm.conditioning}) | t2i "
                    "(the text-to-image model of the SDEdit / ProxNPI baselines)")
    tr.add_argument("--out", required=True, help="run folder: checkpoints/, train_log.jsonl, model/")
    tr.add_argument("--max-steps", type=int, help="training steps (default: ldm.max_steps)")
    tr.add_argument("--batch-size", type=int, help="pairs per step and process (default: ldm.batch_size)")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    tr.add_argument("--vae", help="tiny with ldm.autoencoder vae: autoencoder folder from `egolego vae train`")
    tr.add_argument("--base", help="paper: local SD-1.5 or InstructPix2Pix diffusers folder")
    tr.add_argument("--tokenizer", help="tiny: tokenizer folder (default: trained on the manifest's texts)")
    tr.add_argument("--seed", type=int, help="data order, noise, dropout, initialisation (default: ldm.seed)")
    add_config_flags(tr)
    tr.set_defaults(func=cmd_train)


def mask_parser(sub) -> None:
    m = sub.add_parser("train-mask", help="learn a trained model's change mask (keeps the input off the action)",
                       description="The model draws its training pairs; a small net learns from them where the true "
                       "frame differs from the input; sampling then composites each frame over its input by that "
                       "mask (turned on in the model's saved sampling; --no-change-mask samples without it). "
                       "`egolego train` does this itself when ldm.change_mask is set (off in both presets).")
    m.add_argument("--model", required=True, help="the model folder (`egolego train`'s <out>/model)")
    m.add_argument("--pairs", required=True, help="the pairs manifest the model was trained on (its train split)")
    m.add_argument("--embeddings", help="the embedding store the model was trained with (modes that use H_i / H_t)")
    m.add_argument("--limit", type=int, help="learn from the first N training pairs (default: ldm.change_mask_pairs, "
                   "0 = all)")
    m.add_argument("--steps", type=int, help="training steps of batch 32 (default: ldm.change_mask_steps)")
    m.add_argument("--seed", type=int, help="frames' noise and the net's initialisation (default: ldm.seed)")
    m.add_argument("--device", help="where the model draws its frames (default: CPU)")
    add_config_flags(m, "default: the model's lego_config.yaml, else tiny")
    m.set_defaults(func=cmd_train_mask)


def generate_parser(sub) -> None:
    g = sub.add_parser("generate", help="generate the action frame for one image",
                       description="Generate the egocentric action frame for an image and an action, sampling the "
                       "way the model was trained (its lego_config.yaml) unless a flag says otherwise.")
    g.add_argument("--model", default="runs/demo/ldm_lego/model",
                   help="a LEGO model folder (<train out>/model; default: the demo's lego model)")
    g.add_argument("--image", required=True, help="the egocentric frame (any size; the output keeps its aspect ratio)")
    g.add_argument("--action", required=True, help='the action, e.g. "open drawer"')
    g.add_argument("--out", required=True, help="output image (.png, .jpg, .webp); with --frames: a clip (.mp4, .gif) "
                   "or a strip of the frames (.png, .jpg, .webp)")
    g.add_argument("--frames", type=int, default=1, metavar="K",
                   help="draw the action unfolding: K frames at progress 1/K ... 1, after the input frame (a model "
                   "trained with ldm.progress on `data build --timeline` pairs; default %(default)s: the action done)")
    g.add_argument("--fps", type=float, default=2.0, help="frames per second of an .mp4 / .gif clip (default %(default)s)")
    g.add_argument("--description", help="the detailed description (default: written by the model's tuned VLLM)")
    g.add_argument("--seed", type=int, default=0, help="noise seed (default %(default)s)")
    g.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default %(default)s)")
    g.add_argument("--vllm-precision", choices=PRECISIONS, default="auto",
                   help="how the VLLM is held: auto takes float32 then bfloat16 on a CPU, float16 then 4bit on a GPU, "
                   "the first that fits; a VLLM that fits nowhere is refused before loading (a 13B one needs ~31 GiB "
                   "in bfloat16)")
    add_sampling_flags(g)
    g.add_argument("--clip-start", type=float, help="with --frames: 1 = every frame from pure noise; S < 1 = the last "
                   "frame first, the others from it noised to level S, keeping its hand and object (default: the "
                   "model's ldm.clip_start, 1 in both presets)")
    g.add_argument("--progress-guidance", type=float, help="with --frames: s_p, guide each frame away from the action "
                   "not begun (progress 0) by s_p; 0 = off (default: the model's ldm.progress_guidance)")
    g.set_defaults(func=cmd_generate)


def cmd_vae_train(a: argparse.Namespace) -> int:
    from ..ldm.vae_train import train_vae

    cfg = load_cfg(a)
    positive(a.steps, "--steps")
    if a.steps:
        cfg.vae.steps = a.steps
    try:
        q = train_vae(cfg, a.images, writable_dir(Path(a.out), "--out"))
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(f"vae: held-out reconstruction PSNR {q['psnr_heldout_db']} dB ({q['heldout_images']} images), "
          f"{q['steps']} steps in {q['seconds']}s -> {a.out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    cfg = load_cfg(a)
    c = cfg.ldm
    for flag, value in (("--max-steps", a.max_steps), ("--batch-size", a.batch_size)):
        positive(value, flag)
    override(c, conditioning=a.conditioning, max_steps=a.max_steps, batch_size=a.batch_size, vae=a.vae, base=a.base,
             tokenizer=a.tokenizer, seed=a.seed)
    for flag, path in (("--pairs", a.pairs), ("--embeddings", a.embeddings), ("--vae", a.vae), ("--base", a.base),
                       ("--tokenizer", a.tokenizer)):
        existing(path, flag, "path")  # --pairs may name the folder or its pairs.parquet
    from ..methods import method

    try:
        trainer = method(c.conditioning).trainer()(cfg, a.pairs, a.embeddings, writable_dir(Path(a.out), "--out"))
        r = trainer.run(resume=a.resume)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    last = r["losses"][-1] if r["losses"] else float("nan")
    print(f"train: {c.conditioning}, steps {r['start']}->{r['end']}, last loss {last:.4f} -> {Path(a.out) / 'model'}")
    if method(c.conditioning).kind == "lego" and r["end"] == c.max_steps:
        from ..ldm.change_mask_train import train_configured_mask

        try:
            q = train_configured_mask(c, Path(a.out) / "model", a.pairs, a.embeddings)
        except (FileNotFoundError, ValueError) as e:
            raise fail(e) from None
        if q is not None:
            print(f"train: change mask (ldm.change_mask), held-out IoU {q['iou']:.3f}, recall {q['recall']:.3f}")
    return 0


def cmd_train_mask(a: argparse.Namespace) -> int:
    saved = Path(a.model) / "lego_config.yaml"
    if a.config is None and a.preset is None and saved.is_file():
        a.config = str(saved)  # the model's own settings, as it was trained
    cfg = load_cfg(a)
    c = cfg.ldm
    positive(a.steps, "--steps")
    override(c, change_mask_pairs=a.limit, change_mask_steps=a.steps, seed=a.seed)
    for flag, path in (("--model", a.model), ("--pairs", a.pairs), ("--embeddings", a.embeddings)):
        existing(path, flag, "path")
    from ..ldm.change_mask_train import train_change_mask

    try:
        r = train_change_mask(a.model, a.pairs, a.embeddings, limit=c.change_mask_pairs, steps=c.change_mask_steps,
                              width=c.change_mask_width, threshold=c.change_mask_threshold, dilate=c.change_mask_dilate,
                              pos_weight=c.change_mask_pos_weight, seed=c.seed, device=a.device)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    print(f"train-mask: held-out IoU {r['iou']:.3f}, recall {r['recall']:.3f}, specificity {r['specificity']:.3f} "
          f"({r['train_pairs']} + {r['heldout_pairs']} pairs, {r['steps']} steps) -> {Path(a.model) / 'change_mask'}")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from ..ldm.clip_file import CLIP_SUFFIXES, write_clip
    from ..ldm.model_folder import lego_model_folder

    sampling = {**sampling_args(a), "clip_start": a.clip_start, "progress_guidance": a.progress_guidance}
    if not 1 <= a.frames <= 64:
        raise CliError(f"--frames: give 1 to 64 frames, got {a.frames}")
    if not 0 < a.fps <= 60:
        raise CliError(f"--fps: must be in (0, 60], got {a.fps}")
    out = out_file(a.out, "--out", CLIP_SUFFIXES if a.frames > 1 else (".png", ".jpg", ".jpeg", ".webp"))
    lego_model_folder(a.model)  # before the model code's imports (seconds on a slow box): a wrong path answered at once
    existing(a.image, "--image", "file")
    from ..ldm.generate import generate_clip, generate_one

    try:
        if a.frames == 1:
            frame, prompt = generate_one(a.model, a.image, a.action, a.description, seed=a.seed, device=a.device,
                                         vllm_precision=a.vllm_precision, **sampling)
            frames = [frame]
        else:
            frames, prompt = generate_clip(a.model, a.image, a.action, a.frames, a.description, seed=a.seed,
                                           device=a.device, vllm_precision=a.vllm_precision, **sampling)
    except (FileNotFoundError, ValueError) as e:
        raise fail(e) from None
    try:
        if a.frames == 1:
            frames[0].save(out)
        else:
            from ..ldm.generate import open_image

            write_clip([open_image(a.image).resize(frames[0].size), *frames], out, a.fps)
    except OSError as e:
        raise CliError(f"--out: cannot write {out}: {e.strerror or e}") from None
    what = f"{a.frames} frames" if a.frames > 1 else "frame"
    print(f"generate: \"{prompt}\" -> {out} ({what})")
    return 0
