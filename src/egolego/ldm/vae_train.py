"""``egolego vae train``: the tiny preset's own autoencoder, trained on EgoSynth frames.

No pretrained autoencoder exists at tiny scale, and a random one cannot reconstruct images, so the tiny
preset trains its ``AutoencoderKL`` (reconstruction L1 + MSE, plus a small KL term) for a few CPU minutes.
The reconstruction PSNR on held-out images is measured and written to ``<out>/quality.json``; the latent
scaling factor is set to 1 / std of the latents, as Stable Diffusion's was chosen.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ..config import Config
from ..data.manifest import read_manifest, resolve
from ..errors import MissingInput
from ..optim import adamw
from .components import tiny_shapes, tiny_vae

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def image_paths(images: str | Path) -> list[Path]:
    """Images of a pairs manifest (input and target frames) or of a folder (recursively)."""
    p = Path(images)
    if (p / "pairs.parquet").is_file() or p.suffix == ".parquet":
        root = p if p.is_dir() else p.parent
        return [resolve(root, r[k]) for r in read_manifest(p) for k in ("input_path", "target_path")]
    if p.is_dir():
        out = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        if out:
            return out
    raise MissingInput("images", f"no images under {p} (give a folder of JPEG/PNG files or a pairs manifest)")


def load_images(paths: list[Path], size: int) -> torch.Tensor:
    """(N, 3, size, size) in [-1, 1]; unreadable files are skipped and counted."""
    arrs, bad = [], 0
    for f in paths:
        try:
            im = Image.open(f).convert("RGB").resize((size, size), Image.LANCZOS)
        except OSError:
            bad += 1
            continue
        arrs.append(np.asarray(im, dtype=np.float32) / 127.5 - 1)
    if bad:
        print(f"vae: skipped {bad} unreadable images")
    if not arrs:
        raise ValueError("no readable images")
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (computed on [0, 1])."""
    mse = F.mse_loss((a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def evaluate(vae, images: torch.Tensor, batch: int = 64) -> float:
    vae.eval()
    rec = torch.cat([vae.decode(vae.encode(images[i:i + batch]).latent_dist.mode()).sample
                     for i in range(0, len(images), batch)])
    return psnr(rec, images)


def train_vae(cfg: Config, images: str | Path, out: str | Path, max_images: int = 4000, progress: bool = True) -> dict:
    v = cfg.vae
    out = Path(out)
    paths = image_paths(images)
    rng = np.random.default_rng(v.seed)
    if len(paths) > max_images:
        paths = [paths[i] for i in sorted(rng.choice(len(paths), max_images, replace=False))]
    images = load_images(paths, cfg.image_size)
    order = rng.permutation(len(images))
    n_hold = max(1, int(len(images) * v.holdout)) if len(images) > 1 else 0
    hold, train = images[order[:n_hold]], images[order[n_hold:]] if n_hold else images
    torch.manual_seed(v.seed)
    vae = tiny_vae(tiny_shapes(cfg)).train()
    opt = adamw(vae.parameters(), v.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, v.steps, eta_min=v.lr * 0.05)
    g = torch.Generator().manual_seed(v.seed)
    t0 = time.perf_counter()
    bar = tqdm(range(v.steps), desc="vae", disable=not progress)
    for _ in bar:
        idx = torch.randint(0, len(train), (v.batch_size,), generator=g)
        x = train[idx]
        flip = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + v.kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    vae.eval()
    with torch.no_grad():
        lat = torch.cat([vae.encode(train[i:i + 64]).latent_dist.mode() for i in range(0, min(len(train), 512), 64)])
    vae.register_to_config(scaling_factor=float(1.0 / lat.std()))
    quality = {"psnr_heldout_db": round(evaluate(vae, hold), 2) if n_hold else None,
               "psnr_train_db": round(evaluate(vae, train[:256]), 2), "heldout_images": n_hold,
               "train_images": len(train), "steps": v.steps, "seconds": round(time.perf_counter() - t0, 1),
               "scaling_factor": round(vae.config.scaling_factor, 5), "image_size": cfg.image_size}
    vae.save_pretrained(str(out))
    (out / "quality.json").write_text(json.dumps(quality, indent=1))
    return quality
