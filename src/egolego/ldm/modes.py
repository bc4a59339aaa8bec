"""What a conditioning mode reads: which text ψ encodes, and which VLLM embeddings (H_i, H_t) it needs.

One rule for training (``ldm/data.py``), single frames (``ldm/generate.py``) and evaluation
(``eval/generate_set.py``)::

    mode       text         H_i  H_t
    label      label        -    -      (InstructPix2Pix)
    desc       description  -    -
    desc+img   description  yes  -
    desc+txt   description  -    yes
    lego       description  yes  yes
"""

from __future__ import annotations

from collections.abc import Iterable

MODES = ("label", "desc", "desc+img", "desc+txt", "lego")


def mode_uses(mode: str) -> tuple[bool, bool]:
    """(uses H_i, uses H_t) for a conditioning mode."""
    if mode not in MODES:
        raise ValueError(f"unknown conditioning mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode in ("desc+img", "lego"), mode in ("desc+txt", "lego")


def needs_embeddings(mode: str) -> bool:
    """Does the mode read the VLLM's embeddings (H_i or H_t)?"""
    return any(mode_uses(mode))


def text_key(mode: str) -> str:
    """The manifest column ψ reads: ``label`` in ``label`` mode, ``description`` in every other mode."""
    mode_uses(mode)
    return "label" if mode == "label" else "description"


def mode_text(mode: str, label: str, description: str | None) -> str:
    """The text ψ encodes for one pair or one request; a mode that reads the description refuses an empty one."""
    if text_key(mode) == "label":
        return label
    if not description:
        raise ValueError(f"mode {mode!r} needs a description: give one, or use a model with a tuned VLLM")
    return description


def check_covered(store, pair_ids: Iterable[str]) -> None:
    """Refuse pairs that an embedding store lacks (every one of them would fail later, one by one)."""
    ids = list(pair_ids)
    missing = [p for p in ids if p not in store]
    if missing:
        raise ValueError(f"{len(missing)} of {len(ids)} pairs have no embeddings in {store.root} "
                         f"(first: {missing[0]}); rerun `egolego vllm enrich` on these pairs")
