"""Generate the action frame of every evaluated pair, resumably: ``EVAL/images/<pair_id>.png``.

A method is a LEGO model folder, a baseline (SDEdit / ProxNPI on a text-to-image model folder), or one of two references that need no model: ``input`` (copy the input frame,
the "nothing happens" baseline) and ``target`` (the ground truth itself, an upper bound for sanity).
Each image is written atomically, so a killed run regenerates only what is missing; each pair has its own
seeded generator, so the result does not depend on the batch size or on where a run was resumed.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import atomic_path
from ..baselines import BASELINES
from ..data.manifest import resolve
from ..errors import InputError
from ..names import safe_name

REFERENCES = ("input", "target")


def _save(im: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


def _embeddings(rows, store, describe, squares):
    """(h_img, h_txt, h_len, descriptions) for a batch, from the store or from the model's own VLLM (loaded once)."""
    if store is not None:
        es = [store.get(r["pair_id"]) for r in rows]
        return (torch.stack([e.h_img.float() for e in es]), torch.stack([e.h_txt.float() for e in es]),
                torch.tensor([e.length for e in es]), [r["description"] for r in rows])
    outs = [describe(im, r["label"], None) for im, r in zip(squares, rows)]
    return (torch.cat([o[1]["h_img"] for o in outs]), torch.cat([o[1]["h_txt"] for o in outs]),
            torch.cat([o[1]["h_len"] for o in outs]), [o[0] for o in outs])


def generate_set(method: str, pairs: Path, rows: list[dict], out: Path, batch_size: int = 8, seed: int = 0,
                 store: str | Path | None = None, progress: bool = True, generator=None, **sampling) -> dict:
    """Write ``out/images/*.png`` for ``rows``; returns {"mode", "generated", "reused", "sampling"}.

    ``sampling`` overrides the model's own steps / scheduler / guidance scales; ``generator`` is an already loaded
    ``FrameGenerator`` for ``method`` (so that a caller can reuse it).
    """
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    todo = [r for r in rows if not (img_dir / f"{safe_name(r['pair_id'])}.png").is_file()]
    if method in REFERENCES:
        for r in todo:
            _save(Image.open(resolve(pairs, r[f"{method}_path"])).convert("RGB"), img_dir / f"{safe_name(r['pair_id'])}.png")
        return {"mode": method, "generated": len(todo), "reused": len(rows) - len(todo), "sampling": None}

    from ..ldm.generate import FrameGenerator
    from ..ldm.modes import check_covered, mode_text, needs_embeddings
    from ..vllm.store import EmbeddingStore

    gen = generator or FrameGenerator(method, **sampling)
    if gen.mode in BASELINES:  # SDEdit / ProxNPI (a BaselineGenerator): label prompts, no embeddings
        from ..baselines.frames import write_baseline_set

        return write_baseline_set(gen, pairs, todo, len(rows), img_dir, batch_size, seed, progress, _save)
    pipe, mode, s = gen.pipe, gen.mode, gen.sampling
    needs_emb = needs_embeddings(mode)
    emb_store = EmbeddingStore(store) if (needs_emb and store is not None) else None
    if needs_emb and emb_store is None and gen.vllm_dir is None:
        from ..ldm.vllm_link import missing_vllm_hint

        raise InputError("store", f"mode {mode!r} needs VLLM embeddings: give the `vllm enrich` store, or a model "
                         f"whose tuned VLLM can be found ({missing_vllm_hint(method)})")
    if emb_store is not None:
        check_covered(emb_store, (r["pair_id"] for r in rows))
    bar = tqdm(total=len(todo), desc=f"generate ({mode})", disable=not progress, unit="frame")
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        squares = [Image.open(resolve(pairs, r["input_path"])).convert("RGB") for r in batch]
        kw, descs = {}, [r["description"] for r in batch]
        if needs_emb:
            h_img, h_txt, h_len, descs = _embeddings(batch, emb_store, gen.describe, squares)
            kw = {"h_img": h_img, "h_txt": h_txt, "h_len": h_len}
        try:
            prompts = [mode_text(mode, r["label"], d) for r, d in zip(batch, descs)]
        except ValueError:
            raise InputError("pairs", f"mode {mode!r} needs descriptions; a pair of {batch[0]['pair_id']}'s batch has "
                             "none (run curation or `vllm enrich` first)") from None
        gens = [torch.Generator().manual_seed(seed * 1_000_003 + hash_id(r["pair_id"])) for r in batch]
        outs = pipe(squares, prompts, num_inference_steps=s.steps, condition_guidance_scale=s.condition_guidance,
                    image_guidance_scale=s.image_guidance, generator=gens, progress=False, **kw).images
        for r, im in zip(batch, outs):
            _save(im, img_dir / f"{safe_name(r['pair_id'])}.png")
        bar.update(len(batch))
    bar.close()
    return {"mode": mode, "generated": len(todo), "reused": len(rows) - len(todo), "sampling": s.__dict__}


def hash_id(pair_id: str) -> int:
    """A stable per-pair seed offset (Python's hash() changes between processes)."""
    return zlib.crc32(pair_id.encode()) % 1_000_003
