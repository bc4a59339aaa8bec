"""``egolego vllm enrich``: a description R and the embeddings H_i, H_t for every pair.

R comes from batched generation (left padding, attention masks; greedy by default, sampling with a seed as an
option); H_i / H_t are kept from that same generation by hooks (``generate_with_states``; the same rows as the
teacher-forced pass of ``embed.py``, which ``egolego generate`` uses for a given description). Everything lands in an
embedding store (``store.py``); the descriptions also go into the pairs manifest. Pairs already in the store
are skipped, so an interrupted run resumes; ``--num-shards/--shard-index`` (or ``accelerate launch``, which
sets them from the process rank) split the pairs between writers that never share a file.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import time
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import write_json as atomic_json
from ..config import VllmConfig
from ..data.llava_text import INFERENCE_TEMPLATE, answer_text, normalise_label, prompt_text, question
from ..data.manifest import action_rows, manifest_file, read_manifest, resolve, update_column
from ..errors import InputError
from .embed import teacher_forced_states
from .model import fingerprint, image_tokens, load_llava
from .settings import load_settings
from .store import EmbeddingStore, StoreWriter

DEFAULTS = VllmConfig  # the owner of the defaults below: the config's vllm section (its class defaults)


def _generate(model, processor, images, actions: list[str], template: str, max_new_tokens: int, temperature: float,
              seed: int, conversation: str = DEFAULTS.conversation) -> tuple[torch.Tensor, int]:
    """Batched generation with left padding: (all token ids (B, P + T), prompt length P). ``temperature`` 0 is
    greedy; above 0 it samples, seeded (the release sampled at 0.2)."""
    tok = processor.tokenizer
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        prompts = [prompt_text(question(template, normalise_label(a)), conversation) for a in actions]
        enc = processor(images=images, text=prompts, return_tensors="pt", padding=True).to(model.device)
        if "pixel_values" in enc:
            enc["pixel_values"] = enc["pixel_values"].to(model.dtype)
        sample = temperature > 0
        if sample:
            torch.manual_seed(seed)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=sample,
                             temperature=temperature if sample else None, top_p=None, top_k=None,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    finally:
        tok.padding_side = side
    return out, enc["input_ids"].shape[1]


@torch.no_grad()
def generate_descriptions(model, processor, images, actions: list[str], template: str = INFERENCE_TEMPLATE,
                          max_new_tokens: int = DEFAULTS.max_new_tokens, temperature: float = DEFAULTS.temperature,
                          seed: int = 0, conversation: str = DEFAULTS.conversation) -> list[str]:
    """Batched generation with left padding; returns the decoded answers."""
    out, p_len = _generate(model, processor, images, actions, template, max_new_tokens, temperature, seed, conversation)
    return [processor.tokenizer.decode(row, skip_special_tokens=True).strip() for row in out[:, p_len:]]


def _module(model, suffix: str):
    found = [m for name, m in model.named_modules() if name.endswith(suffix)]
    if not found:
        raise ValueError(f"no module named *{suffix} in {type(model).__name__}")
    return found[0]


@torch.no_grad()
def generate_with_states(model, processor, images, actions: list[str], template: str = INFERENCE_TEMPLATE,
                         max_new_tokens: int = DEFAULTS.max_new_tokens, text_rows: int = DEFAULTS.text_rows,
                         temperature: float = DEFAULTS.temperature, seed: int = 0,
                         conversation: str = DEFAULTS.conversation):
    """(descriptions, H_i (B, M, D), H_t (B, text_rows, D) zero-padded, lengths (B,)) from the generation itself.

    Hooks keep what generation computes anyway: the projector's output (H_i) and, at every forward step, the
    final norm's output at the last position (step 0: the prompt's last position; step k: generated token k) —
    the rows of H_t, exactly as ``embed.teacher_forced_states`` defines them, without its second pass over
    prompt + R nor its per-sample processor calls. Rows stop at the row that produced EOS (EOS itself is never
    processed); a description cut by ``max_new_tokens`` has one row fewer than the teacher-forced pass would give.
    """
    steps: list[torch.Tensor] = []
    img: list[torch.Tensor] = []
    hooks = [_module(model, "language_model.norm").register_forward_hook(lambda m, a, o: steps.append(o[:, -1])),
             _module(model, "multi_modal_projector").register_forward_hook(lambda m, a, o: img.append(o))]
    try:
        out, p_len = _generate(model, processor, images, actions, template, max_new_tokens, temperature, seed,
                               conversation)
    finally:
        for h in hooks:
            h.remove()
    tok = processor.tokenizer
    new = out[:, p_len:]  # (B, T)
    states = torch.stack(steps, 1)  # (B, S, D): S forward steps = T generated tokens
    b, d = states.shape[0], states.shape[-1]
    h_txt = torch.zeros(b, text_rows, d, dtype=states.dtype, device=states.device)
    lengths = torch.zeros(b, dtype=torch.long)
    for i in range(b):
        eos = (new[i] == tok.eos_token_id).nonzero()
        n = min(int(eos[0]) + 1 if len(eos) else states.shape[1], text_rows)
        h_txt[i, :n] = states[i, :n]
        lengths[i] = n
    descs = [tok.decode(row, skip_special_tokens=True).strip() for row in new]
    return descs, img[0], h_txt, lengths


def _read_image(path: Path):
    try:
        im = Image.open(path)
        im.load()
        return im.convert("RGB"), None
    except (OSError, ValueError) as e:
        return None, f"{path}: {e}"


def enrich(model_dir: str | Path, pairs: str | Path, out: str | Path, batch_size: int = 16, num_shards: int = 1,
           shard_index: int = 0, template: str | None = None, max_new_tokens: int | None = None,
           text_rows: int | None = None, sample: bool = False, seed: int = 0, dtype: str | None = None,
           shard_size: int = 256, progress: bool = True, stop_after_batches: int | None = None,
           settings: VllmConfig | None = None) -> dict:
    """Enrich this shard's pairs; returns a summary (done, skipped, bytes per pair).

    ``template``, ``max_new_tokens``, ``text_rows`` and ``dtype`` left at None come from ``settings`` (a
    ``vllm`` config), else from the config saved in ``model_dir`` at tuning time (``settings.py``), as do the
    conversation format and the temperature (``sample`` turns sampling on at 0.2 for a greedy model).
    """
    if not 0 <= shard_index < num_shards:
        raise InputError("shard_index", f"must be in [0, {num_shards}), got {shard_index}")
    v = settings or load_settings(model_dir)
    template = template or v.inference_template
    max_new_tokens = max_new_tokens or v.max_new_tokens
    text_rows = text_rows or v.text_rows
    dtype = dtype or v.store_dtype
    temperature = v.temperature or (0.2 if sample else 0.0)
    model, proc = load_llava(model_dir)
    model.eval()
    rows = sorted(action_rows(read_manifest(pairs)), key=lambda r: r["pair_id"])  # a timeline pair reads its action's
    mine = [r for i, r in enumerate(rows) if i % num_shards == shard_index]
    out = Path(out)
    done = EmbeddingStore(out) if out.exists() else None
    todo = [r for r in mine if done is None or r["pair_id"] not in done]
    d = model.config.text_config.hidden_size
    writer_id = f"{shard_index:03d}of{num_shards:03d}"
    writer = StoreWriter(out, writer_id, (image_tokens(model), d), (text_rows, d), fingerprint(model), dtype, shard_size,
                         vllm=model_dir)
    desc_file = out / f"descriptions-{writer_id}.json"
    descriptions = json.loads(desc_file.read_text()) if desc_file.exists() else {}
    skipped: list[str] = []
    t0, n_tokens, n_done = time.perf_counter(), 0, 0
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    for b_i, chunk in enumerate(tqdm(batches, desc="vllm enrich", disable=not progress)):
        if stop_after_batches is not None and b_i >= stop_after_batches:
            break
        loaded = [(r, *_read_image(resolve(pairs, r["input_path"]))) for r in chunk]
        skipped += [f"{r['pair_id']}\t{err}" for r, im, err in loaded if im is None]
        ok = [(r, im) for r, im, err in loaded if im is not None]
        if not ok:
            continue
        imgs, labels = [im for _, im in ok], [r["label"] for r, _ in ok]
        descs, h_img, h_txt, lens = generate_with_states(model, proc, imgs, labels, template, max_new_tokens, text_rows,
                                                         temperature, seed + b_i, v.conversation)
        for (r, _), desc, hi, ht, n in zip(ok, descs, h_img, h_txt, lens):
            descriptions[r["pair_id"]] = desc
            writer.add(r["pair_id"], hi, ht[:n], int(n))
            n_tokens += int(n)
            n_done += 1
        if len(writer._rows) == 0:  # a shard was just flushed: keep the descriptions in step with it
            atomic_json(desc_file, descriptions, sort_keys=True)
    writer.close()
    stored = EmbeddingStore(out)
    atomic_json(desc_file, {k: v for k, v in descriptions.items() if k in stored}, sort_keys=True)
    if skipped:
        (out / f"enrich_report-{writer_id}.txt").write_text("\n".join(skipped) + "\n")
    merge_descriptions(out, pairs)
    dt = time.perf_counter() - t0
    return {"done": n_done, "skipped": len(skipped), "stored": len(stored), "seconds": round(dt, 2),
            "pairs_per_s": round(n_done / dt, 2) if dt else None, "tokens_per_s": round(n_tokens / dt, 1) if dt else None,
            "bytes_per_pair": round(stored.bytes_per_pair()), "report": str(out / f"enrich_report-{writer_id}.txt") if skipped else None}


def merge_descriptions(store: str | Path, pairs: str | Path) -> int:
    """Write every writer's descriptions into the manifest (under a file lock: writers may finish together)."""
    merged = {}
    for f in sorted(Path(store).glob("descriptions-*.json")):
        merged.update(json.loads(f.read_text()))
    lock = manifest_file(pairs).with_name("pairs.parquet.lock")
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        update_column(pairs, "description", merged)
    return len(merged)


def describe(loaded: tuple, v: VllmConfig, image: Image.Image, action: str, seed: int = 0) -> str:
    """One frame's description by a loaded (model, processor), asked as its settings ``v`` say: the inference
    template, token budget, conversation format and temperature (``egolego generate`` and the web app alike)."""
    return generate_descriptions(*loaded, [image], [action], v.inference_template, v.max_new_tokens, v.temperature,
                                 seed, v.conversation)[0]


def describe_and_embed(model_dir: str | Path, image: Image.Image, action: str, rows: int,
                       template: str | None = None, max_new_tokens: int | None = None,
                       description: str | None = None, loaded: tuple | None = None) -> tuple[str, dict]:
    """For ``egolego generate``: the tuned VLLM's description of one image (or the given one) and its embeddings.

    ``rows`` must be the conditioner's N; template and token budget default to the model folder's settings.
    ``loaded`` = (model, processor) from ``load_llava`` lets a caller that generates many frames load the VLLM once.
    """
    v = load_settings(model_dir)
    v = dataclasses.replace(v, inference_template=template or v.inference_template,
                            max_new_tokens=max_new_tokens or v.max_new_tokens)
    model, proc = loaded or load_llava(model_dir)
    model.eval()
    desc = description or describe((model, proc), v, image, action)
    prompt = prompt_text(question(v.inference_template, normalise_label(action)), v.conversation)
    h_img, h_txt, lens = teacher_forced_states(model, proc, [image], [prompt], [answer_text(desc)], rows)
    return desc, {"h_img": h_img.float(), "h_txt": h_txt.float(), "h_len": lens}
