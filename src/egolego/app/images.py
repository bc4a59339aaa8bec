"""Uploaded images, decoded defensively: a size cap on the file, a pixel cap, three formats, a message on failure."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from pathlib import Path

from PIL import Image

MAX_BYTES = 8 * 1024 * 1024  # also gradio's max_file_size: the server refuses larger uploads outright
MAX_PIXELS = 4096 * 4096
FORMATS = {"PNG", "JPEG", "WEBP"}
SUFFIXES = [".png", ".jpg", ".jpeg", ".webp"]


def served(im: Image.Image | None) -> str | None:
    """A PNG file of ``im`` for an output component, written atomically and named by its content.

    Handing gradio a PIL image makes it re-encode the image into its cache on *every* request, rewriting the same
    content-named file in place (``save_pil_to_cache``), so two raters shown the same frame at once could be sent a
    file that was being rewritten ("Too little data for declared Content-Length"). A file path is copied into the
    cache under a staging name and renamed, once; this file is written the same way, in the system's temp folder
    (which gradio serves from without opening ``allowed_paths``).
    """
    if im is None:
        return None
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    data = buf.getvalue()
    folder = Path(tempfile.gettempdir()) / "egolego-app"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
    if not path.is_file():
        fd, staging = tempfile.mkstemp(dir=folder, prefix=".", suffix=".png")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(staging, path)
    return str(path)


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
