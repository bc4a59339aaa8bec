"""Every config key is read somewhere in the package: a key that nothing reads is a setting silently ignored.

A key ``section.name`` counts as read only when ``.name`` is read *through its section*: ``<x>.section.name``
(``cfg.ldm.seed``), or ``alias.name`` where ``alias = <x>.section`` or ``alias: SectionClass`` in the same module
(``l = cfg.ldm`` … ``l.seed``; ``def train(c: LdmConfig)`` … ``c.seed``). A ``.seed`` on some other object, even in
a module that touches ``cfg.ldm``, does not count — so common names (``seed``, ``lr``, ``steps``) can fail too. It
cannot prove the value reaches the right call, but it fails for a key that no code reads through its section, as
``ldm.latent_cache`` and ``vllm.text_rows`` once were.
"""

import ast
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


def _section_names(tree: ast.AST, attr: str, cls: str) -> set[str]:
    """The names under which a module holds its ``attr`` section: aliases assigned from ``<x>.attr`` and parameters
    annotated with the section's class."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):  # l = cfg.ldm, or l, v = cfg.ldm, cfg.vllm
            pairs = [(t, node.value) for t in node.targets]
            pairs += [p for t in node.targets if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple)
                      for p in zip(t.elts, node.value.elts)]
            names |= {t.id for t, v in pairs if isinstance(t, ast.Name) and isinstance(v, ast.Attribute) and v.attr == attr}
        elif isinstance(node, ast.arg) and node.annotation is not None and cls in ast.unparse(node.annotation):
            names.add(node.arg)
    return names


class ReadIndex:
    """One module's attribute reads, indexed once: ``(section, name)`` for ``<x>.section.name`` and ``(alias, name)``
    for ``alias.name``, plus the module's aliases of each section (cached). The suite asks ~150 keys of ~150 modules,
    so walking each syntax tree once instead of twice per key keeps the test fast."""

    def __init__(self, module: str | ast.Module):
        self.tree = ast.parse(module) if isinstance(module, str) else module
        self.through_attr, self.through_name, self._aliases = set(), set(), {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute):
                if isinstance(node.value, ast.Attribute):
                    self.through_attr.add((node.value.attr, node.attr))
                elif isinstance(node.value, ast.Name):
                    self.through_name.add((node.value.id, node.attr))

    def reads(self, name: str, section: tuple[str, str]) -> bool:
        if section not in self._aliases:
            self._aliases[section] = _section_names(self.tree, *section)
        return (section[0], name) in self.through_attr or any((a, name) in self.through_name for a in self._aliases[section])


def reads(module: str | ast.Module, name: str, section: tuple[str, str]) -> bool:
    """Whether ``module`` (source or parsed) reads key ``name`` through its section (see the module docstring); code
    only — comments and docstrings that mention ``ldm.seed`` do not count."""
    return ReadIndex(module).reads(name, section)


def test_reads_needs_the_section():
    """The rule itself, on hand-written modules: what counts and what does not."""
    ldm = ("ldm", "LdmConfig")
    assert reads("x = cfg.ldm.seed", "seed", ldm)
    assert reads("l = cfg.ldm\nrun(l.seed)", "seed", ldm)
    assert reads("l, v = cfg.ldm, cfg.vllm\nl.seed", "seed", ldm)
    assert reads("def f(c: LdmConfig):\n    return c.seed", "seed", ldm)
    assert not reads("x = cfg.ldm.lr\ny = args.seed", "seed", ldm)  # another object's .seed, near cfg.ldm
    assert not reads("v = cfg.vllm\nv.seed", "seed", ldm)  # the seed of another section
    assert not reads("l = cfg.ldm.steps\nl.seed", "seed", ldm)  # an alias of a value, not of the section
    assert not reads("# the same for every ldm.seed\n'''ldm.seed in a docstring'''", "seed", ldm)  # not code


def test_every_config_key_is_read():
    sources = [p.read_text() for p in SRC.rglob("*.py") if p.name != "config.py"]
    index = [ReadIndex(m) for m in sources]
    unread = [dotted for dotted, name, section in _fields(config.Config)
              if section is not None and not any(i.reads(name, section) for i in index)]
    top = [dotted for dotted, name, section in _fields(config.Config) if section is None and dotted != "preset"
           and not any(re.search(rf"\.{re.escape(name)}\b", m) for m in sources)]
    assert not unread + top, f"config keys that nothing reads through their section: {unread + top}"
