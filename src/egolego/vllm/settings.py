"""The enrichment settings of ``vllm.*`` (template, new tokens, H_t rows, store dtype) and where they come from.

A tuned model folder carries the ``vllm`` section of the config it was tuned with (``vllm_config.yaml``, written
by ``VllmTuner.export``), so ``egolego vllm enrich``, ``egolego generate`` and ``egolego eval`` describe with the
template and token budget the preset asks for, without the user repeating them. Precedence: an explicit
argument > a config passed by the caller (``--config`` / ``--preset``) > the model folder's file > defaults.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from ..config import VllmConfig

SETTINGS_FILE = "vllm_config.yaml"


def save_settings(v: VllmConfig, model_dir: str | Path) -> None:
    Path(model_dir, SETTINGS_FILE).write_text(yaml.safe_dump(dataclasses.asdict(v), sort_keys=False))


def load_settings(model_dir: str | Path) -> VllmConfig:
    """The ``vllm`` config the folder's model was tuned with (defaults for a folder without one).

    Keys this version does not know are ignored: a model tuned by another version must still load.
    """
    f = Path(model_dir) / SETTINGS_FILE
    data = yaml.safe_load(f.read_text()) if f.is_file() else {}
    return _known(VllmConfig, data or {})


def _known(cls, data: dict):
    """``cls(**data)`` on the keys ``cls`` has, nested dataclasses (``vision_pretrain``) built the same way."""
    defaults, kwargs = cls(), {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value, default = data[f.name], getattr(defaults, f.name)
            nested = dataclasses.is_dataclass(default) and isinstance(value, dict)
            kwargs[f.name] = _known(type(default), value) if nested else value
    return cls(**kwargs)
