"""The house has no stairs running up: the general stages (``data/``, ``eval/``) do not depend on EgoSynth's
internals, and no module reaches into another package's private names."""

import ast
from pathlib import Path

import egolego

SRC = Path(egolego.__file__).parent


def _imports(path: Path):
    """(module, name) of every ``from X import name`` in a file, X resolved to a dotted egolego module."""
    pkg = ".".join(("egolego", *path.relative_to(SRC).parent.parts))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg.split(".")
            mod = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            for alias in node.names:
                yield mod, alias.name


def test_data_never_imports_synth():
    bad = [f"{f.relative_to(SRC)}: {m}" for f in (SRC / "data").rglob("*.py") for m, _ in _imports(f)
           if m.startswith("egolego.synth")]
    assert not bad, bad


def test_no_private_name_crosses_a_package():
    bad = []
    for f in SRC.rglob("*.py"):
        here = ".".join(("egolego", *f.relative_to(SRC).parent.parts))
        for mod, name in _imports(f):
            if name.startswith("_") and mod.startswith("egolego") and mod.rsplit(".", 1)[0] != here and mod != here:
                bad.append(f"{f.relative_to(SRC)}: from {mod} import {name}")
    assert not bad, bad
