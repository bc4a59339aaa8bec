"""Bounds on every number that enters through the command line or a YAML config, checked before any work.

Why here, in one table: a value out of range used to surface much later as a traceback (``synth --seed -1``),
a hang (``synth --actions 1000000000000``), a MemoryError (``synth --size 100000``) or, worse, as a run that
"succeeds" with nothing learned (``max_steps: -5``). The table is keyed by the argument's name, so a new
sub-command with a ``--seed`` or ``--batch-size`` gets the same bounds without extra code. Errors name the
flag (or config key) and the limit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

SEED_MAX = 2**32 - 1  # numpy's and torch's seeding range

# argparse dest -> (lowest, highest) allowed; None: no limit on that side
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "seed": (0, SEED_MAX),
    "actions": (1, 100_000),
    "size": (8, 4096),
    "steps": (1, 10_000),
    "max_steps": (1, 10**9),
    "batch_size": (1, 4096),
    "epochs": (1, 100_000),
    "workers": (1, 256),
    "jobs": (1, 256),
    "actions_per_scene": (1, 100),
    "num_shards": (1, 100_000),
    "shard_index": (0, None),
    "concurrency": (1, 256),
    "max_length": (1, 1_000_000),
    "vocab_size": (300, 1_000_000),
    "max_new_tokens": (1, 16_384),
    "sample": (1, 10_000),
    "limit": (1, None),
    "new_actions": (0, 1_000),
    "minutes": (1e-3, 100_000),
    "stills": (0, 10_000_000),
    "seeds": (1, 1_000),
    "test_pairs": (1, None),
    "ldm_steps": (1, 10**9),
    "condition_guidance": (0, 1000),
    "image_guidance": (0, 1000),
    "guidance_rescale": (0, 1),
    "keep_input": (0, 1),
    "clip_start": (1e-3, 1),
    "progress_guidance": (0, 100),
    "scenes": (1, 1_000_000),
    "rows": (1, 100_000),
}
# (command, dest) -> bounds that differ from the table above
COMMAND_BOUNDS: dict[tuple[str, str], tuple[float | None, float | None]] = {
    # EgoSynth renders 16:9 frames: 1080 px high is the real datasets' full HD, and bounds memory per frame.
    ("synth", "size"): (32, 1080),
}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check(value: Any, lo: float | None, hi: float | None, name: str) -> str | None:
    """An error message, or None when ``value`` is a finite number within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a number, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value}"
    if lo is not None and value < lo:
        return f"{name} must be at least {lo}" + (f" (and at most {hi})" if hi is not None else "") + f", got {value}"
    if hi is not None and value > hi:
        return f"{name} must be at most {hi}, got {value}"
    return None


def check_args(command: str, args: Any) -> str | None:
    """The first out-of-bounds numeric argument of a parsed command line, as a message; None when all fit."""
    for dest, (lo, hi) in BOUNDS.items():
        value = getattr(args, dest, None)
        if value is None or isinstance(value, (bool, str, list, tuple)):  # --sample is a switch in `vllm enrich`
            continue
        lo, hi = COMMAND_BOUNDS.get((command, dest), (lo, hi))
        msg = _check(value, lo, hi, _flag(dest))
        if msg:
            return msg
    return None


# config key -> (lowest, highest); keys not listed and not numeric are left to the config loader
CONFIG_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    **{k: (1, None) for k in ("actions", "size", "image_size", "workers", "batch_size", "grad_accum", "max_steps",
                              "checkpoint_every", "keep_checkpoints", "steps", "epochs", "vocab_size",
                              "model_max_length", "min_frequency", "shared_vocab_size", "shared_max_length",
                              "actions_per_scene", "conditioner_layers", "conditioner_heads",
                              "conditioner_ffn", "lora_rank", "max_new_tokens", "text_rows",
                              "unet_layers_per_block", "unet_heads", "text_dim", "text_layers", "text_heads",
                              "held_out", "patch_size", "vision_dim", "vision_layers", "heads", "kv_heads",
                              "change_mask_steps", "change_mask_width")},
    "change_mask_pairs": (0, None),
    "change_mask_dilate": (0, 64),
    "change_mask_threshold": (0, 1),
    "change_mask_pos_weight": (0, 1000),
    "scenes": (1, 1_000_000),
    "train_pairs": (0, None),
    "synthetic_records": (0, 10_000_000),
    "warmup_steps": (0, None),
    "change_weight": (0, None),
    "state_weight": (0, None),
    "state_pos_weight": (0, None),
    "change_threshold": (0, None),
    "min_snr_gamma": (0, None),
    "seed": (0, SEED_MAX),
    "lr": (0, 10),
    "ema_decay": (0, 1),
    "grad_clip": (0, None),
    "conditioner_dropout": (0, 1),
    "holdout": (0, 1),
    "warmup_ratio": (0, 1),
    "kl_weight": (0, None),
    "condition_guidance": (0, 1000),
    "image_guidance": (0, 1000),
    "guidance_rescale": (0, 1),
    "keep_input": (0, 1),
    "clip_start": (1e-3, 1),
    "progress_guidance": (0, 100),
    "guidance_interval": (0, 1),  # each of the two noise levels
}
_INTEGER_KEYS = {k for k, (lo, _) in CONFIG_BOUNDS.items() if lo == 1} | {"seed", "train_pairs", "synthetic_records",
                                                                         "change_mask_pairs", "change_mask_dilate"}


def check_config(cfg: Any, where: str = "config") -> str | None:
    """The first out-of-bounds value of a config dataclass (recursively), named by its dotted key."""
    for f in dataclasses.fields(cfg):
        value, name = getattr(cfg, f.name), f"{where}.{f.name}"
        if dataclasses.is_dataclass(value):
            msg = check_config(value, name)
        elif f.name in CONFIG_BOUNDS and isinstance(value, (list, tuple)):
            msg = next((m for i, v in enumerate(value) if (m := _check(v, *CONFIG_BOUNDS[f.name], f"{name}[{i}]"))),
                       None)
        elif f.name in CONFIG_BOUNDS:
            msg = _check(value, *CONFIG_BOUNDS[f.name], name)
            if msg is None and f.name in _INTEGER_KEYS and not isinstance(value, int):
                msg = f"{name} must be an integer, got {value!r}"
        else:
            continue
        if msg:
            return msg
    return None
