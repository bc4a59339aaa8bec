"""Ids from data files (video ids, Ego4D uids, pair ids) become file names only through this module.

Annotation files and manifests come from the internet: an id such as ``../../../x`` must never name a file
outside the output folder. ``safe_name`` maps any id to one harmless path component, and stays injective
(two ids never share a file): an id that had to be changed gets a short hash of the original appended.
Real ids (``P01_11``, ``P01_11_12``, Ego4D uuids, EgoSynth action ids) pass unchanged.
"""

from __future__ import annotations

import hashlib
import re
import zlib

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
_BAD = re.compile(r"[^A-Za-z0-9._-]")


def is_safe_name(name: str) -> bool:
    """True for an id that is, as it is, a plain file name: letters, digits, ``._-``, not starting with a dot."""
    return isinstance(name, str) and bool(_SAFE.match(name))


def safe_name(name: str) -> str:
    """One path component for ``name`` (never ``.``/``..``, no separator, at most 129 characters)."""
    name = str(name)
    if is_safe_name(name):
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_BAD.sub('_', name).lstrip('.')[:120] or 'id'}-{digest}"


def pair_seed(seed: int, pair_id: str) -> int:
    """The sampling seed of one pair: the run's ``seed`` and a stable hash of the id (Python's ``hash()`` changes
    between processes), so a frame does not depend on the batch size, the batch it fell in, or the method."""
    return seed * 1_000_003 + zlib.crc32(str(pair_id).encode()) % 1_000_003
