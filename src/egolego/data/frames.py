"""Frames: exact decoding from MP4 (PyAV) or EPIC's ``rgb_frames`` JPEGs, best-of-7 quality, similarity.

Decoding opens each video once and serves all of its requests in sorted order; a frame's index is computed from
its presentation time (``round(pts * time_base * fps)``), so the i-th frame is frame i even after a seek.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def decode_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """{index: (H, W, 3) uint8} for the wanted 0-based frame indices that exist; raises OSError if unreadable."""
    wanted = sorted(set(i for i in indices if i >= 0))
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    import av  # here, not at the top: the CLI parser imports this package and PyAV is slow to load

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate)
        tb = float(s.time_base)
        start_pts = s.start_time or 0
        first = wanted[0]
        if first > 2 * fps:  # seek to a keyframe before the first request
            c.seek(int((first / fps - 1.0) / tb) + start_pts, stream=s, backward=True)
        remaining = set(wanted)
        for frame in c.decode(s):
            if frame.pts is None:
                continue
            idx = int(round((frame.pts - start_pts) * tb * fps))
            if idx in remaining:
                out[idx] = frame.to_ndarray(format="rgb24", threads=1)  # one swscale thread, as EgoSynth writes
                remaining.discard(idx)
                if not remaining:
                    break
            elif idx > wanted[-1]:
                break
    return out


def read_jpegs(folder: Path, numbers: list[int]) -> dict[int, np.ndarray]:
    """{number: image} for EPIC's ``frame_%010d.jpg`` files that exist and can be read."""
    out = {}
    for k in sorted(set(numbers)):
        f = folder / f"frame_{k:010d}.jpg"
        if f.is_file():
            try:
                out[k] = np.asarray(Image.open(f).convert("RGB"))
            except OSError:
                continue
    return out


def sharpness(img: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: low for motion-blurred frames."""
    g = img.astype(np.float32).mean(-1)
    lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def best_of(frames: dict[int, np.ndarray], centre: int, radius: int = 3, score=sharpness) -> int | None:
    """The best-scoring frame in [centre - radius, centre + radius] (ties: nearest the centre)."""
    cands = [k for k in range(centre - radius, centre + radius + 1) if k in frames]
    if not cands:
        return None
    return max(cands, key=lambda k: (score(frames[k]), -abs(k - centre)))


def pixel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Offline similarity: cosine of mean-centred 32 x 32 RGB thumbnails (1 = identical structure)."""
    def vec(x):
        v = np.asarray(Image.fromarray(x).resize((32, 32), Image.BILINEAR), np.float32).ravel()
        v = v - v.mean()
        return v / (np.linalg.norm(v) + 1e-8)
    return float(vec(a) @ vec(b))
