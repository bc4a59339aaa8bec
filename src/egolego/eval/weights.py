"""Where each metric finds its pretrained weights inside ``--weights-dir`` (nothing is ever downloaded).

A metric whose files are absent is skipped with one line naming the missing file.
"""

from __future__ import annotations

from pathlib import Path

from .inception import INCEPTION_FILE
from .lpips import LPIPS_FILE, SQUEEZENET_FILE

FILES = {
    "lpips": [SQUEEZENET_FILE, LPIPS_FILE],
    "fid": [INCEPTION_FILE],
    "clip": ["clip-vit-large-patch14/config.json"],
    "egovlp_ego4d": ["egovlp.pth"],
    "egovlp_epic": ["epic_mir_plus.pth"],
    "distilbert": ["distilbert-base-uncased/config.json"],
    "blip_b": ["blip-image-captioning-base/config.json"],
    "blip_l": ["blip-image-captioning-large/config.json"],
}


def find(weights_dir: str | Path | None, key: str) -> tuple[list[Path] | None, str | None]:
    """(paths, None) when every file of ``key`` is there, else (None, "missing <file>")."""
    if weights_dir is None:
        return None, f"no --weights-dir given (needs {', '.join(FILES[key])})"
    root = Path(weights_dir)
    paths = [root / f for f in FILES[key]]
    for p in paths:
        if not p.exists():
            return None, f"missing {p}"
    return [p.parent if p.name == "config.json" else p for p in paths], None
