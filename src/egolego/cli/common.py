"""What every sub-command shares: the one-line error, checks of paths and numbers, the config, the sampling flags.

User errors raise ``CliError``; ``cli.main`` prints them as ``egolego <command>: error: <what>`` and exits with
status 2. Library errors that name their argument (``errors.InputError``) become the same line, naming the flag.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import InputError


class CliError(Exception):
    """A user error reported as one line."""


def fail(e: Exception) -> CliError:
    """A library error as a ``CliError``: an ``InputError`` names its flag (``--image: x.png does not exist``)."""
    return CliError(e.with_flag() if isinstance(e, InputError) else str(e))


def writable_dir(path: Path, flag: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".egolego_write_probe-{os.getpid()}"  # one per process: ranks of one job share the folder
        probe.write_text("")
        probe.unlink(missing_ok=True)
    except OSError as e:
        raise CliError(f"{flag}: cannot write to {path}: {e.strerror or e}") from None
    return path


def out_file(path: str, flag: str, suffixes: tuple[str, ...] = ()) -> Path:
    """A file to be written: not a folder, in a writable folder, with one of ``suffixes`` when given."""
    from ..atomic import check_out_file

    if suffixes and Path(path).suffix.lower() not in suffixes:
        raise CliError(f"{flag}: {path} must end in {' or '.join(suffixes)}")
    try:
        return check_out_file(path, flag)
    except ValueError as e:
        raise CliError(str(e)) from None


def existing(path: str | None, flag: str, what: str = "folder") -> None:
    """A path the user named must exist (a folder, or a file) before any work starts."""
    p = Path(path) if path is not None else None
    ok = p is None or {"folder": p.is_dir, "file": p.is_file}.get(what, p.exists)()
    if not ok:
        raise CliError(f"{flag}: {path} is not a {what}" if what in ("folder", "file") else f"{flag}: {path} does not exist")


def positive(value: int | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise CliError(f"{flag} must be a positive integer, got {value}")


def override(section, **values) -> None:
    """Set the config ``section``'s fields from the flags that were given (a value of None: the flag was absent)."""
    for key, value in values.items():
        if value is not None:
            setattr(section, key, value)


def add_config_flags(p: argparse.ArgumentParser, preset_help: str = "default tiny (or the config file's)") -> None:
    """--preset and --config: the settings the command's other flags override."""
    p.add_argument("--preset", choices=["tiny", "paper"], help=preset_help)
    p.add_argument("--config", help="a YAML config file (its preset is the base; `egolego config` prints one)")


def load_cfg(a: argparse.Namespace):
    """The config of --config (or --preset, default tiny), bounds-checked."""
    import yaml

    from .. import config
    from .bounds import check_config

    try:
        cfg = config.load(a.config) if getattr(a, "config", None) else config.preset(getattr(a, "preset", None) or "tiny")
    except (ValueError, FileNotFoundError, yaml.YAMLError) as e:
        raise CliError(f"--config: {' '.join(str(e).split())[:300]}") from None
    bad = check_config(cfg, "config")
    if bad:
        raise CliError(f"--config: {bad}")
    if getattr(a, "config", None) and getattr(a, "preset", None) and a.preset != cfg.preset:
        raise CliError(f"--preset {a.preset} contradicts the config file's preset {cfg.preset}")
    return cfg


def add_sampling_flags(p: argparse.ArgumentParser) -> None:
    """--steps, --scheduler and both guidance scales; each defaults to the model's own setting (lego_config.yaml)."""
    from ..config import preset
    from ..ldm.sampler_names import SAMPLER_NAMES

    paper, tiny = preset("paper").ldm, preset("tiny").ldm
    p.add_argument("--steps", type=int, help=f"denoising steps (default: the model's ldm.steps; paper preset "
                   f"{paper.steps}, tiny {tiny.steps})")
    p.add_argument("--scheduler", choices=list(SAMPLER_NAMES), help=f"sampler (default: the model's ldm.scheduler; "
                   f"paper preset {paper.scheduler}, tiny {tiny.scheduler})")
    p.add_argument("--condition-guidance", type=float, help=f"s_c, guidance on the condition C (default: the model's "
                   f"ldm.condition_guidance; paper preset {paper.condition_guidance}, tiny {tiny.condition_guidance})")
    p.add_argument("--image-guidance", type=float, help=f"s_x, guidance on the input image (default: the model's "
                   f"ldm.image_guidance; paper preset {paper.image_guidance}, tiny {tiny.image_guidance})")
    p.add_argument("--guidance-rescale", type=float, help="φ in [0, 1]: rescale the guided prediction to the "
                   f"conditioned one's std (default: the model's ldm.guidance_rescale; paper preset "
                   f"{paper.guidance_rescale}, tiny {tiny.guidance_rescale})")
    p.add_argument("--keep-input", type=float, help="τ in [0, 1]: keep the input frame where the generated frame "
                   "changes it by less than τ/2 (a soft mask, 5x5 average, full change above 1.5 τ; 0 = off; default: "
                   f"the model's ldm.keep_input; paper preset {paper.keep_input}, tiny {tiny.keep_input})")
    p.add_argument("--change-mask", action=argparse.BooleanOptionalAction, help="composite the frame over the input "
                   "by the model's learnt change mask (`egolego train-mask`; default: on where the model has one)")
    p.add_argument("--guidance-interval", help="LO,HI: guide only the steps whose noise level (1 = pure noise) lies in "
                   f"[LO, HI] (default: the model's ldm.guidance_interval; paper preset "
                   f"{','.join(map(str, paper.guidance_interval))}, tiny {','.join(map(str, tiny.guidance_interval))})")


def sampling_args(a: argparse.Namespace) -> dict:
    """The sampling flags as overrides (None: keep the model's)."""
    positive(a.steps, "--steps")
    for flag, v in (("--condition-guidance", a.condition_guidance), ("--image-guidance", a.image_guidance)):
        if v is not None and not (0 <= v < 1e4):
            raise CliError(f"{flag} must be a finite number >= 0, got {v}")
    interval = None
    if a.guidance_interval is not None:
        try:
            interval = tuple(float(v) for v in a.guidance_interval.split(","))
        except ValueError:
            interval = ()
        if len(interval) != 2 or not 0 <= interval[0] <= interval[1] <= 1:
            raise CliError(f"--guidance-interval must be LO,HI with 0 <= LO <= HI <= 1, got {a.guidance_interval!r}")
    return {"steps": a.steps, "scheduler": a.scheduler, "condition_guidance": a.condition_guidance,
            "image_guidance": a.image_guidance, "guidance_rescale": a.guidance_rescale, "guidance_interval": interval,
            "keep_input": a.keep_input, "change_mask": a.change_mask}
