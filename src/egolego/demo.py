"""``egolego demo``: the whole pipeline on the embedded default (EgoSynth, tiny preset, CPU).

EgoSynth → data build (EPIC format) → curate (geometric) → VLLM tune → enrich → VAE → train ``lego`` and the
``label`` baseline → ``egolego eval`` of both and of the two references (copy the input; the ground truth) →
``report.html`` and a figure. Each stage prints one line and reuses what an earlier run built in the same folder.
``--minutes`` scales the training steps to fit a time budget (default about 10 minutes on 2 cores). Without
``weights_dir`` the metrics that need pretrained networks are skipped (listed in the report); the offline ones
(PSNR, SSIM, FID/KID on the project's own VAE features, the EgoSynth action judge) always run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from PIL import Image, ImageDraw

from .config import Config
from .data.manifest import read_manifest, resolve
from .synth.dataset import SynthArgs, generate


class Stage:
    """One progress line when a stage starts, one when it ends; the wall time goes to ``TIMINGS``."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        print(f"[demo] {self.name} ...", flush=True)
        self.t0 = time.perf_counter()
        return self

    def done(self, what: str) -> None:
        print(f"[demo]   {what} ({time.perf_counter() - self.t0:.0f}s)", flush=True)

    def __exit__(self, *exc):
        TIMINGS[self.name] = round(time.perf_counter() - self.t0, 1)
        return False


TIMINGS: dict[str, float] = {}  # stage -> seconds of the last run_demo (benchmarks/bench_demo.py reads it)


def run_demo(cfg: Config, out: Path, minutes: float = 10.0, test_pairs: int = 24, steps: int = 50,
             weights_dir: Path | None = None) -> dict:
    from .curate.run import curate
    from .data.build import BuildArgs, build
    from .ldm.train import Trainer
    from .ldm.vae_train import train_vae
    from .tokenizer import train_tokenizer
    from .vllm.enrich import enrich
    from .vllm.templates import QUESTION_TEMPLATES
    from .vllm.tune import VllmTuner

    out.mkdir(parents=True, exist_ok=True)
    TIMINGS.clear()
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
            cfg.vae.steps = max(50, int(round(240 * scale)))
            q = train_vae(cfg, pairs, vae_dir, progress=False)
        s.done(f"held-out reconstruction PSNR {q['psnr_heldout_db']} dB")

    methods = {"label": "label", "lego": "lego"}
    ldm_steps = max(20, int(round(210 * scale)))
    models = {}
    for name, mode in methods.items():
        run = out / f"ldm_{name}"
        with Stage(f"LDM: train `{mode}`") as s:
            if (run / "model" / "model_index.json").exists():
                s.done(f"reused {run / 'model'}")
            else:
                cfg.ldm.vae, cfg.ldm.tokenizer, cfg.ldm.conditioning = str(vae_dir), str(tok_dir), mode
                cfg.ldm.max_steps, cfg.ldm.checkpoint_every = ldm_steps, 100
                cfg.ldm.lr = 5e-4
                r = Trainer(cfg, pairs, store, run).run(resume=(run / "checkpoints").exists(), progress=False)
                s.done(f"{cfg.ldm.max_steps} steps, last loss {r['losses'][-1]:.3f}" if r["losses"] else "resumed")
        models[name] = run / "model"
    import shutil
    if not (models["lego"] / "vllm").exists():  # `egolego generate` finds the VLLM next to the LDM
        shutil.copytree(vllm_dir / "model", models["lego"] / "vllm")

    from .eval.report import build_report, headline
    from .eval.run import EvalArgs, evaluate
    from .eval.tables import load_run

    n_test = sum(r["split"] == "test" for r in rows)
    evals = {}
    for name, method in (("lego", models["lego"]), ("label", models["label"]), ("input copy", "input"),
                         ("ground truth", "target")):
        d = out / "eval" / name.replace(" ", "_")
        with Stage(f"eval `{name}` on {min(test_pairs, n_test)} test pairs (generate, PSNR/SSIM, judge, FID/KID)") as s:
            if (d / "eval.json").exists() and json.loads((d / "eval.json").read_text())["n"] == min(test_pairs, n_test):
                s.done(f"reused {d}")
            else:
                evaluate(EvalArgs(str(method), pairs, d, weights_dir=weights_dir, steps=steps, batch_size=24,
                                  limit=test_pairs, store=store, name=name, egosynth=data, feature_vae=vae_dir),
                         progress=False)
                s.done(headline(load_run(d)).strip())
        evals[name] = d
    runs = [load_run(d) for d in evals.values()]
    fig = _figure(pairs, runs, out / "demo_results.png")
    report = build_report(list(evals.values()), out / "report.html", "egolego demo: EgoSynth, tiny preset, CPU",
                          notes=f"{cfg.synth.actions} EgoSynth actions at {cfg.synth.size}px; LDM "
                          f"{ldm_steps} steps, VAE held-out PSNR {q['psnr_heldout_db']} dB; {steps} sampling "
                          "steps. Toy scale: read the numbers as a smoke test of the pipeline, not as the paper's results.")
    results = {r.info["name"]: {k: round(v["mean"], 4) for k, v in r.info["metrics"].items()}
               | {k: round(v, 4) for k, v in r.info["set_metrics"].items()} for r in runs}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"[demo] report: {report}")
    print(f"[demo] figure: {fig}")
    for r in runs:
        print(f"[demo] {headline(r)}")
    return {"results": results, "figure": str(fig), "report": str(report), "out": str(out), "stages": dict(TIMINGS)}


def _figure(pairs: Path, runs: list, path: Path, n: int = 8) -> Path:
    """input | each method | ground truth for the first ``n`` evaluated pairs (the README's figure)."""
    from .eval.generate_set import REFERENCES, safe_name

    ids = runs[0].per_pair["pair_id"][:n]
    by_id = {r["pair_id"]: r for r in read_manifest(pairs)}
    methods = [r for r in runs if r.info["mode"] not in REFERENCES]
    cols = ["input"] + [r.name for r in methods] + ["ground truth"]
    s, pad = 128, 6
    sheet = Image.new("RGB", (len(cols) * (s + pad) + pad, len(ids) * (s + pad) + 24), "white")
    d = ImageDraw.Draw(sheet)
    for c, name in enumerate(cols):
        d.text((pad + c * (s + pad), 6), name, fill="black")
    for i, pid in enumerate(ids):
        row = by_id[pid]
        ims = [Image.open(resolve(pairs, row["input_path"]))]
        ims += [Image.open(r.folder / "images" / f"{safe_name(pid)}.png") for r in methods]
        ims.append(Image.open(resolve(pairs, row["target_path"])))
        for c, im in enumerate(ims):
            sheet.paste(im.convert("RGB").resize((s, s), Image.NEAREST), (pad + c * (s + pad), 22 + i * (s + pad)))
    sheet.save(path)
    return path
