"""Writing a generated clip (``egolego generate --frames K``): MP4 through PyAV, an animated GIF, or a PNG strip.

The frames of a clip are the action at progress 1/K … 1 (``FrameGenerator.clip``); a player shows the input frame
first, so the file starts with it. MP4 goes through EgoSynth's writer (``synth.media.write_mp4``) and needs even
sides (yuv420p): odd sides are padded by one pixel.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path

CLIP_SUFFIXES = (".mp4", ".gif", ".png", ".jpg", ".jpeg", ".webp")


def strip(frames: list[Image.Image], gap: int = 2) -> Image.Image:
    """The frames side by side on white, ``gap`` pixels apart."""
    w, h = frames[0].size
    out = Image.new("RGB", (len(frames) * w + (len(frames) - 1) * gap, h), "white")
    for i, f in enumerate(frames):
        out.paste(f.convert("RGB").resize((w, h)), (i * (w + gap), 0))
    return out


def _even(im: Image.Image) -> np.ndarray:
    a = np.asarray(im.convert("RGB"))
    h, w = a.shape[:2]
    return np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_clip(frames: list[Image.Image], path: str | Path, fps: float = 2.0) -> Path:
    """Write ``frames`` (the input frame first, then the generated ones) as the file type ``path`` names."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CLIP_SUFFIXES:
        raise ValueError(f"{path}: a clip is written as {', '.join(CLIP_SUFFIXES)}")
    if not frames:
        raise ValueError("no frames to write")
    size = frames[0].size
    frames = [f.convert("RGB").resize(size) for f in frames]
    if suffix == ".mp4":  # EgoSynth's writer: H.264, atomic, the frames exactly as written (lossless)
        from ..synth.media import write_mp4

        arrays = [_even(f) for f in frames]
        h, w = arrays[0].shape[:2]
        write_mp4(path, arrays, Fraction(fps).limit_denominator(1000), w, h)
    elif suffix == ".gif":
        with atomic_path(path) as tmp:
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    else:
        with atomic_path(path) as tmp:
            strip(frames).save(tmp, format=Image.registered_extensions()[suffix])
    return path
