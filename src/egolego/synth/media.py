"""Writing frames: H.264 MP4 through PyAV, JPEG through Pillow, both atomically (temp name, then rename)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..atomic import atomic_path


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: Fraction | int, width: int, height: int) -> int:
    """Encode (H, W, 3) uint8 frames at a constant frame rate; returns the number of frames.

    Single-threaded x264 with a fixed preset keeps the bytes deterministic; pts count frames so that
    decoded frame ``i`` is exactly the ``i``-th frame written. The RGB -> YUV conversion runs here on one
    thread: left to the encoder, PyAV hands it to a multi-threaded swscale, and under load (a busy CI box)
    the same frames then came out as different bytes now and then.
    """
    n = 0
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = 1 / Fraction(fps)
        stream.options = {"crf": "12", "preset": "veryfast", "threads": "1", "g": "30", "bf": "0"}
        stream.codec_context.thread_count = 1
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p", threads=1)
            frame.pts = n
            for packet in stream.encode(frame):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    return n


def write_jpeg(path: Path, arr: np.ndarray, quality: int = 90) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="JPEG", quality=quality)
