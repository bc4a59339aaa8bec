"""Learning: overfit 8 EgoSynth pairs; generated frames end closer to their targets than the inputs are.

About 3 minutes per mode on 2 cores, so only ``lego`` runs in ``make test``; the other four modes are marked
slow (``pytest -m slow tests/ldm/test_learning.py``).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from egolego import config
from egolego.data.manifest import read_manifest, resolve
from egolego.ldm.conditioner import MODES
from egolego.ldm.generate import load_pipeline
from egolego.ldm.train import Trainer
from egolego.ldm.vae_train import train_vae
from egolego.vllm.store import EmbeddingStore


@pytest.fixture(scope="module")
def vae8(pairs8, tmp_path_factory):
    cfg = config.preset("tiny")
    cfg.vae.steps, cfg.vae.batch_size, cfg.vae.holdout = 400, 8, 0.0
    d = tmp_path_factory.mktemp("vae8")
    q = train_vae(cfg, pairs8, d, progress=False)
    assert q["psnr_train_db"] > 22
    return d


def _mse(a, b):
    return float(np.mean((np.asarray(a, np.float32) / 255 - np.asarray(b, np.float32) / 255) ** 2))


@pytest.mark.parametrize("mode", [m if m == "lego" else pytest.param(m, marks=pytest.mark.slow) for m in MODES])
def test_overfit_moves_towards_target(mode, pairs8, store8, vae8, tmp_path):
    cfg = config.preset("tiny")
    c = cfg.ldm
    c.vae, c.conditioning, c.max_steps, c.batch_size, c.checkpoint_every = str(vae8), mode, 600, 8, 1000
    c.ema_decay, c.lr, c.conditioner_dropout = 0.9, 1e-3, 0.0
    Trainer(cfg, pairs8, store8, tmp_path).run(progress=False)
    pipe = load_pipeline(tmp_path / "model")  # the official sampler: Euler-ancestral
    rows = read_manifest(pairs8)
    store = EmbeddingStore(store8)
    embs = [store.get(r["pair_id"]) for r in rows]
    kw = {}
    if mode in ("desc+img", "lego"):
        kw["h_img"] = torch.stack([e.h_img.float() for e in embs])
    if mode in ("desc+txt", "lego"):
        kw["h_txt"] = torch.stack([e.h_txt.float() for e in embs])
        kw["h_len"] = torch.tensor([e.length for e in embs])
    inputs = [Image.open(resolve(pairs8, r["input_path"])).convert("RGB") for r in rows]
    targets = [Image.open(resolve(pairs8, r["target_path"])).convert("RGB") for r in rows]
    prompts = [r["label"] if mode == "label" else r["description"] for r in rows]
    out = pipe(inputs, prompts, num_inference_steps=25, generator=[torch.Generator().manual_seed(i) for i in range(8)],
               **kw).images
    gen = np.mean([_mse(o, t) for o, t in zip(out, targets)])
    base = np.mean([_mse(i, t) for i, t in zip(inputs, targets)])
    assert gen < base, (mode, gen, base)
