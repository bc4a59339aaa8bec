"""``egolego vllm tune``: visual instruction tuning (paper §3.1, D.3).

The vision tower is frozen (the tiny preset pre-trains its own first: ``vision_pretrain``); the
projector and the language model are trained, in full or with LoRA (peft). Cross-entropy on the answer tokens
only. AdamW, warm-up ratio 0.03 then cosine; the effective batch comes from gradient accumulation. Runs under
accelerate (bf16, many GPUs; see the README for a DeepSpeed ZeRO-3 / FSDP recipe at 7B-13B). Checkpoints are
written atomically and ``--resume`` continues from the last one with the same data order.

One optimizer step is the same computation whatever the layout: P processes x batch b x ``grad_accum`` a
cover the same P*b*a samples of the seeded data stream as 1 process x batch P*b*a, the loss is the mean over
*all* answer tokens of the step (summed per micro-batch, divided by the token count gathered from every
process and micro-batch, as transformers' Trainer does since 4.46), template draws are keyed by the sample's
position in the stream, and the schedule steps once per optimizer step (not prepared: accelerate would step
a prepared one P times per call).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm
from transformers import AutoTokenizer, get_cosine_schedule_with_warmup

from ..checkpoints import list_checkpoints, load_latest, refuse_stale, save_checkpoint, truncate_log
from ..config import Config, save
from ..data.llava_records import read_json
from ..data.llava_text import QUESTION_TEMPLATES, normalise_label, prompt_text, question
from ..errors import InputError
from ..hf_quiet import quiet_loading
from ..optim import adamw
from ..precision import accelerator
from .conversation import IGNORE, build_ids, sample_texts
from .embed import collate
from .model import build_tiny_llava, freeze_unused_vision, load_llava
from .settings import save_settings

PIXEL_CACHE_BYTES = 2 * 2**30  # tuning keeps at most this much of the images' pixel values in memory


def load_records(data: str | Path, images: str | Path) -> tuple[list[dict], list[str]]:
    """Records whose image can be read; the others are reported (path and reason), not trained on."""
    recs, bad = [], []
    for r in read_json(data):
        p = Path(images) / r["image"]
        try:
            with Image.open(p) as im:
                im.verify()
            recs.append(r)
        except (OSError, ValueError) as e:
            bad.append(f"{r.get('id')}: {p}: {e}")
    if not recs:
        raise ValueError(f"no readable images for {data} under {images}")
    return recs, bad


def build_model(cfg: Config, out: Path):
    v = cfg.vllm
    if v.from_model or v.model:
        if not v.model:
            raise InputError("model", f"the {cfg.preset} preset tunes a pre-trained LLaVA (vllm.from_model: true): "
                             "give vllm.model, a local HF-format LLaVA folder")
        return load_llava(v.model, torch.bfloat16 if v.bf16 else torch.float32)
    if not v.tokenizer:
        raise ValueError("the tiny preset needs vllm.tokenizer: a folder from `egolego tokenizer` (with <image>)")
    tok = AutoTokenizer.from_pretrained(v.tokenizer, local_files_only=True)
    return build_tiny_llava(tok, v.tiny_llava, seed=v.seed, vision_tower=v.vision_tower)


class VllmTuner:
    """Visual instruction tuning (paper §3.1, D.3) of a LLaVA on conversation JSON under accelerate.

    The vision tower is frozen (the tiny preset may train it), the projector and the LLM (or LoRA adapters) are
    trained with the loss on answer tokens only; ``run`` checkpoints to ``<out>/checkpoints`` (resumable) and saves
    ``<out>/model`` with the ``vllm`` settings it was tuned with, which ``vllm enrich`` reads.
    """

    def __init__(self, cfg: Config, data: str | Path, images: str | Path, out: str | Path):
        self.cfg, self.out, self.images = cfg, Path(out), Path(images)
        self.out.mkdir(parents=True, exist_ok=True)
        v = cfg.vllm
        self.acc = accelerator("bf16" if v.bf16 else "no", v.grad_accum)
        self.records, self.bad = load_records(data, images)
        self.model, self.proc = build_model(cfg, self.out)
        self.model.requires_grad_(True)
        if not v.train_vision_tower:
            self.model.model.vision_tower.requires_grad_(False)
        freeze_unused_vision(self.model)  # never reach the loss: DDP would stop at step 2
        if v.lora:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError:
                raise InputError("lora", "needs the peft package (pip install peft)") from None
            lm_params = [p for n, p in self.model.named_parameters() if "multi_modal_projector" in n]
            self.model = get_peft_model(self.model, LoraConfig(r=v.lora_rank, lora_alpha=2 * v.lora_rank,
                                                               target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
            for p in lm_params:
                p.requires_grad_(True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = adamw(params, v.lr, weight_decay=0.0)
        self.steps_per_epoch = math.ceil(len(self.records) / (v.batch_size * v.grad_accum * self.acc.num_processes))
        self.total = self.steps_per_epoch * v.epochs
        self.sched = get_cosine_schedule_with_warmup(self.opt, int(round(v.warmup_ratio * self.total)), self.total)
        self.model, self.opt = self.acc.prepare(self.model, self.opt)
        self.acc.register_for_checkpointing(self.sched)  # saved and restored with the state, stepped by us
        self.model.train()
        self._perms: dict[int, torch.Tensor] = {}
        self._pixels: dict[str, torch.Tensor] = {}  # see _encoded
        self._prompts: dict[tuple, list[int]] = {}
        self._pixel_bytes = 0

    def positions(self, micro: int) -> range:
        """This process's positions in the sample stream for micro-step ``micro`` (P*b consecutive per micro-step)."""
        b = self.cfg.vllm.batch_size
        start = micro * b * self.acc.num_processes + self.acc.process_index * b
        return range(start, start + b)

    def _record(self, pos: int) -> int:
        n, epoch = len(self.records), pos // len(self.records)
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(n, generator=torch.Generator().manual_seed(self.cfg.vllm.seed * 7919 + epoch))}
        return int(self._perms[epoch][pos % n])

    def batch(self, micro: int) -> dict:
        v = self.cfg.vllm
        pos = list(self.positions(micro))
        recs = [self.records[self._record(p)] for p in pos]
        texts = [sample_texts(r, v.conversation) for r in recs]
        if v.resample_templates:  # a fresh template per sample and epoch (paper §3.3), when the label is known
            def draw(p: int) -> str:  # keyed by the stream position: the same whatever the batch layout
                g = torch.Generator().manual_seed(v.seed * 1_000_003 + p)
                return QUESTION_TEMPLATES[int(torch.randint(len(QUESTION_TEMPLATES), (1,), generator=g))]
            texts = [(prompt_text(question(draw(p), normalise_label(r["label"])), v.conversation), t[1]) if r.get("label") else t
                     for p, r, t in zip(pos, recs, texts)]
        seqs, labs, pix, p_lens = [], [], [], []
        for r, (prompt, answer) in zip(recs, texts):
            expanded, pixels = self._encoded(r["image"], prompt)
            ids, lab = build_ids(self.proc.tokenizer, expanded, prompt, answer)
            seqs.append(ids)
            labs.append(lab)
            pix.append(pixels)
            p_lens.append(len(expanded))
        ids, mask, labels, pix, _ = collate(self.proc.tokenizer, seqs, labs, pix, p_lens)
        dev = self.acc.device
        return {"input_ids": ids.to(dev), "attention_mask": mask.to(dev), "labels": labels.to(dev),
                "pixel_values": pix.to(dev, self.acc.unwrap_model(self.model).dtype)}

    def _encoded(self, image: str, prompt: str) -> tuple[list[int], torch.Tensor]:
        """(the processor's ids of ``prompt`` with ``<image>`` expanded, the image's pixel values), memoised: the
        processor call cost ~1.3 ms a sample, a quarter of a tiny tuning step. Pixel values are kept per image while
        they fit ``PIXEL_CACHE_BYTES``; the expansion per prompt and processed image size (the number of image
        tokens depends on nothing else), so a hit is exactly what the processor returns."""
        pixels = self._pixels.get(image)
        if pixels is not None and (prompt, tuple(pixels.shape)) in self._prompts:
            return self._prompts[(prompt, tuple(pixels.shape))], pixels
        with Image.open(self.images / image) as im:
            enc = self.proc(images=[im.convert("RGB")], text=[prompt], return_tensors="pt")
        pixels = enc["pixel_values"][0]
        self._prompts[(prompt, tuple(pixels.shape))] = enc["input_ids"][0].tolist()
        if self._pixel_bytes + pixels.nbytes <= PIXEL_CACHE_BYTES:
            self._pixels[image] = pixels
            self._pixel_bytes += pixels.nbytes
        return self._prompts[(prompt, tuple(pixels.shape))], pixels

    def step(self, step: int) -> float:
        """One optimizer step; returns the loss: the mean over every answer token of the step, all processes."""
        v, acc = self.cfg.vllm, self.acc
        batches = [self.batch(step * v.grad_accum + a) for a in range(v.grad_accum)]
        n_local = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
        n_all = float(acc.reduce(torch.tensor(float(n_local), device=acc.device), "sum"))  # answer tokens, all ranks
        # DDP averages gradients over the P processes and accelerate's backward divides by grad_accum: undo both,
        # so that the gradient is the one of (sum of token losses) / n_all, exactly as on one process.
        scale = acc.num_processes * v.grad_accum / max(n_all, 1.0)
        total = torch.zeros((), device=acc.device)
        for a, b in enumerate(batches):
            labels = b.pop("labels")
            with acc.no_sync(self.model) if a < v.grad_accum - 1 else nullcontext():
                logits = self.model(**b).logits  # (B, T, V)
                loss_sum = token_loss_sum(logits, labels)
                acc.backward(loss_sum * scale)
            total += loss_sum.detach()
        acc.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return float(acc.reduce(total, "sum")) / max(n_all, 1.0)

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.out)

    def run(self, resume: bool = False, progress: bool = True, stop_after: int | None = None) -> dict:
        v = self.cfg.vllm
        refuse_stale(self.out, resume)
        start = load_latest(self.acc, self.out)[0] if resume else 0
        log = self.out / "tune_log.jsonl"
        if self.acc.is_main_process:
            truncate_log(log, start, resume)
            save(self.cfg, self.out / "config.yaml")
        end = self.total if stop_after is None else min(self.total, start + stop_after)
        losses, t0, n_proc = [], time.perf_counter(), self.acc.num_processes
        for step in tqdm(range(start, end), initial=start, total=self.total, desc="vllm tune",
                         disable=not (progress and self.acc.is_main_process)):
            torch.manual_seed(v.seed * 1_000_003 + step)
            lr = self.sched.get_last_lr()[0]  # the rate this step uses
            total = self.step(step)
            losses.append(total)
            if self.acc.is_main_process:
                with open(log, "a") as f:
                    f.write(json.dumps({"step": step + 1, "loss": round(total, 6), "lr": lr,
                                        "samples_per_s": round(n_proc * v.batch_size * v.grad_accum * (step + 1 - start)
                                                               / (time.perf_counter() - t0), 2)}) + "\n")
            if (step + 1) % v.checkpoint_every == 0 or step + 1 == self.total:
                save_checkpoint(self.acc, self.out, step + 1, v.keep_checkpoints)
        if end == self.total:
            self.export()
        return {"start": start, "end": end, "losses": losses, "skipped_images": self.bad}

    def export(self) -> Path:
        model = self.acc.unwrap_model(self.model)
        if self.cfg.vllm.lora:
            model = model.merge_and_unload()
        dest = self.out / "model"
        if self.acc.is_main_process:
            with quiet_loading():  # transformers draws a "Writing model shards" bar for a one-file model
                model.save_pretrained(str(dest))
            self.proc.save_pretrained(str(dest))
            save_settings(self.cfg.vllm, dest)  # enrichment reads template, token budget, rows, dtype from here
            if self.bad:
                (dest / "skipped_images.txt").write_text("\n".join(self.bad) + "\n")
        return dest


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of next-token cross-entropies over the answer tokens: (B, T, V), (B, T) -> scalar (float32)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE,
                           reduction="sum")
