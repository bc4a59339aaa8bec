"""ProxNPI (Han et al. 2023, "Improving negative-prompt inversion via proximal guidance") with Prompt-to-Prompt.

1. **Invert** the input latent z_0 by DDIM (diffusers' ``DDIMInverseScheduler``) conditioned on the source prompt:
   the trajectory z*_0 … z*_T.
2. **Negative-prompt inversion** (Miyake et al. 2023): null-text inversion would optimise a "null" embedding per step
   so that guided sampling retraces z*; NPI instead uses the source prompt's embedding as the null text, which makes
   the guided source branch exactly the inverted DDIM path (no per-image optimisation).
3. **Edit** from z*_T with the guidance ε̃ = ε(c_src) + w·prox(ε(c_tgt) − ε(c_src)), the target branch's attention
   controlled by P2P from the source branch (``p2p``).
4. **Proximal guidance**: ``prox`` applies a proximal operator to the guidance difference Δ at a per-image quantile
   threshold λ (``l0``: hard, ``l1``: soft thresholding) so that only the strong, local part of the edit
   survives; where |Δ| ≤ λ the step is pulled back to the inverted path,
   z ← z − r·(z − z*_{t−1})·(1 − mask), for t < ``recon_t`` ("inversion guidance", Han et al. §3.2). The source
   branch has Δ = 0 and is pulled everywhere, which corrects the DDIM inversion's drift in the reconstruction.

Source prompt: EgoSynth / EPIC / Ego4D give no caption of the input frame (the paper: "inversion-based methods
require accurate image captions, which are largely unavailable"). The input frame shows the scene *before* the
action, with the object not yet acted on, so the source prompt is the label without its verb ("take red cup" →
"red cup"): the words the before-frame and the after-frame share. P2P then *refines*: the shared object words keep
the source's attention maps, and the verb is the added word. ``source="label"`` uses the label itself (an edit
with no text change: inversion + reconstruction; useful as a check).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

from .p2p import AttentionController, attention_control, prompt_mappings

SOURCES = ("noun", "label")


def source_prompt(label: str, source: str = "noun") -> str:
    """The prompt describing the input (before) frame: the label without its first word (the verb)."""
    if source == "label":
        return label
    if source != "noun":
        raise ValueError(f"source prompt must be one of {', '.join(SOURCES)}, got {source!r}")
    words = label.split()
    return " ".join(words[1:]) if len(words) > 1 else label


@dataclass(frozen=True)
class ProxSettings:
    """ProxNPI's settings (defaults: Han et al.'s code, ``quantile`` 0.7 / ``recon_lr`` 0.1 / ``recon_t`` 400,
    and P2P's 0.8 / 0.4 replacement fractions)."""

    steps: int = 20
    guidance: float = 7.5
    prox: str | None = "l0"  # l0 | l1 | None (plain NPI + P2P)
    quantile: float = 0.7
    recon_lr: float = 0.1
    recon_t: int = 400
    cross_steps: float = 0.8
    self_steps: float = 0.4
    source: str = "noun"


def proximal(delta: torch.Tensor, kind: str, quantile: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Δ after the proximal operator, edit mask) for Δ (b, c, h, w), λ = each image's ``quantile`` of |Δ|.

    ``l0``: hard thresholding Δ·[|Δ| > λ] (the proximal operator of λ‖·‖_0); ``l1``: soft thresholding
    Δ − clip(Δ, −λ, λ) (that of λ‖·‖_1). The mask (b, c, h, w) is 1 where the edit acts, |Δ| > λ.
    """
    lam = delta.abs().flatten(1).quantile(quantile, dim=1)[:, None, None, None]  # (b, 1, 1, 1)
    mask = (delta.abs() > lam).float()
    if kind == "l0":
        return delta * mask, mask
    if kind == "l1":
        return delta - delta.clamp(-lam, lam), mask
    raise ValueError(f"prox must be l0, l1 or None, got {kind!r}")


def _schedulers(pipe, steps: int) -> tuple[DDIMScheduler, DDIMInverseScheduler]:
    ddim = DDIMScheduler.from_config(pipe.scheduler.config)
    inv = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    ddim.set_timesteps(steps, device=pipe.device)
    inv.set_timesteps(steps, device=pipe.device)
    return ddim, inv


@torch.no_grad()
def invert(pipe, z0: torch.Tensor, context: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """DDIM inversion: [z*_0 (= z0), z*_1, …, z*_T], each (b, c, h, w), on the context (b, N, D)."""
    _, inv = _schedulers(pipe, steps)
    traj = [z0]
    for t in inv.timesteps:
        out = pipe.unet(traj[-1], t, encoder_hidden_states=context).sample
        traj.append(inv.step(out, t, traj[-1]).prev_sample)
    return traj


@torch.no_grad()
def encode_latents(pipe, pixels: torch.Tensor) -> torch.Tensor:
    """(b, 3, H, W) in [-1, 1] -> scaled latent mode (b, c, h, w)."""
    return pipe.vae.encode(pixels.to(pipe.device, pipe.vae.dtype)).latent_dist.mode() * pipe.vae.config.scaling_factor


@torch.no_grad()
def decode_latents(pipe, z: torch.Tensor) -> torch.Tensor:
    """(b, c, h, w) scaled latents -> (b, 3, H, W) in [-1, 1], clamped."""
    return pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample.clamp(-1, 1)


@torch.no_grad()
def edit(pipe, traj: list[torch.Tensor], c_src: torch.Tensor, c_tgt: torch.Tensor, s: ProxSettings,
         controller: AttentionController | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(source branch, target branch) final latents, each (b, c, h, w), from the inverted trajectory ``traj``.

    One UNet call per step on [source (c_src) | target (∅ = c_src, NPI) | target (c_tgt)], 3b rows.
    """
    ddim, _ = _schedulers(pipe, s.steps)
    n = len(ddim.timesteps)
    if len(traj) != n + 1:
        raise ValueError(f"the trajectory has {len(traj) - 1} steps, the edit {n}")
    z_src = z_tgt = traj[-1]
    context = torch.cat([c_src, c_src, c_tgt])  # (3b, N, D)
    for i, t in enumerate(ddim.timesteps):
        if controller is not None:
            controller.step = i
        out = pipe.unet(torch.cat([z_src, z_tgt, z_tgt]), t, encoder_hidden_states=context).sample  # (3b, c, h, w)
        o_src, o_null, o_tgt = out.chunk(3)
        delta, mask = o_tgt - o_null, None
        if s.prox is not None:
            delta, mask = proximal(delta, s.prox, s.quantile)
        z_src = ddim.step(o_src, t, z_src).prev_sample
        z_tgt = ddim.step(o_null + s.guidance * delta, t, z_tgt).prev_sample
        if mask is not None and s.recon_lr > 0 and int(t) < s.recon_t:  # inversion guidance towards z*_{t-1}
            star = traj[n - i - 1]
            z_src = z_src - s.recon_lr * (z_src - star)
            z_tgt = z_tgt - s.recon_lr * (z_tgt - star) * (1 - mask)
    return z_src, z_tgt


class ProxNPI:
    """Edit frames with a fine-tuned text-to-image ``StableDiffusionPipeline``: invert, then P2P-edit with ProxNPI."""

    def __init__(self, pipe, settings: ProxSettings = ProxSettings()):
        if settings.steps < 1:
            raise ValueError(f"ProxNPI steps must be at least 1, got {settings.steps}")
        source_prompt("x", settings.source)  # validates the choice
        self.pipe, self.s = pipe, settings

    def encode(self, prompts: list[str]) -> torch.Tensor:
        return self.pipe.encode_prompt(prompts, self.pipe.device, 1, False)[0]  # (b, N, D)

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor, labels: list[str], return_source: bool = False):
        """pixels (b, 3, H, W) in [-1, 1], labels (b,) -> edited frames (b, 3, H, W) in [-1, 1] (and the source
        branch's reconstruction with ``return_source``)."""
        sources = [source_prompt(label, self.s.source) for label in labels]
        c_src, c_tgt = self.encode(sources), self.encode(list(labels))
        traj = invert(self.pipe, encode_latents(self.pipe, pixels), c_src, self.s.steps)
        ctrl = AttentionController(prompt_mappings(self.pipe.tokenizer, sources, list(labels)), self.s.steps,
                                   self.s.cross_steps, self.s.self_steps)
        with attention_control(self.pipe.unet, ctrl):
            z_src, z_tgt = edit(self.pipe, traj, c_src, c_tgt, self.s, ctrl)
        out = decode_latents(self.pipe, z_tgt)
        return (out, decode_latents(self.pipe, z_src)) if return_source else out
