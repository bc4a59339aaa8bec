"""Configuration: dataclasses with YAML load / save and two named presets.

``tiny`` runs everything on 2 CPU cores with 64 px images and components the project builds or trains
itself; ``paper`` has the paper's shapes (256 px, SD-1.5, LLaVA) and loads weights from local folders.
Both presets go through the same classes and code paths; only sizes and weight sources differ.

A config file may name a preset and override any field::

    preset: tiny
    synth:
      actions: 800
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESETS = ("tiny", "paper")


@dataclass
class SynthConfig:
    """EgoSynth generation (``egolego synth``)."""

    actions: int = 500
    size: int = 64  # frame height in pixels; width is 16:9 rounded to a multiple of 8
    seed: int = 0
    formats: list[str] = field(default_factory=lambda: ["epic", "ego4d"])
    workers: int = 2
    # >1: up to that many different actions per scene (consecutive segments of a video), so the before-frame alone
    # cannot tell the action, only the request can. Off in both presets: at 2 or 3 it did not stop the tiny LDM from
    # memorising its training pairs (RESULTS.md, 2026-12-05 memorisation study)
    actions_per_scene: int = 1
    # rules: a visible state decides which of two or three look-alike objects the action is for, by a rule a person
    # knows (synth/knowledge.py), what LEGO's VLLM can learn from plentiful stills and the diffusion model only from
    # its scarce pairs; none: the world without knowledge (look-alikes differ only by a random colour), the control
    knowledge: str = "rules"


@dataclass
class TokenizerConfig:
    """The byte-level BPE tokenizers the tiny text models use (no tokenizer can be downloaded).

    ``egolego tokenizer`` trains one for ψ alone (``vocab_size``, ``model_max_length``); the demo and ``reproduce``
    train one that the tiny LLaVA and ψ share (``shared_*``). ψ always reads its first ``model_max_length`` tokens."""

    vocab_size: int = 512
    model_max_length: int = 77  # N: the tokens ψ reads (CLIP's 77)
    min_frequency: int = 1
    shared_vocab_size: int = 800
    shared_max_length: int = 512  # the LLaVA's question + answer need more than ψ's 77


@dataclass
class LdmConfig:
    """The LEGO diffusion model, its training recipe (``egolego train``; paper §3.2, D.4) and its sampling.

    The recipe keys (``objective`` … ``warmup_steps``) are read by the trainer *and* saved with the model, so that
    ``LegoPipeline`` samples the way the model was trained. The paper preset keeps the paper's recipe
    (ε-prediction on SD-1.5's DDPM schedule, 100 Euler-ancestral steps, s_c 7.5 / s_x 1.5); the tiny preset uses
    a recipe that learns EgoSynth's actions on a CPU in minutes (see README, "where we differ").
    """

    base: str | None = None  # paper: a local SD-1.5 or InstructPix2Pix diffusers folder
    from_base: bool = True  # start from ``base`` (SD-1.5 shapes); false: the tiny UNet / text encoder from scratch
    vae: str | None = None  # tiny with autoencoder "vae": the folder written by `egolego vae train`
    autoencoder: str = "vae"  # vae (AutoencoderKL) | unshuffle (lossless pixel_unshuffle, tiny only)
    tokenizer: str | None = None  # tiny: the folder written by `egolego tokenizer`
    conditioning: str = "lego"  # label | desc | desc+img | desc+txt | lego
    # --- recipe
    objective: str = "ddpm"  # ddpm (SD's noise schedule) | flow (x_t = (1 - t) x_0 + t n, t ~ U(0, 1))
    prediction: str = "epsilon"  # ddpm: epsilon | v_prediction | sample;  flow: sample | velocity
    residual: bool = False  # sample prediction only: the UNet predicts x_0 - E(X), its last conv zero-initialised
    loss_weighting: str = "none"  # none | min_snr (ddpm) | change (x change_weight where |target - input| > thr)
    min_snr_gamma: float = 5.0
    change_weight: float = 5.0
    change_threshold: float = 0.1  # on latents (pixels in [-1, 1] for the unshuffle autoencoder)
    batch_size: int = 16
    grad_accum: int = 1
    train_pairs: int = 0  # >0: train on that many of the manifest's train pairs (a fixed, nested subset); 0: all
    progress: bool = False  # condition on how far along the action the target is (timeline pairs; generate --frames)
    progress_done_repeat: int = 1  # with progress: each action's finished frame (p = 1) appears that many times
    progress_mid_repeat: int = 1  # with progress: each frame part-way (p < 1) appears that many times
    init_from: str | None = None  # a model folder whose UNet + conditioner weights training starts from
    lr: float = 1e-4  # the official recipe: constant 1e-4 (after the warm-up below)
    warmup_steps: int = 0
    lr_schedule: str = "constant"  # constant (official) | cosine: from lr down to 0 at max_steps, after the warm-up
    max_steps: int = 1500
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    flip: str = "auto"  # auto: flip + swap left/right words for text-only modes; none; swap
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"  # no | fp16 | bf16 | auto: bf16 where the device runs it natively (precision.py)
    seed: int = 0  # data order, noise, dropout, and the initialisation of the tiny UNet and the conditioner
    # --- the tiny preset's UNet (built from scratch; the paper preset loads SD-1.5's)
    unet_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    unet_layers_per_block: int = 1
    unet_attention: list[bool] = field(default_factory=lambda: [True, True, False])  # per level: transformer blocks?
    unet_heads: int = 8  # attention heads per transformer block (diffusers' ``attention_head_dim``)
    text_dim: int = 64  # the tiny CLIP text encoder's width (= the UNet's cross-attention width), layers, heads
    text_layers: int = 2
    text_heads: int = 4
    conditioner_layers: int = 2
    conditioner_heads: int = 8
    conditioner_ffn: int = 128  # paper: 2048 (PyTorch's default, as the official code)
    conditioner_dropout: float = 0.1
    # none: C = [ψ(R), σ(H_i), π(μ(H_t))] as the paper; tanh: σ(H_i) and π(μ(H_t)) each scaled by tanh(g), a learned
    # scalar from 0; attn: a learned bias on their attention logits from log σ(-6); both: the two together, so the VLLM's
    # tokens start with no value and almost no weight and earn their place (ldm/conditioner.py). The tiny preset uses
    # both (README, where we differ).
    conditioner_gate: str = "none"
    # --- sampling (saved with the model; `generate` / `eval` flags override)
    steps: int = 100  # official: 100 Euler-ancestral steps
    t2i_steps: int = 50  # the baselines' text-to-image model: DDIM steps (P2P / null-text inversion use 50 on SD)
    condition_guidance: float = 7.5  # s_c (see LegoPipeline's docstring on the paper's swapped values)
    image_guidance: float = 1.5  # s_x
    guidance_rescale: float = 0.0  # φ in [0, 1]: guided prediction rescaled to the conditioned one's std (0 = off)
    guidance_interval: list[float] = field(default_factory=lambda: [0.0, 1.0])  # noise levels [lo, hi] guided
    keep_input: float = 0.0  # τ: keep the input where the frame changes it by < τ/2, blend up to 1.5 τ (0 = off)
    # a clip's frames before the last (generate --frames, eval-timeline): 1 = each from pure noise, in one batch with the
    # last; < 1 = the last frame first, then the others from it noised to this level (they keep its hand and object)
    clip_start: float = 1.0
    # s_p: a progress model's frames guided away from the action not begun, + s_p (ε(X, C, p) − ε(X, C, 0)), one more
    # branch per step (0 = off); on the guided steps only (guidance_interval)
    progress_guidance: float = 0.0
    # the learnt change mask (ldm/change_mask.py): after training, a small net learns from the model's own frames of
    # its training pairs where the true frame differs from the input; sampling composites the frame over the input by
    # it. change_mask_pairs: training pairs it learns from (0 = all); _steps / _width: its training and size; the
    # true change is |target - input| > _threshold (largest channel, pixels in [0, 1]) grown by _dilate pixels;
    # _pos_weight weighs a missed change. Off in both presets: on a validation seed it took 22 % of the blobs left by
    # the deterministic tiny sampling for -0.5 points of action, at ~8 CPU minutes per model (RESULTS.md, change-mask
    # study); the stochastic sampler (flow_euler_a) took more of them for none (stochastic-sampler study)
    change_mask: bool = False
    change_mask_pairs: int = 0
    change_mask_steps: int = 1000
    change_mask_width: int = 32
    change_mask_threshold: float = 0.1
    change_mask_dilate: int = 1
    change_mask_pos_weight: float = 3.0
    scheduler: str = "euler_a"  # euler_a | ddim | dpm++ (ddpm models); flow_euler | flow_euler_a (flow models)


@dataclass
class VaeConfig:
    """The tiny preset's own autoencoder (``egolego vae train``)."""

    steps: int = 800
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # the tiny AutoencoderKL's blocks
    batch_size: int = 16
    lr: float = 5e-4
    kl_weight: float = 1e-6
    holdout: float = 0.1
    seed: int = 0


@dataclass
class TinyLlavaShapes:
    """The tiny preset's LLaVA, built from scratch: a CLIP vision tower and a Llama (the paper preset loads one)."""

    image_size: int = 64
    patch_size: int = 8  # 8 x 8 = 64 image tokens: a 4 x 4 grid could not tell left from middle (RESULTS.md)
    vision_dim: int = 64
    vision_layers: int = 2
    text_dim: int = 96
    text_layers: int = 2
    heads: int = 4  # attention heads of both towers
    kv_heads: int = 2  # the Llama's grouped key/value heads


@dataclass
class VisionPretrainConfig:
    """Tiny only: pre-training of the LLaVA's vision tower on EgoSynth patch labels (``egolego vllm pretrain-vision``).

    The paper's LLaVA brings a CLIP tower pre-trained on web data; at 64 px the project trains its own.
    """

    scenes: int = 16000  # rendered in memory, ~1 ms each
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    held_out: int = 300  # scenes from another seed, for the report
    # the visible states (stained, cut, open, empty, food) are rare and small: their loss is weighted up, positives
    # within it by state_pos_weight; 10 / 4 lifted the rule scenes' position words .58 -> .77 (RESULTS.md, 2026-12-06)
    state_weight: float = 10.0
    state_pos_weight: float = 4.0
    seed: int = 0


@dataclass
class VllmConfig:
    """Visual instruction tuning and enrichment (``egolego vllm tune|enrich``; paper §3.1, D.3)."""

    model: str | None = None  # paper: a local HF-format LLaVA folder
    from_model: bool = True  # tune ``model`` (a pre-trained LLaVA); false: the tiny LLaVA built from scratch
    tokenizer: str | None = None  # tiny: a folder from `egolego tokenizer` (with <image>)
    lr: float = 2e-5
    epochs: int = 3
    batch_size: int = 16
    grad_accum: int = 8  # 16 x 8 = 128, the paper's effective batch
    warmup_ratio: float = 0.03
    train_vision_tower: bool = False  # frozen, as in LLaVA (tiny: pre-trained first, see vision_pretrain)
    vision_tower: str | None = None  # tiny: a folder from `egolego vllm pretrain-vision` (else the tower is random)
    vision_pretrain: VisionPretrainConfig = field(default_factory=VisionPretrainConfig)
    tiny_llava: TinyLlavaShapes = field(default_factory=TinyLlavaShapes)  # tiny: the LLaVA built from scratch
    lora: bool = False
    lora_rank: int = 64
    resample_templates: bool = True  # draw the question template anew per sample and epoch (needs "label")
    # EgoSynth runs (demo, reproduce): tune on the curated records plus this many rendered from fresh EgoSynth scenes
    # (tuning_stills.py), for ``synthetic_epochs`` epochs instead of ``epochs``
    synthetic_records: int = 0
    synthetic_epochs: int = 1
    bf16: bool = False
    checkpoint_every: int = 150
    keep_checkpoints: int = 2
    seed: int = 0
    max_new_tokens: int = 64
    text_rows: int = 77  # N: H_t is truncated / zero-padded to this many rows
    store_dtype: str = "float16"
    inference_template: str = "How does the person properly {action} that is displayed in the video frame?"
    conversation: str = "vicuna"  # prompt format (data/llava_text.py): vicuna, or llava_llama_2 (the released VLLM)
    temperature: float = 0.0  # enrichment: 0 = greedy; > 0 samples, seeded (the release: 0.2)


@dataclass
class Config:
    """Every setting. Make one with ``preset(name)`` or ``load(path)``: the bare class holds the dataclass defaults,
    which are the paper's where the paper gives a value (the LDM recipe, LLaVA tuning) and the toy scale's where only
    the tiny preset uses the key (EgoSynth's size, the tokenizer, the VAE, the tiny UNet's shapes)."""

    preset: str = "tiny"
    image_size: int = 64  # square training / generation resolution
    synth: SynthConfig = field(default_factory=SynthConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vae: VaeConfig = field(default_factory=VaeConfig)
    ldm: LdmConfig = field(default_factory=LdmConfig)
    vllm: VllmConfig = field(default_factory=VllmConfig)


# What each preset changes from the dataclass defaults: one table per preset, the only place preset values live.
PRESET_TABLES: dict[str, dict[str, Any]] = {
    "tiny": {
        # The tiny LDM recipe: pixel space, flow matching, residual x_0 head, change-weighted loss, 4 Euler steps.
        # Chosen on a validation set of EgoSynth (benchmarks/bench_learning.py, RESULTS.md): with SD's recipe the
        # tiny model drew a grey blur below copying the input after 10 CPU minutes; this one draws the action.
        "ldm": {"from_base": False, "t2i_steps": 20, "autoencoder": "unshuffle", "objective": "flow", "prediction": "sample", "residual": True,
                "loss_weighting": "change", "lr": 1e-3, "warmup_steps": 50, "ema_decay": 0.995,
                "unet_channels": [64, 128, 128], "unet_attention": [False, True, False], "unet_heads": 2,
                # flow_euler_a: each step re-noises the predicted x_0 with fresh noise (diffusers' stochastic flow
                # Euler); on five models (three seeds) it halved the colour blobs left by deterministic flow_euler
                # with s_c 3 on every step (-51 to -56 %), action within its interval (RESULTS.md, 2026-12-06
                # stochastic-sampler study)
                "steps": 4, "scheduler": "flow_euler_a", "condition_guidance": 3.0, "image_guidance": 1.0,
                # guidance on the first two of 4 steps only (noise levels 1, .75): the early steps decide the action,
                # the late ones guided paint colour blobs; and the input kept where the frame barely changes it.
                # On four models (two seeds): blobs -29 to -37 %, SSIM +3.5 to +4, action within its interval;
                # guiding the first step alone halved the blobs but cost two of them 4-6 points of action
                # (RESULTS.md, 2026-12-06 guidance study)
                "guidance_interval": [0.6, 1.0],
                "keep_input": 0.06,
                "mixed_precision": "auto",  # bf16 on a CPU with AVX512-BF16: 1.4x the steps, same accuracy
                # the VLLM tokens start unseen: plain concatenation, the tanh gate alone and the attention bias alone
                # let them cost `lego` the action; both gates together did not (RESULTS.md, 2026-12-06 knowledge world)
                "conditioner_gate": "both"},
        # The tiny LLaVA: its own pre-trained, frozen vision tower (vllm.vision_pretrain); tuned from scratch on the
        # curated records and 12,000 rendered stills of the knowledge world (6 epochs of batch 64 at 2e-3: it learns
        # to look at the image only after ~700 steps; 3 epochs of batch 16, or lr 4e-3, never did; RESULTS.md)
        "vllm": {"from_model": False, "lr": 2e-3, "epochs": 60, "batch_size": 64, "grad_accum": 1, "checkpoint_every": 100,
                 "synthetic_records": 12000, "synthetic_epochs": 6},
    },
    "paper": {
        "image_size": 256,
        "synth": {"actions": 5000, "size": 256, "workers": 8},
        "ldm": {"batch_size": 32, "grad_accum": 4, "max_steps": 20000, "checkpoint_every": 1000,
                "ema_decay": 0.9999, "conditioner_ffn": 2048, "mixed_precision": "bf16"},
        "vllm": {"bf16": True, "max_new_tokens": 256},
    },
}


def preset(name: str) -> Config:
    """The named preset: the dataclass defaults overlaid with its table."""
    if name not in PRESET_TABLES:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return _merge(Config(preset=name), copy.deepcopy(PRESET_TABLES[name]), name)


def _merge(obj: Any, data: dict, where: str) -> Any:
    """Overlay a dict on a dataclass instance, refusing unknown keys (a typo must not be silently ignored)."""
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in names:
            raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(names))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}: expected a mapping")
            _merge(current, value, f"{where}.{key}")
        else:
            setattr(obj, key, value)
    return obj


def from_dict(data: dict, where: str = "config") -> Config:
    cfg = preset(data.get("preset", "tiny"))
    return _merge(cfg, {k: v for k, v in data.items() if k != "preset"}, where)


def load(path: str | Path) -> Config:
    """Read a YAML config (with its preset as the base)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {p} does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a config file must hold a mapping")
    return from_dict(data, str(p))


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
