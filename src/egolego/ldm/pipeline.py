"""``LegoPipeline``: generate the action frame for an egocentric image, with dual guidance.

ε̃ = ε(∅,∅) + s_x·(ε(X,∅) − ε(∅,∅)) + s_c·(ε(X,C) − ε(X,∅)), the three branches in one UNet call, in the
order [ (X, C), (X, ∅), (∅, ∅) ] as diffusers' InstructPix2Pix pipeline. "∅" for C is ψ("") with the VLLM
tokens zeroed; "∅" for X is a zero image latent. The image latent is the VAE posterior's mode, unscaled,
as InstructPix2Pix trains it.

The pipeline samples the way its model was trained (``prediction`` and ``residual`` are saved in
``model_index.json``): ε / v / x_0 prediction on SD's DDPM schedule with any of diffusers' samplers, or flow
matching (x_t = (1 − t)·x_0 + t·n) with ``FlowMatchEulerDiscreteScheduler`` on uniform sigmas. A residual model
predicts x_0 − E(X) (the image branch's latent is added back before guidance).

Guidance defaults follow the official code (s_c = 7.5 on the condition, s_x = 1.5 on the image). The
paper's text says the reverse (s_x = 7.5, s_c = 1.5, "as in InstructPix2Pix"), but InstructPix2Pix itself and
the released LEGO code use 7.5 for the text/condition and 1.5 for the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.schedulers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
)
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from ..config import LdmConfig
from .autoencoder import downscale_factor
from .change_mask import ChangeMaskNet, composite
from .components import encode_text, progress_labels
from .conditioner import LegoConditioner
from .modes import mode_uses
from .sampler_names import FLOW_SAMPLERS

SCHEDULERS = {"euler_a": EulerAncestralDiscreteScheduler, "ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler,
              "flow_euler": FlowMatchEulerDiscreteScheduler, "flow_euler_a": FlowMatchEulerDiscreteScheduler}


def combine_guidance(eps: torch.Tensor, s_c: float, s_x: float, rescale: float = 0.0) -> torch.Tensor:
    """(3B, C, h, w) ordered [(X,C), (X,∅), (∅,∅)] -> (B, C, h, w).

    ``rescale`` = φ of Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed" (diffusers'
    ``guidance_rescale``): the guided prediction is scaled to the per-sample standard deviation of the fully
    conditioned one, and mixed with the unscaled by φ — guidance keeps its direction but stops inflating the
    prediction, which is what burns saturated colour into the frame."""
    e_xc, e_x, e_0 = eps.chunk(3)
    g = e_0 + s_x * (e_x - e_0) + s_c * (e_xc - e_x)
    if rescale > 0:
        dims = list(range(1, g.ndim))
        scaled = g * (e_xc.std(dim=dims, keepdim=True) / g.std(dim=dims, keepdim=True).clamp_min(1e-8))
        g = rescale * scaled + (1 - rescale) * g
    return g


def sampling_settings(ldm: LdmConfig) -> dict:
    """The sampling settings of an ``LdmConfig``, as a pipeline saves them (``model_index.json``: ``sampling``)."""
    return {"steps": int(ldm.steps), "scheduler": ldm.scheduler, "condition_guidance": float(ldm.condition_guidance),
            "image_guidance": float(ldm.image_guidance), "guidance_rescale": float(ldm.guidance_rescale),
            "guidance_interval": [float(v) for v in ldm.guidance_interval], "keep_input": float(ldm.keep_input),
            "clip_start": float(ldm.clip_start), "progress_guidance": float(ldm.progress_guidance),
            "change_mask": False}  # on once the learnt mask is trained and added (``add_change_mask``)


# What a pipeline samples with when neither its saved config nor the call says: the paper preset's (the official
# code's) settings, read from the config's defaults so that they have one owner
PAPER_SAMPLING = sampling_settings(LdmConfig())


def keep_unchanged(out: torch.Tensor, image: torch.Tensor, tau: float) -> torch.Tensor:
    """Composite the generated frame over the input by a soft change mask read off the frame itself.

    (B, 3, H, W) in [-1, 1] each. The change d = max over channels of |out − image| (in [0, 1] units), averaged over
    5×5 pixels; the mask m = clamp((d − τ/2) / τ, 0, 1) is 0 where the model barely touched the input (there the
    input itself is returned: the smear a model leaves over what the action does not touch) and 1 where it changed it
    by more than 1.5 τ."""
    d = ((out - image).abs().amax(1, keepdim=True) / 2).float()  # (B, 1, H, W)
    d = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(d, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    m = ((d - tau / 2) / tau).clamp(0, 1).to(out.dtype)
    return image + m * (out - image)


@dataclass
class LegoPipelineOutput(BaseOutput):
    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor


class LegoPipeline(DiffusionPipeline):
    """vae + text_encoder (ψ) + tokenizer + 8-channel unet + scheduler + LegoConditioner."""

    model_cpu_offload_seq = "text_encoder->conditioner->unet->vae->change_mask"
    _optional_components = ["change_mask"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler, conditioner: LegoConditioner,
                 prediction: str = "epsilon", residual: bool = False, sampling: dict | None = None,
                 change_mask: ChangeMaskNet | None = None):
        """``sampling``: how the model was trained to be sampled (``sampling_settings``), saved in
        ``model_index.json`` so that ``LegoPipeline.from_pretrained(d)(image, prompt)`` samples that way; the
        scheduler saved with the model is its sampler. ``change_mask``: the learnt change mask
        (``ldm/change_mask.py``), trained after the model on its own frames; absent until then."""
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              scheduler=scheduler, conditioner=conditioner, change_mask=change_mask)
        self.register_to_config(prediction=prediction, residual=residual, sampling=sampling)
        self.vae_scale_factor = downscale_factor(self.vae)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)

    @property
    def sampling(self) -> dict:
        """The saved sampling settings over the paper's (``PAPER_SAMPLING``)."""
        return {**PAPER_SAMPLING, **(getattr(self.config, "sampling", None) or {})}

    @property
    def is_flow(self) -> bool:
        return isinstance(self.scheduler, FlowMatchEulerDiscreteScheduler)

    def use_scheduler(self, name: str) -> None:
        """Swap the sampler: ``euler_a`` (official), ``ddim``, ``dpm++`` for DDPM models; ``flow_euler`` or
        ``flow_euler_a`` for flow ones. ``flow_euler_a`` is diffusers' flow Euler with ``stochastic_sampling``: each
        step re-noises the predicted x_0 with fresh noise instead of following the velocity, as ``euler_a`` does for
        DDPM models (on EgoSynth it halves the colour blobs; RESULTS.md, 2026-12-06 stochastic-sampler study)."""
        if name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
        if (name in FLOW_SAMPLERS) != self.is_flow:
            kind = "flow-matching" if self.is_flow else "DDPM"
            raise ValueError(f"scheduler {name!r} cannot sample this {kind} model; use "
                             + (" or ".join(FLOW_SAMPLERS) if self.is_flow else "euler_a, ddim or dpm++"))
        extra = {"stochastic_sampling": name == "flow_euler_a"} if name in FLOW_SAMPLERS else {}
        self.scheduler = SCHEDULERS[name].from_config(self.scheduler.config, **extra)

    def _set_timesteps(self, steps: int, dev, strength: float = 1.0) -> torch.Tensor:
        """Set the sampler's steps and return those to run: with ``strength`` < 1 only the ones whose noise level is
        at most ``strength`` (at least the last), an image-to-image start as ``diffusers``' img2img pipelines make."""
        if self.is_flow:  # uniform sigmas 1, 1 - 1/n, ..., 1/n (then 0): every step does work
            sigmas = np.linspace(1.0, 1.0 / steps, steps)
            begin = min(int((sigmas > strength + 1e-9).sum()), steps - 1)
            self.scheduler.set_timesteps(sigmas=sigmas[begin:], device=dev)  # σ_i stays step i's level
            return self.scheduler.timesteps
        self.scheduler.set_timesteps(steps, device=dev)
        ts = self.scheduler.timesteps
        if strength >= 1:
            return ts
        begin = min(int((ts.float() / self.scheduler.config.num_train_timesteps > strength + 1e-9).sum()), len(ts) - 1)
        if hasattr(self.scheduler, "set_begin_index"):  # the samplers that count their steps (Euler, DPM++)
            self.scheduler.set_begin_index(begin)
        return ts[begin:]

    def _start(self, init_image, noise: torch.Tensor, t0: torch.Tensor) -> torch.Tensor:
        """The first latents of an image-to-image start: ``init_image``'s latent (the scaled VAE posterior mode, the
        space the sampler runs in) noised to the first step's level; (B, c, h, w)."""
        pixels = self.image_processor.preprocess(init_image).to(noise.device, self.vae.dtype)  # (B, 3, H, W)
        x0 = self.vae.encode(pixels).latent_dist.mode().to(noise.dtype) * self.vae.config.scaling_factor
        if x0.shape != noise.shape:
            raise ValueError(f"init_image's latents {tuple(x0.shape)} do not match the frames' {tuple(noise.shape)}")
        t0 = t0.reshape(1).repeat(len(x0))
        if self.is_flow:
            return self.scheduler.scale_noise(x0, t0, noise)  # (1 - σ) x_0 + σ n
        return self.scheduler.add_noise(x0, noise, t0)

    def _noise_level(self, i: int, t) -> float:
        """Step ``i``'s noise level in [0, 1]: σ for flow matching, t / T on the DDPM schedule."""
        if self.is_flow:
            return float(self.scheduler.sigmas[i])
        return float(t) / self.scheduler.config.num_train_timesteps

    @torch.no_grad()
    def encode_condition(self, prompts: list[str], h_img=None, h_txt=None, h_len=None, mode: str | None = None):
        """(C, C_∅, masks): the condition and the "no condition" context, each (B, L, D), and with an attention gate
        (``ldm.conditioner_gate: attn``) their (B, L) attention masks, else None."""
        mode = mode or self.conditioner.config.mode
        use_img, use_txt = mode_uses(mode)
        dev = self._execution_device
        b = len(prompts)
        psi = encode_text(self.tokenizer, self.text_encoder, prompts)  # (B, N, D)
        psi0 = encode_text(self.tokenizer, self.text_encoder, [""] * b)
        args = {}
        if use_img and h_img is None:
            raise ValueError(f"mode {mode!r} needs the VLLM image embedding H_i (h_img)")
        if use_txt and (h_txt is None or h_len is None):
            raise ValueError(f"mode {mode!r} needs the VLLM text embedding H_t and its length (h_txt, h_len)")
        if use_img:
            args["h_img"] = torch.as_tensor(h_img, device=dev)
        if use_txt:
            args["h_txt"] = torch.as_tensor(h_txt, device=dev)
            args["h_len"] = torch.as_tensor(h_len, device=dev)
        drop = torch.ones(b, dtype=torch.bool, device=dev)
        cond = self.conditioner(psi, mode=mode, **args)
        uncond = self.conditioner(psi0, drop_vllm=drop, mode=mode, **args)
        masks = None  # an attention gate's (B, L) masks of cond and uncond (``LegoConditioner.attention_mask``)
        m = self.conditioner.attention_mask(psi.shape[1], b, args.get("h_len"), mode=mode)
        if m is not None:
            masks = (m, self.conditioner.attention_mask(psi.shape[1], b, args.get("h_len"), drop, mode=mode))
        return cond, uncond, masks

    @torch.no_grad()
    def __call__(self, image, prompt: str | list[str], h_img=None, h_txt=None, h_len=None, mode: str | None = None,
                 num_inference_steps: int | None = None, condition_guidance_scale: float | None = None,
                 image_guidance_scale: float | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 output_type: str = "pil", original_size: tuple[int, int] | None = None,
                 progress: bool = True, guidance_rescale: float | None = None,
                 guidance_interval: tuple[float, float] | None = None,
                 keep_input: float | None = None, action_progress: float | list[float] | None = None,
                 latents: torch.Tensor | None = None, change_mask: bool | None = None,
                 init_image=None, strength: float = 1.0,
                 progress_guidance: float | None = None) -> LegoPipelineOutput:
        """Generate action frames. Sampling arguments left at None are the model's saved ones (``sampling``).

        ``guidance_rescale``: φ (``combine_guidance``); ``guidance_interval`` = (lo, hi): guide only the steps whose
        noise level (σ of a flow model, t / T of a DDPM one; 1 = pure noise) lies in [lo, hi], and take the
        conditioned prediction elsewhere, running that branch alone (Kynkäänniemi et al. 2024, "Applying Guidance in
        a Limited Interval").
        ``keep_input`` = τ > 0: where the decoded frame changes the input little, keep the input (``keep_unchanged``).
        ``change_mask``: composite the frame over the input by the learnt change mask (the ``change_mask``
        component; before ``keep_input``).
        ``action_progress``: how far along the action to draw (one value or one per image; default 1, the action
        done) — only a model trained with ``ldm.progress``. ``latents`` (B, c, h, w): the initial noise (a clip's
        frames share one). ``init_image`` (one per image) and ``strength`` < 1: start from that frame noised to the
        level ``strength`` and run only the steps below it (a clip's earlier frames start from its last one:
        ``generate.sample_clip``); ``strength`` 1 or no ``init_image``: from pure noise.

        image: PIL image(s), arrays or a (B, 3, H, W) tensor in [-1, 1]; prompt: the description (or the label
        in ``label`` mode), one per image; h_img (B, M, D_vllm), h_txt (B, N, D_vllm), h_len (B,) when the mode
        uses them; generator: one per image for results independent of batching. ``original_size`` = (W, H)
        resizes PIL outputs back to the input's aspect ratio. Outputs are clamped to [0, 1].
        """
        saved = self.sampling
        num_inference_steps = int(num_inference_steps if num_inference_steps is not None else saved["steps"])
        condition_guidance_scale = float(saved["condition_guidance"] if condition_guidance_scale is None
                                         else condition_guidance_scale)
        image_guidance_scale = float(saved["image_guidance"] if image_guidance_scale is None else image_guidance_scale)
        guidance_rescale = float(saved["guidance_rescale"] if guidance_rescale is None else guidance_rescale)
        guidance_interval = tuple(saved["guidance_interval"] if guidance_interval is None else guidance_interval)
        keep_input = float(saved["keep_input"] if keep_input is None else keep_input)
        change_mask = bool(saved["change_mask"] if change_mask is None else change_mask)
        s_p = float(saved.get("progress_guidance", 0.0) if progress_guidance is None else progress_guidance)
        if s_p < 0:
            raise ValueError(f"progress_guidance must be >= 0, got {s_p}")
        if change_mask and self.change_mask is None:
            raise ValueError("this model has no learnt change mask (its `change_mask` component): train one with "
                             "`egolego train-mask`, or sample without it")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        images = image if isinstance(image, (list, torch.Tensor)) else [image]
        b = len(prompts)
        if len(images) != b:
            raise ValueError(f"{len(images)} images for {b} prompts")
        dev = self._execution_device
        labels = progress_labels(self.unet, action_progress, b, dev)  # (B,) or None
        by_progress = s_p > 0 and labels is not None  # a 4th branch: (X, C) at progress 0, the action not begun
        cond, uncond, masks = self.encode_condition(prompts, h_img, h_txt, h_len, mode)
        context = torch.cat([cond, uncond, uncond] + [cond] * by_progress)  # (nB, L, D), n = 3 or 4
        mask = None if masks is None else torch.cat([masks[0], masks[1], masks[1]] + [masks[0]] * by_progress)

        pixels = self.image_processor.preprocess(images).to(dev, self.vae.dtype)  # (B, 3, H, W) in [-1, 1]
        x_lat = self.vae.encode(pixels).latent_dist.mode()  # (B, c, h, w), unscaled
        image_lat = torch.cat([x_lat, x_lat, torch.zeros_like(x_lat)] + [x_lat] * by_progress)  # (nB, c, h, w)

        if not 0 < strength <= 1:
            raise ValueError(f"strength must lie in (0, 1], got {strength}")
        if init_image is None:
            strength = 1.0
        timesteps = self._set_timesteps(num_inference_steps, dev, strength)
        sf = self.vae.config.scaling_factor
        shape = (b, x_lat.shape[1], *x_lat.shape[-2:])
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=dev, dtype=cond.dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents of shape {tuple(latents.shape)}, expected {shape}")
        latents = latents.to(dev, cond.dtype)
        if strength < 1:
            init = init_image if isinstance(init_image, (list, torch.Tensor)) else [init_image]
            if len(init) != b:
                raise ValueError(f"{len(init)} init images for {b} prompts")
            latents = self._start(init, latents, timesteps[0])
        else:
            latents = latents * getattr(self.scheduler, "init_noise_sigma", 1.0)
        if labels is not None:  # (nB,): the three guidance branches at the frame's progress, the 4th at 0
            labels = torch.cat([labels] * 3 + [torch.zeros_like(labels)] * by_progress)
        n = 4 if by_progress else 3
        base = image_lat * sf if self.config.residual else None  # residual head: x_0 = E(X) + UNet output
        step_kwargs = {"generator": generator} if "generator" in self.scheduler.step.__code__.co_varnames else {}
        for i, t in enumerate(self.progress_bar(timesteps) if progress else timesteps):
            guide = guidance_interval[0] <= self._noise_level(i, t) <= guidance_interval[1]
            k = n if guide else 1  # outside the interval only (X, C) is used: run that branch alone
            z = torch.cat([latents] * k)  # (kB, c, h, w)
            if not self.is_flow:
                z = self.scheduler.scale_model_input(z, t)
            out = self.unet(torch.cat([z, image_lat[:k * b]], dim=1), t, encoder_hidden_states=context[:k * b],
                            encoder_attention_mask=None if mask is None else mask[:k * b],
                            class_labels=None if labels is None else labels[:k * b], return_dict=False)[0]
            if base is not None:
                out = out + base[:k * b]
            if guide:
                guided = combine_guidance(out[:3 * b], condition_guidance_scale, image_guidance_scale, guidance_rescale)
                out = guided + s_p * (out[:b] - out[3 * b:]) if by_progress else guided  # (B, c, h, w)
            # else out is (X, C)'s prediction, (B, c, h, w): s_c = s_x = 1, s_p = 0
            if self.is_flow and self.config.prediction == "sample":  # x_0 -> velocity n - x_0 = (z_t - x_0) / t
                out = (latents - out) / self.scheduler.sigmas[i]
            latents = self.scheduler.step(out, t, latents, **step_kwargs, return_dict=False)[0]
        out = self.vae.decode(latents / sf, return_dict=False)[0]  # (B, 3, H, W) in [-1, 1]
        if change_mask:  # on the frame as it is shown (clamped), as the mask learnt from saved frames
            image, out = pixels.to(out.dtype), out.clamp(-1, 1)
            out = composite(out, image, self.change_mask.mask(image, out))
        if keep_input > 0:
            out = keep_unchanged(out, pixels.to(out.dtype), keep_input)
        result = self.image_processor.postprocess(out, output_type=output_type)  # clamps to [0, 1]
        if output_type == "pil" and original_size is not None:
            result = [im.resize(original_size, PIL.Image.BICUBIC) for im in result]
        return LegoPipelineOutput(images=result)
