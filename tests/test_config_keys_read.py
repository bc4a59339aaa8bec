"""Every config key is read somewhere in the package: a key that nothing reads is a setting silently ignored.

A key counts as read when ``.<key>`` appears in a module other than ``config.py`` (attribute access on a config
section). Weak by design — it cannot prove the value reaches the right call — but it fails for a key that no code
mentions at all, as ``ldm.latent_cache`` and ``vllm.text_rows`` once were.
"""

import dataclasses
import re
from pathlib import Path

from egolego import config

SRC = Path(config.__file__).parent


def _fields(cls, prefix=""):
    for f in dataclasses.fields(cls):
        t = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(t):
            yield from _fields(type(t), f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f.name


def test_every_config_key_is_read():
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p.name != "config.py")
    unread = [dotted for dotted, name in _fields(config.Config)
              if dotted != "preset" and not re.search(rf"\.{re.escape(name)}\b", code)]
    assert not unread, f"config keys that no module reads: {unread}"
