"""``egolego train``: train the LEGO LDM under accelerate (CPU, one or many GPUs).

Trained: the UNet and the conditioner (σ, μ, π — the official optimiser omits the latter). Frozen: VAE and
text encoder. AdamW, constant lr after a linear warm-up, L2 on the recipe's
target (noise, v, x_0 or the flow velocity; optionally min-SNR or change-weighted), EMA of UNet *and* conditioner, gradient clipping.
Classifier-free-guidance dropout as InstructPix2Pix and the official code: one uniform draw r per sample;
r < 0.05 drops C, 0.05 <= r < 0.10 drops C and the image, 0.10 <= r < 0.15 drops the image.

Every random number of micro-step m comes from generators seeded by (seed, m, process): the data order is a
seeded permutation per epoch, so a resumed run replays exactly the steps a straight run would have taken.
Checkpoints (model, EMA, optimizer, schedule, RNG, step) are written to a temp folder and renamed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers.optimization import get_scheduler
from torch import nn
from tqdm import tqdm

from ..checkpoints import list_checkpoints, load_latest, refuse_stale, save_checkpoint, truncate_log
from ..config import Config, save
from ..data.manifest import read_manifest, resolve
from ..hf_quiet import quiet_loading
from ..optim import adamw, ema
from ..precision import accelerator
from .build import build_components
from .components import progress_labels
from .data import LegoPairs, flip_allowed, load_image, swap_sides
from .pipeline import LegoPipeline, sampling_settings
from .sampler_names import FLOW_SAMPLERS
from .vllm_link import record_vllm


class LegoDenoiser(nn.Module):
    """UNet + conditioner as one module (one DDP wrapper, one optimizer)."""

    def __init__(self, unet, conditioner):
        super().__init__()
        self.unet, self.conditioner = unet, conditioner

    def forward(self, z_t, image_lat, t, text_states, h_img, h_txt, h_len, drop_c, progress=None):
        context = self.conditioner(text_states, h_img, h_txt, h_len, drop_vllm=drop_c)  # (B, L, D)
        mask = self.conditioner.attention_mask(text_states.shape[1], len(context), h_len, drop_c)  # (B, L) or None
        labels = progress_labels(self.unet, progress, len(z_t), z_t.device)  # (B,) or None
        return self.unet(torch.cat([z_t, image_lat], dim=1), t, encoder_hidden_states=context,
                         encoder_attention_mask=mask, class_labels=labels).sample


def cfg_dropout(r: torch.Tensor, p: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """(drop condition, drop image) from one uniform draw per sample: p / p / p bands."""
    return r < 2 * p, (r >= p) & (r < 3 * p)


def lr_schedule(opt, c, processes: int = 1):
    """``ldm.lr_schedule``: constant after the warm-up (the official recipe), or a cosine decay to 0 at ``max_steps``.

    A prepared scheduler steps once per process per call (accelerate), hence the step counts x processes. The cosine
    is drawn over ``max_steps``, so a run resumed with a larger ``max_steps`` continues on the longer curve.
    """
    names = {"constant": "constant_with_warmup", "cosine": "cosine"}
    if c.lr_schedule not in names:
        raise ValueError(f"ldm.lr_schedule must be one of {', '.join(names)}; got {c.lr_schedule!r}")
    return get_scheduler(names[c.lr_schedule], opt, num_warmup_steps=c.warmup_steps * processes,
                         num_training_steps=c.max_steps * processes)


def _gen(seed: int, micro: int, proc: int, salt: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + micro * 7_919 + proc * 104_729 + salt) % 2**63)


def epoch_indices(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=_gen(seed, epoch, 0, salt=17))


class Trainer:
    """Trains the LEGO LDM (UNet + conditioner σ, μ, π) on a pairs manifest (+ embedding store) under accelerate.

    ``run`` trains to ``ldm.max_steps`` with EMA, CFG dropout and checkpoints in ``<out>/checkpoints`` (resumable),
    logging to ``<out>/train_log.jsonl``; ``export`` writes the EMA weights as ``<out>/model`` with the config it
    was trained with (``lego_config.yaml``) and the VLLM that wrote its embeddings (``vllm.json``).
    """

    def __init__(self, cfg: Config, pairs: str | Path, embeddings: str | Path | None, out: str | Path):
        self.cfg, self.out = cfg, Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        c = cfg.ldm
        self.acc = accelerator(c.mixed_precision, c.grad_accum)
        self.ds = LegoPairs(pairs, "train", embeddings, self.data_mode, cfg.image_size, c.train_pairs, c.progress,
                            c.progress_done_repeat, c.progress_mid_repeat)
        store = self.ds.store
        m, dv = store.image_shape if store else (1, 1)
        n = store.text_shape[0] if store else cfg.vllm.text_rows
        if store and store.text_shape[1] != dv:
            raise ValueError("H_i and H_t widths differ in the embedding store")
        with self.acc.main_process_first():  # rank 0 trains and saves the tiny tokenizer; the others then load it
            self.parts = self.build_parts(dv, m, n, pairs)
        self.flip = flip_allowed(self.data_mode, c.flip)
        if c.gradient_checkpointing:
            self.parts["unet"].enable_gradient_checkpointing()
        self.model = self.make_model().train()
        self.ema = ema(self.model.parameters(), c.ema_decay)
        self.opt = adamw(self.model.parameters(), c.lr)
        self.sched = lr_schedule(self.opt, c, self.acc.num_processes)
        self.model, self.opt, self.sched = self.acc.prepare(self.model, self.opt, self.sched)
        self.dev = self.acc.device
        self.ema.to(self.dev)  # prepare() moved the model; the EMA shadows must follow (diffusers does the same)
        self._cache_text()
        self._cache_latents()

    # ------------------------------------------------------------------ what a subclass may change
    # (baselines/t2i.py trains a text-to-image model with this loop: label prompts, a UNet without the image input)

    @property
    def data_mode(self) -> str:
        """The dataset's conditioning mode (which text the prompts are, which embeddings are loaded)."""
        return self.cfg.ldm.conditioning

    def build_parts(self, vllm_dim: int, image_tokens: int, text_tokens: int, pairs) -> dict:
        return build_components(self.cfg, vllm_dim, image_tokens, text_tokens, manifest=pairs, work=self.out)

    def make_model(self) -> nn.Module:
        return LegoDenoiser(self.parts["unet"], self.parts["conditioner"])

    # ------------------------------------------------------------------ caches (frozen parts run once)

    @torch.no_grad()
    def _cache_text(self) -> None:
        from .components import encode_text
        prompts = {self.ds.prompt(i) for i in range(len(self.ds))} | {""}
        if self.flip:
            prompts |= {swap_sides(p) for p in prompts}
        prompts = sorted(prompts)
        te = self.parts["text_encoder"].to(self.dev)
        states = torch.cat([encode_text(self.parts["tokenizer"], te, prompts[i:i + 64]) for i in range(0, len(prompts), 64)])
        self.text = {p: states[i] for i, p in enumerate(prompts)}

    @torch.no_grad()
    def _cache_latents(self) -> None:
        """Posterior mean and std of every input / target (and of their mirror images when flipping)."""
        vae = self.parts["vae"].to(self.dev)
        self.lat: dict[str, torch.Tensor] = {}
        keys = ("in", "tg") + (("in_f", "tg_f") if self.flip else ())
        chunks = {k: [] for k in keys}
        for i in range(0, len(self.ds), 32):
            rows = self.ds.rows[i:i + 32]  # images only: the embeddings are cached below, once
            for name, field in (("in", "input_path"), ("tg", "target_path")):
                x = torch.stack([load_image(resolve(self.ds.root, r[field]), self.ds.size) for r in rows])
                x = x.to(self.dev, vae.dtype)
                variants = [(name, x)] + ([(name + "_f", x.flip(-1))] if self.flip else [])
                for key, xx in variants:
                    d = vae.encode(xx).latent_dist
                    chunks[key].append(torch.stack([d.mean, d.std], 1).cpu())  # (b, 2, c, h, w)
        self.lat = {k: torch.cat(v) for k, v in chunks.items()}
        self.emb = None
        if self.ds.store is not None:
            items = [self.ds.store.get(r["pair_id"]) for r in self.ds.rows]
            self.emb = (torch.stack([e.h_img.float() for e in items]), torch.stack([e.h_txt.float() for e in items]),
                        torch.tensor([e.length for e in items]))

    # ------------------------------------------------------------------ one micro-step

    def batch_indices(self, micro: int) -> torch.Tensor:
        c, n = self.cfg.ldm, len(self.ds)
        gb = c.batch_size * self.acc.num_processes
        start = micro * gb + self.acc.process_index * c.batch_size
        pos = torch.arange(start, start + c.batch_size)
        epochs = pos // n
        out = torch.empty_like(pos)
        for e in epochs.unique().tolist():
            perm = epoch_indices(n, c.seed, e)
            sel = epochs == e
            out[sel] = perm[pos[sel] % n]
        return out

    def sample_draws(self, micro: int, b: int, shape: tuple) -> dict:
        """Every random number of this micro-step's samples, each from a generator keyed by the sample's position
        in the data stream (not by step or process), in a fixed order per sample: so 2 processes x batch b, 1 process
        x batch 2b and 2 accumulated micro-steps of b draw the same numbers for the same samples."""
        c, p = self.cfg.ldm, self.acc.num_processes
        first = micro * c.batch_size * p + self.acc.process_index * c.batch_size
        flow = c.objective == "flow"
        n_t = self.parts["noise_scheduler"].config.num_train_timesteps
        out = {k: [] for k in ("flip", "post", "noise", "t", "r")}
        for i in range(b):
            g = _gen(c.seed, first + i, 0, salt=1)
            out["flip"].append(torch.rand((), generator=g) < 0.5)
            out["post"].append(torch.randn(shape, generator=g))
            out["noise"].append(torch.randn(shape, generator=g))
            out["t"].append(torch.rand((), generator=g) if flow else torch.randint(0, n_t, (), generator=g))
            out["r"].append(torch.rand((), generator=g))
        return {k: torch.stack(v) for k, v in out.items()}

    def micro_step(self, micro: int) -> torch.Tensor:
        c = self.cfg.ldm
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=_gen(c.seed, micro, self.acc.process_index))))
        # ^ dropout inside π: per micro-step and process (set conditioner_dropout 0 for exact batch equivalences)
        idx = self.batch_indices(micro)
        b = len(idx)
        d = self.sample_draws(micro, b, tuple(self.lat["tg"].shape[2:]))
        flipped = d["flip"] if self.flip else torch.zeros(b, dtype=torch.bool)
        src_in = torch.where(flipped[:, None, None, None, None], self.lat["in_f"][idx], self.lat["in"][idx]) \
            if self.flip else self.lat["in"][idx]
        src_tg = torch.where(flipped[:, None, None, None, None], self.lat["tg_f"][idx], self.lat["tg"][idx]) \
            if self.flip else self.lat["tg"][idx]
        sf = self.parts["vae"].config.scaling_factor
        x_lat = src_in[:, 0]  # (B, c, h, w): posterior mode, unscaled (InstructPix2Pix)
        z0 = (src_tg[:, 0] + src_tg[:, 1] * d["post"]) * sf
        noise = d["noise"]
        z_t, t = self.noised(z0, noise, d["t"])
        drop_c, drop_x = cfg_dropout(d["r"])
        prompts = [self.ds.prompt(int(i)) for i in idx]
        prompts = [("" if dc else swap_sides(p) if f else p) for p, f, dc in zip(prompts, flipped.tolist(), drop_c.tolist())]
        text_states = torch.stack([self.text[p] for p in prompts])  # (B, N, D)
        changed = (src_tg[:, 0] - x_lat).abs() * sf > c.change_threshold  # (B, c, h, w), before the image dropout
        x_lat = x_lat * (~drop_x).float()[:, None, None, None]
        h_img = h_txt = h_len = None
        if self.emb is not None:
            h_img, h_txt, h_len = (e[idx].to(self.dev) for e in self.emb)
        extra = {"progress": self.ds.progress[idx].to(self.dev)} if self.cfg.ldm.progress else {}  # (B,)
        out = self.model(z_t.to(self.dev), x_lat.to(self.dev), t.to(self.dev), text_states.to(self.dev),
                         h_img, h_txt, h_len, drop_c.to(self.dev), **extra).float()
        if c.residual:
            out = out + (x_lat * sf).to(self.dev)
        target = self.target(z0, noise, t).to(self.dev).float()
        err = (out - target) ** 2  # (B, c, h, w)
        if c.loss_weighting == "change":
            err = err * (1 + (c.change_weight - 1) * changed.to(self.dev).float())
        per_sample = err.mean(dim=(1, 2, 3))  # (B,)
        if c.loss_weighting == "min_snr":
            per_sample = per_sample * self.min_snr_weight(t).to(self.dev)
        return per_sample.mean()

    def noised(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor):
        """(z_t, UNet timestep): DDPM's q(z_t | z_0) at t ∈ {0..999}, or the flow path at t ∈ [0, 1) (x 1000)."""
        if self.cfg.ldm.objective == "flow":
            tt = t[:, None, None, None]
            return (1 - tt) * z0 + tt * noise, t * 1000
        return self.parts["noise_scheduler"].add_noise(z0, noise, t), t

    def target(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        p = self.cfg.ldm.prediction
        if p == "sample":
            return z0
        if p == "velocity":  # flow: d z_t / d t
            return noise - z0
        if p == "v_prediction":
            return self.parts["noise_scheduler"].get_velocity(z0, noise, t)
        return noise

    def min_snr_weight(self, t: torch.Tensor) -> torch.Tensor:
        """Min-SNR-γ (Hang et al. 2023) expressed for the prediction type: min(SNR, γ) / SNR for ε, …/(SNR+1) for v."""
        a = self.parts["noise_scheduler"].alphas_cumprod[t]
        snr = a / (1 - a)
        w = snr.clamp(max=self.cfg.ldm.min_snr_gamma)
        p = self.cfg.ldm.prediction
        return w / snr if p == "epsilon" else w / (snr + 1) if p == "v_prediction" else w

    # ------------------------------------------------------------------ loop, checkpoints, export

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.out)

    def save_checkpoint(self, step: int) -> None:
        save_checkpoint(self.acc, self.out, step, self.cfg.ldm.keep_checkpoints,
                        extra=lambda d: torch.save(self.ema.state_dict(), d / "ema.pt"))

    def load_checkpoint(self) -> int:
        step, folder = load_latest(self.acc, self.out)
        if folder is not None:
            self.ema.load_state_dict(torch.load(folder / "ema.pt", weights_only=True))
        return step

    def run(self, resume: bool = False, stop_after: int | None = None, progress: bool = True,
            every: tuple[int, Callable[[int], None]] | None = None, deadline: float | None = None) -> dict:
        """Train to ``max_steps`` (or stop after ``stop_after`` steps: for tests that simulate a kill).

        ``every`` = (n, fn) calls fn(step) after every n-th step (the learning benchmark evaluates there).
        ``deadline`` (a ``time.monotonic()`` value): the step that passes it is the last; the model is exported as
        trained, and its saved config says how many steps that was (the demo's budget follows the clock).
        """
        c = self.cfg.ldm
        if deadline is not None and self.acc.num_processes > 1:
            raise ValueError("a training deadline needs a single process (the processes would stop at different steps)")
        refuse_stale(self.out, resume)
        start = self.load_checkpoint() if resume else 0
        log_path = self.out / "train_log.jsonl"
        if self.acc.is_main_process:
            truncate_log(log_path, start, resume)
            save(self.cfg, self.out / "config.yaml")
        end = c.max_steps if stop_after is None else min(c.max_steps, start + stop_after)
        bar = tqdm(range(start, end), initial=start, total=c.max_steps, desc=f"train {c.conditioning}",
                   disable=not (progress and self.acc.is_main_process))
        params = list(self.acc.unwrap_model(self.model).parameters())
        losses = []
        t0 = time.perf_counter()
        for step in bar:
            total = 0.0
            for a in range(c.grad_accum):
                loss = self.micro_step(step * c.grad_accum + a)
                self.acc.backward(loss)  # accelerate divides by gradient_accumulation_steps itself
                total += loss.item() / c.grad_accum
            if c.grad_clip:
                self.acc.clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.opt.step()
            self.sched.step()
            self.opt.zero_grad(set_to_none=True)
            self.ema.step(params)
            losses.append(total)
            rate = c.batch_size * c.grad_accum * self.acc.num_processes * (step + 1 - start) / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total:.4f}")
            if self.acc.is_main_process:
                with open(log_path, "a") as f:
                    f.write(json.dumps({"step": step + 1, "loss": round(total, 6), "lr": self.sched.get_last_lr()[0],
                                        "samples_per_s": round(rate, 2)}) + "\n")
            if deadline is not None and step + 1 < c.max_steps and time.monotonic() >= deadline:
                c.max_steps = end = step + 1  # the run's length is what the clock allowed
                if self.acc.is_main_process:
                    save(self.cfg, self.out / "config.yaml")
            if (step + 1) % c.checkpoint_every == 0 or step + 1 == c.max_steps:
                self.save_checkpoint(step + 1)
            if every and (step + 1) % every[0] == 0:
                every[1](step + 1)
            if step + 1 == end:
                break
        if stop_after is None or end == c.max_steps:
            self.export()
        return {"start": start, "end": end, "losses": losses}

    def export(self) -> Path:
        """The EMA weights as a ``LegoPipeline`` folder: ``<out>/model``."""
        model = self.acc.unwrap_model(self.model)
        self.ema.store(list(model.parameters()))
        self.ema.copy_to(list(model.parameters()))
        p = self.parts
        pipe = LegoPipeline(vae=p["vae"], text_encoder=p["text_encoder"], tokenizer=p["tokenizer"], unet=model.unet,
                            scheduler=p["scheduler"], conditioner=model.conditioner,
                            prediction=self.cfg.ldm.prediction, residual=self.cfg.ldm.residual,
                            sampling=sampling_settings(self.cfg.ldm))
        if (self.cfg.ldm.scheduler in FLOW_SAMPLERS) == pipe.is_flow:  # else `generate` names the mismatch
            pipe.use_scheduler(self.cfg.ldm.scheduler)  # the folder's scheduler is its sampler
        dest = self.out / "model"
        if self.acc.is_main_process:
            with quiet_loading():  # no "Writing model shards" bar per component
                pipe.save_pretrained(str(dest))
            save(self.cfg, dest / "lego_config.yaml")
            record_vllm(self.ds.store, dest)  # `generate` finds the VLLM that wrote the embeddings
        self.ema.restore(list(model.parameters()))
        return dest


def count_pairs(manifest: str | Path, split: str = "train") -> int:
    return sum(r["split"] == split for r in read_manifest(manifest))


def steps_for_epochs(n_pairs: int, batch: int, epochs: float) -> int:
    return max(1, math.ceil(n_pairs * epochs / batch))
