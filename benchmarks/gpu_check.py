"""GPU check of the paper path (issue 10, item 6): one script for one H200-class GPU, <= 8 minutes, one JSON line.

Random weights with the paper's shapes (``egolego.paper_shapes``: SD-1.5 at 256 px, LLaVA-1.5-7B), bf16:

- training: the real ``Trainer`` under ``--preset paper`` (10 steps: also the "paper preset trains on the GPU"
  check) at context 77 (``label``) and 410 (``lego``: 77 + 256 image tokens + 77, the official 13B release's
  shape), samples/s and peak memory, beside a plain diffusers-style step (``train_instruct_pix2pix.py``: VAE and
  text encoder every step, fp32 weights under bf16 autocast);
- generation at 100 Euler-ancestral steps, batch 1 and 16: ``LegoPipeline`` beside diffusers'
  ``StableDiffusionInstructPix2PixPipeline``, eager and ``torch.compile``d, on the same weights;
- enrichment: new tokens/s of ours (batched generation + one teacher-forced pass) beside a plain HF ``generate``
  with hidden states (``bench_vllm.run``).

The goals of the issue are evaluated in the same run (``goals``). ``--dry-run`` runs every section on the CPU with
tiny shapes in seconds (``tests/test_gpu_check.py``); compilation is skipped there. The figures belong in
``benchmarks/RESULTS.md`` (anchors: ``shared/reference/performance.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

GOALS = {"generation_vs_compiled_diffusers": 1.4, "batch1_latency_s_max": 0.75, "training_vs_plain": 1.5,
         "enrichment_vs_hf_generate": 5.0}
TEXTS = ["take the red cup", "open the drawer", "The person takes the red cup on the left with the left hand.",
         "The person opens the brown drawer in the middle with the right hand.", "cut tomato with knife"]


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev, repeat: int = 1) -> float:
    fn()  # warm-up (and compilation)
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(dev)
    return (time.perf_counter() - t0) / repeat


def write_data(root: Path, n: int, size: int, m_tokens: int, d_vllm: int) -> tuple[Path, Path]:
    """``n`` random pairs (manifest + JPEGs) and an embedding store with H_i (m_tokens, d_vllm), H_t (77, d_vllm)."""
    from egolego.data.manifest import write_manifest
    from egolego.vllm.store import StoreWriter

    pairs, store = root / "pairs", root / "store"
    (pairs / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    w = StoreWriter(store, "0", (m_tokens, d_vllm), (77, d_vllm), "random")
    for i in range(n):
        for kind in ("in", "tg"):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(pairs / "images" / f"{i}_{kind}.jpg")
        rows.append({"pair_id": f"p{i:04d}", "source": "random", "split": "train", "video_id": "v", "label": TEXTS[i % 2],
                     "description": TEXTS[2 + i % 2], "input_path": f"images/{i}_in.jpg",
                     "target_path": f"images/{i}_tg.jpg", "target_full_path": f"images/{i}_tg.jpg"})
        w.add(f"p{i:04d}", torch.randn(m_tokens, d_vllm), torch.randn(30, d_vllm), 30)
    w.close()
    write_manifest(rows, pairs)
    return pairs, store


def training(sd: Path, pairs: Path, store: Path, s: dict) -> dict:
    """The real Trainer, paper preset, label (context 77) and lego (context 77 + M + 77)."""
    from egolego import config
    from egolego.ldm.train import Trainer

    out = {}
    for mode in ("label", "lego"):
        cfg = config.preset("paper")
        cfg.image_size = s["size"]
        c = cfg.ldm
        c.base, c.conditioning, c.batch_size, c.grad_accum, c.max_steps = str(sd), mode, s["train_batch"], 1, s["train_steps"]
        c.checkpoint_every = 10**9
        if s["dev"].type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        work = Path(tempfile.mkdtemp(dir=pairs.parent))
        tr = Trainer(cfg, pairs, store if mode == "lego" else None, work)
        t0 = time.perf_counter()
        r = tr.run(progress=False)
        log = [json.loads(x) for x in (work / "train_log.jsonl").read_text().splitlines()]
        out[mode] = {"context": tr.acc.unwrap_model(tr.model).conditioner.context_length(77), "steps": r["end"],
                     "samples_per_s": log[-1]["samples_per_s"], "seconds": round(time.perf_counter() - t0, 1),
                     "finite_loss": all(np.isfinite(x) for x in r["losses"]),
                     "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if s["dev"].type == "cuda" else None}
    return out


def plain_training(sd: Path, s: dict) -> dict:
    """A diffusers-style InstructPix2Pix step: encoders run every step, fp32 weights, bf16 autocast."""
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler
    from transformers import AutoTokenizer, CLIPTextModel

    from egolego.ldm.components import load_unet

    dev, b, px = s["dev"], s["train_batch"], s["size"]
    unet = load_unet(sd).to(dev).train()
    vae = AutoencoderKL.from_pretrained(sd, subfolder="vae").to(dev, s["dtype"])
    te = CLIPTextModel.from_pretrained(sd, subfolder="text_encoder").to(dev, s["dtype"])
    tok = AutoTokenizer.from_pretrained(sd / "tokenizer")
    noise_s = DDPMScheduler.from_pretrained(sd, subfolder="scheduler")
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    x_in, x_tg = torch.randn(b, 3, px, px, device=dev), torch.randn(b, 3, px, px, device=dev)
    ids = tok([TEXTS[0]] * b, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids.to(dev)

    def step():
        with torch.no_grad():
            z = vae.encode(x_tg.to(s["dtype"])).latent_dist.sample() * vae.config.scaling_factor
            img = vae.encode(x_in.to(s["dtype"])).latent_dist.mode()
            ctx = te(ids)[0]
        noise = torch.randn_like(z)
        t = torch.randint(0, 1000, (b,), device=dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=s["dtype"] == torch.bfloat16):
            pred = unet(torch.cat([noise_s.add_noise(z, noise, t), img], 1), t, encoder_hidden_states=ctx).sample
        F.mse_loss(pred.float(), noise.float()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    dt = timed(step, dev, repeat=s["train_steps"])
    return {"samples_per_s": round(b / dt, 2)}


def generation(sd: Path, s: dict) -> dict:
    """LegoPipeline (label mode) beside StableDiffusionInstructPix2PixPipeline, eager and compiled, same weights."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

    from egolego.ldm.components import load_paper_components
    from egolego.ldm.conditioner import LegoConditioner
    from egolego.ldm.pipeline import LegoPipeline

    dev, dt = s["dev"], s["dtype"]
    p = load_paper_components(sd)
    for k in ("unet", "vae", "text_encoder"):
        p[k] = p[k].to(dev, dt).eval()
    sched = EulerAncestralDiscreteScheduler.from_pretrained(sd, subfolder="scheduler")
    cond = LegoConditioner(vllm_dim=64, cross_attention_dim=p["unet"].config.cross_attention_dim, mode="label").to(dev, dt)
    ours = LegoPipeline(conditioner=cond, scheduler=sched, **p)
    peer = StableDiffusionInstructPix2PixPipeline(scheduler=sched, safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False, **p)
    for pipe in (ours, peer):
        pipe.set_progress_bar_config(disable=True)
    out = {}
    for b in s["gen_batches"]:
        imgs = [Image.new("RGB", (s["size"], s["size"]), (i * 9 % 255, 90, 40)) for i in range(b)]
        prompts = [TEXTS[0]] * b
        kw = dict(num_inference_steps=s["gen_steps"], output_type="pt")
        row = {"ours_s": timed(lambda i=imgs, t=prompts, k=kw: ours(i, t, **k), dev),
               "diffusers_eager_s": timed(lambda i=imgs, t=prompts, k=kw: peer(t, image=i, **k), dev)}
        out[f"batch{b}"] = row
    if s["compile"]:
        peer.unet = torch.compile(p["unet"], mode="max-autotune-no-cudagraphs")
        for b in s["gen_batches"]:
            imgs = [Image.new("RGB", (s["size"], s["size"]))] * b
            out[f"batch{b}"]["diffusers_compiled_s"] = timed(
                lambda b=b, i=imgs: peer([TEXTS[0]] * b, image=i, num_inference_steps=s["gen_steps"], output_type="pt"),
                dev)
    for row in out.values():
        for k in list(row):
            row[k] = round(row[k], 3)
    return out


def enrichment(s: dict) -> dict:
    from bench_vllm import gpu_llava_7b, run
    from egolego.data.llava_text import QUESTION_TEMPLATES
    from egolego.tokenizer import train_tokenizer
    from egolego.vllm.model import build_tiny_llava

    tok = train_tokenizer(TEXTS + QUESTION_TEMPLATES * 3, vocab_size=400, model_max_length=2048)
    model, proc = gpu_llava_7b(tok) if s["dev"].type == "cuda" else build_tiny_llava(tok)
    model.eval()
    r = run(model, proc, s["enrich_batch"], s["new_tokens"])
    return {**r, "plain_tokens_per_s": round(r["plain_pairs_per_s"] * s["new_tokens"], 1)}


def settings(dry: bool) -> dict:
    cuda = torch.cuda.is_available() and not dry
    if not dry and not cuda:
        raise SystemExit("gpu_check: no CUDA device (use --dry-run to exercise the script on the CPU)")
    return {"dev": torch.device("cuda" if cuda else "cpu"), "dtype": torch.bfloat16 if cuda else torch.float32,
            "tiny": dry, "size": 64 if dry else 256, "train_batch": 2 if dry else 32, "train_steps": 1 if dry else 10,
            "gen_batches": (1,) if dry else (1, 16), "gen_steps": 1 if dry else 100, "compile": not dry,
            "enrich_batch": 2 if dry else 16, "new_tokens": 4 if dry else 48, "pairs": 8 if dry else 64,
            "m_tokens": 16 if dry else 256, "d_vllm": 64 if dry else 4096}


def goals(res: dict) -> dict:
    """Each goal of the issue: value, goal, met (None in a dry run: tiny CPU shapes say nothing about a GPU)."""
    g = res["generation"]
    comp = [g[k]["diffusers_compiled_s"] / g[k]["ours_s"] for k in g if "diffusers_compiled_s" in g[k]]
    checks = {"generation_vs_compiled_diffusers": min(comp) if comp else None,
              "batch1_latency_s_max": g["batch1"]["ours_s"],
              "training_vs_plain": res["training"]["label"]["samples_per_s"] / res["plain_training"]["samples_per_s"],
              "enrichment_vs_hf_generate": res["enrichment"]["ratio"]}
    out = {}
    for k, v in checks.items():
        met = None if v is None or res["dry_run"] else (v <= GOALS[k] if k.endswith("_max") else v >= GOALS[k])
        out[k] = {"value": None if v is None else round(v, 3), "goal": GOALS[k], "met": met}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, seconds: checks that the script runs")
    a = ap.parse_args(argv)
    s = settings(a.dry_run)
    torch.manual_seed(0)
    from egolego.paper_shapes import write_sd15
    from egolego.tokenizer import train_tokenizer

    t0 = time.perf_counter()
    res = {"bench": "gpu_check", "dry_run": a.dry_run, "device": torch.cuda.get_device_name() if s["dev"].type == "cuda"
           else "cpu", "date": time.strftime("%Y-%m-%d"), "shapes": "tiny" if s["tiny"] else "SD-1.5 256px / LLaVA-1.5-7B"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tok = train_tokenizer(TEXTS * 10, vocab_size=400, model_max_length=77)
        sd = write_sd15(root / "sd15", tok, tiny=s["tiny"])
        pairs, store = write_data(root, s["pairs"], s["size"], s["m_tokens"], s["d_vllm"])
        res["training"] = training(sd, pairs, store, s)
        res["paper_preset_trains"] = all(r["steps"] == s["train_steps"] and r["finite_loss"] for r in res["training"].values())
        res["plain_training"] = plain_training(sd, s)
        res["generation"] = generation(sd, s)
    res["enrichment"] = enrichment(s)
    res["goals"] = goals(res)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
