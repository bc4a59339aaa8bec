"""Uploaded images, decoded defensively: a size cap on the file, a pixel cap, three formats, a message on failure."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

MAX_BYTES = 8 * 1024 * 1024  # also gradio's max_file_size: the server refuses larger uploads outright
MAX_PIXELS = 4096 * 4096
FORMATS = {"PNG", "JPEG", "WEBP"}
SUFFIXES = [".png", ".jpg", ".jpeg", ".webp"]


class BadImage(ValueError):
    """An upload that is not a usable image; the message is shown to the user as it is."""


def decode_upload(path: str | Path) -> Image.Image:
    """RGB image from an uploaded file (a path inside gradio's upload cache, never one typed in the browser)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        raise BadImage("the upload could not be read; try again") from None
    if size > MAX_BYTES:
        raise BadImage(f"the file is {size / 1e6:.1f} MB; the limit is {MAX_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                if im.format not in FORMATS:
                    raise BadImage(f"{im.format or 'this'} images are not accepted; upload a PNG, JPEG or WebP file")
                w, h = im.size
                if w * h > MAX_PIXELS or min(w, h) < 8:
                    raise BadImage(f"the image is {w}×{h} px; accepted: 8 to 4096 px a side")
                im.load()
                return im.convert("RGB")
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            MemoryError) as e:
        raise BadImage(f"this file is not a readable PNG, JPEG or WebP image ({type(e).__name__})") from None
