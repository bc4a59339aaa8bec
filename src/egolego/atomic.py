"""Atomic writes: every long job writes to a sibling temp file and renames it, so a killed run never leaves a
half-written file under the final name (a rerun then redoes only what is missing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``path`` (``<name>.part``, which no reader's glob matches); rename it on success.

    Writers that infer a format from the file name must be told the format explicitly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data, sort_keys: bool = False, indent: int | None = None) -> None:
    write_text(path, json.dumps(data, sort_keys=sort_keys, indent=indent))


def check_out_file(path: str | Path, flag: str) -> Path:
    """A file to be written: refused (ValueError, one line) when it is a folder or its folder cannot be written."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{flag}: {p} is a folder; a file name is expected")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{flag}: {parent} is not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{flag}: cannot create {parent}: {e.strerror or e}") from None
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{flag}: cannot write to {parent}")
    return p
