"""Every config key is read somewhere in the package: a key that nothing reads is a setting silently ignored.

A key ``section.name`` counts as read when ``.name`` appears in a module other than ``config.py`` that also reaches
that section (``.section``, or its class's name) — a ``.seed`` on some other object in a module that never touches
``cfg.ldm`` does not count for ``ldm.seed``. It cannot prove the value reaches the right call, but it fails for a
key that no code near its section mentions, as ``ldm.latent_cache`` and ``vllm.text_rows`` once were.
"""

import dataclasses
import re
from pathlib import Path

from egolego import config

SRC = Path(config.__file__).parent


def _fields(cls, prefix="", section=None):
    """(dotted key, name, (section attribute, section class name) or None) of every leaf key."""
    for f in dataclasses.fields(cls):
        t = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(t):
            yield from _fields(type(t), f"{prefix}{f.name}.", (f.name, type(t).__name__))
        else:
            yield prefix + f.name, f.name, section


def test_every_config_key_is_read():
    modules = [p.read_text() for p in SRC.rglob("*.py") if p.name != "config.py"]
    unread = []
    for dotted, name, section in _fields(config.Config):
        near = [m for m in modules if section is None
                or re.search(rf"\.{re.escape(section[0])}\b|\b{re.escape(section[1])}\b", m)]
        if dotted != "preset" and not any(re.search(rf"\.{re.escape(name)}\b", m) for m in near):
            unread.append(dotted)
    assert not unread, f"config keys that no module near their section reads: {unread}"
