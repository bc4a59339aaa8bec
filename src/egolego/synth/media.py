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

    Lossless x264 (qp 0, 2.5x the bytes of crf 12 at 64 px): the decoded frames are exactly the YUV 4:2:0
    frames written, whatever choices the encoder makes. With crf 12 the same frames, encoded twice in one
    long-lived process, came out as different streams now and then (up to 22 levels apart once decoded; seen
    in CI's full test run and beside a busy loop, never in a fresh process, cause not found), so a dataset
    depended on the process that wrote it. The RGB -> YUV conversion runs here on one thread (PyAV otherwise
    hands it to a multi-threaded swscale). pts count frames so that decoded frame ``i`` is the ``i``-th written.
    """
    n = 0
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = 1 / Fraction(fps)
        stream.options = {"qp": "0", "preset": "veryfast", "threads": "1", "g": "30", "bf": "0"}
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
