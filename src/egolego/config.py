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


@dataclass
class TokenizerConfig:
    """The byte-level BPE tokenizer the tiny text models use (no tokenizer can be downloaded)."""

    vocab_size: int = 512
    model_max_length: int = 77
    min_frequency: int = 1


@dataclass
class Config:
    preset: str = "tiny"
    image_size: int = 64  # square training / generation resolution
    synth: SynthConfig = field(default_factory=SynthConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


def preset(name: str) -> Config:
    """The named preset."""
    if name == "tiny":
        return Config()
    if name == "paper":
        return Config(preset="paper", image_size=256, synth=SynthConfig(actions=5000, size=256, workers=8))
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


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
