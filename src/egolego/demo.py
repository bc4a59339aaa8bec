"""``egolego demo``: the whole pipeline on the embedded default (EgoSynth, tiny preset, CPU).

EgoSynth → data build (EPIC format) → curate (geometric) → VLLM tune → enrich → VAE → train ``lego`` and the
``label`` baseline → generate the test set → evaluate (PSNR against the target, EgoSynth action accuracy) →
a figure. Each stage prints one line and reuses what an earlier run built in the same folder. ``--minutes``
scales the training steps to fit a time budget (default about 10 minutes on 2 cores).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .config import Config
from .data.manifest import read_manifest, resolve
from .synth.dataset import SynthArgs, generate, load_truth


class Stage:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        print(f"[demo] {self.name} ...", flush=True)
        self.t0 = time.perf_counter()
        return self

    def done(self, what: str) -> None:
        print(f"[demo]   {what} ({time.perf_counter() - self.t0:.0f}s)", flush=True)

    def __exit__(self, *exc):
        return False


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) / 255 - b.astype(np.float32) / 255) ** 2))
    return 10 * math.log10(1 / max(mse, 1e-10))


def run_demo(cfg: Config, out: Path, minutes: float = 10.0, test_pairs: int = 24) -> dict:
    from .curate.run import curate
    from .data.build import BuildArgs, build
    from .ldm.generate import load_pipeline
    from .ldm.train import Trainer
    from .ldm.vae_train import train_vae
    from .synth.judge import accuracy, judge
    from .tokenizer import train_tokenizer
    from .vllm.enrich import enrich
    from .vllm.store import EmbeddingStore
    from .vllm.templates import QUESTION_TEMPLATES
    from .vllm.tune import VllmTuner

    out.mkdir(parents=True, exist_ok=True)
    scale = max(0.05, minutes / 10.0)
    data, pairs = out / "egosynth", out / "pairs"

    with Stage(f"EgoSynth: {cfg.synth.actions} actions at {cfg.synth.size}px ({','.join(cfg.synth.formats)})") as s:
        args = SynthArgs(data, cfg.synth.actions, cfg.synth.size, cfg.synth.seed, tuple(cfg.synth.formats),
                         cfg.synth.workers)
        marker = data / "egosynth.json"
        if marker.exists() and all(json.loads(marker.read_text()).get(k) == v for k, v in args.fingerprint().items()):
            s.done(f"reused {data}")
        else:
            generate(SynthArgs(**{**args.__dict__, "overwrite": True}), progress=False)
            s.done(str(data))
    truth = load_truth(data)
    by_narration = {t["epic"]["narration_id"]: t for t in truth if "epic" in t}

    with Stage("data build: EPIC files -> pairs (best-of-7 sharpness, pixel similarity filter)") as s:
        if (pairs / "pairs.parquet").exists():
            s.done(f"reused {pairs}")
        else:
            sm = build(BuildArgs("epic", data / "epic", pairs, frames_from="jpg", size=cfg.image_size,
                                 workers=cfg.synth.workers), progress=False)
            s.done(f"{sm['kept']} pairs ({sm['train']} train / {sm['test']} test), dropped {sm['dropped']}")

    with Stage("curate: geometric descriptions + LLaVA tuning JSON") as s:
        tuning = out / "tuning.json"
        if tuning.exists():
            s.done(f"reused {tuning}")
        else:
            sm = curate(pairs, tuning, "geometric", progress=False)
            s.done(f"{sm['tuning_records']} tuning records")

    rows = read_manifest(pairs)
    tok_dir = out / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        texts = [t for r in rows for t in (r["label"], r["description"])] + QUESTION_TEMPLATES
        train_tokenizer(texts * 3, tok_dir, 800, 512)

    vllm_dir = out / "vllm"
    with Stage("VLLM: visual instruction tuning (tiny LLaVA)") as s:
        if (vllm_dir / "model" / "config.json").exists():
            s.done(f"reused {vllm_dir / 'model'}")
        else:
            cfg.vllm.tokenizer, cfg.vllm.epochs = str(tok_dir), max(2, int(round(12 * scale)))
            r = VllmTuner(cfg, tuning, pairs, vllm_dir).run(progress=False, resume=(vllm_dir / "checkpoints").exists())
            s.done(f"{cfg.vllm.epochs} epochs, last loss {r['losses'][-1]:.3f}" if r["losses"] else "resumed")

    store = out / "embeddings"
    with Stage("VLLM: enrich every pair (description R, H_i, H_t)") as s:
        sm = enrich(vllm_dir / "model", pairs, store, batch_size=32, progress=False)
        s.done(f"{sm['stored']} pairs in the store, {sm['bytes_per_pair'] / 1024:.1f} KiB/pair")

    vae_dir = out / "vae"
    with Stage("autoencoder (the tiny preset trains its own)") as s:
        if (vae_dir / "quality.json").exists():
            q = json.loads((vae_dir / "quality.json").read_text())
        else:
            cfg.vae.steps = max(50, int(round(260 * scale)))
            q = train_vae(cfg, pairs, vae_dir, progress=False)
        s.done(f"held-out reconstruction PSNR {q['psnr_heldout_db']} dB")

    methods = {"label": "label", "lego": "lego"}
    models = {}
    for name, mode in methods.items():
        run = out / f"ldm_{name}"
        with Stage(f"LDM: train `{mode}`") as s:
            if (run / "model" / "model_index.json").exists():
                s.done(f"reused {run / 'model'}")
            else:
                cfg.ldm.vae, cfg.ldm.tokenizer, cfg.ldm.conditioning = str(vae_dir), str(tok_dir), mode
                cfg.ldm.max_steps, cfg.ldm.checkpoint_every = max(20, int(round(230 * scale))), 100
                cfg.ldm.lr = 5e-4
                r = Trainer(cfg, pairs, store, run).run(resume=(run / "checkpoints").exists(), progress=False)
                s.done(f"{cfg.ldm.max_steps} steps, last loss {r['losses'][-1]:.3f}" if r["losses"] else "resumed")
        models[name] = run / "model"
    import shutil
    if not (models["lego"] / "vllm").exists():  # `egolego generate` finds the VLLM next to the LDM
        shutil.copytree(vllm_dir / "model", models["lego"] / "vllm")

    test = [r for r in rows if r["split"] == "test"][:test_pairs]
    emb = EmbeddingStore(store)
    results, images = {}, {}
    for name, mode in methods.items():
        with Stage(f"generate {len(test)} test frames with `{mode}` and evaluate") as s:
            pipe = load_pipeline(models[name])
            kw = {}
            if mode == "lego":
                es = [emb.get(r["pair_id"]) for r in test]
                kw = {"h_img": torch.stack([e.h_img.float() for e in es]), "h_txt": torch.stack([e.h_txt.float() for e in es]),
                      "h_len": torch.tensor([e.length for e in es])}
            inputs = [Image.open(resolve(pairs, r["input_path"])).convert("RGB") for r in test]
            prompts = [r["label"] if mode == "label" else r["description"] for r in test]
            outs = pipe(inputs, prompts, num_inference_steps=50, progress=False,
                        generator=[torch.Generator().manual_seed(i) for i in range(len(test))], **kw).images
            images[name] = outs
            psnr = [_psnr(np.asarray(o), np.asarray(Image.open(resolve(pairs, r["target_path"])))) for o, r in zip(outs, test)]
            verdicts = [judge(o, by_narration[r["pair_id"]]) for o, r in zip(outs, test)]
            results[name] = {"psnr_db": round(float(np.mean(psnr)), 2), **{f"acc_{k}": round(v, 3) for k, v in accuracy(verdicts).items()}}
            s.done(json.dumps(results[name]))
    base_psnr = np.mean([_psnr(np.asarray(Image.open(resolve(pairs, r["input_path"]))),
                               np.asarray(Image.open(resolve(pairs, r["target_path"])))) for r in test])
    inputs_acc = accuracy([judge(Image.open(resolve(pairs, r["input_path"])), by_narration[r["pair_id"]]) for r in test])
    targets_acc = accuracy([judge(Image.open(resolve(pairs, r["target_path"])), by_narration[r["pair_id"]]) for r in test])
    results["input frame (copy)"] = {"psnr_db": round(float(base_psnr), 2), **{f"acc_{k}": round(v, 3) for k, v in inputs_acc.items()}}
    results["ground truth"] = {**{f"acc_{k}": round(v, 3) for k, v in targets_acc.items()}}
    fig = _figure(pairs, test[:8], images, out / "demo_results.png")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"[demo] figure: {fig}")
    for name, r in results.items():
        print(f"[demo] {name:>18}: " + "  ".join(f"{k} {v}" for k, v in r.items()))
    return {"results": results, "figure": str(fig), "out": str(out)}


def _figure(pairs: Path, rows: list[dict], images: dict, path: Path) -> Path:
    cols = ["input"] + list(images) + ["ground truth"]
    s, pad = 128, 6
    sheet = Image.new("RGB", (len(cols) * (s + pad) + pad, len(rows) * (s + pad) + 24), "white")
    d = ImageDraw.Draw(sheet)
    for c, name in enumerate(cols):
        d.text((pad + c * (s + pad), 6), name, fill="black")
    for i, r in enumerate(rows):
        ims = [Image.open(resolve(pairs, r["input_path"]))] + [images[m][i] for m in images] + \
              [Image.open(resolve(pairs, r["target_path"]))]
        for c, im in enumerate(ims):
            sheet.paste(im.convert("RGB").resize((s, s), Image.NEAREST), (pad + c * (s + pad), 22 + i * (s + pad)))
    sheet.save(path)
    return path
