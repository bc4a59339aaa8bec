"""Pixels: a textured counter, the entities of a pose, camera jitter and motion blur.

A pose is drawn once on a canvas with a margin; each video frame is then a crop of that canvas at the
camera's jitter offset, and a motion-blurred frame is the mean of several crops along a line. Frames
that share a pose (the holds before and after an action) therefore cost one crop each.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from .shapes import entities
from .world import COUNTER_FRONT, COUNTER_TOP, LIQUID, Pose, Scene


def frame_size(size: int) -> tuple[int, int]:
    """(W, H) of EgoSynth frames for a given height: 16:9, width a multiple of 8 (64 -> 112, 256 -> 456)."""
    return int(round(size * 16 / 9 / 8) * 8), size


@dataclass(frozen=True)
class Camera:
    """Jitter amplitude and blur length in pixels for a frame height."""

    width: int
    height: int

    @property
    def jitter(self) -> int:
        return max(1, round(0.02 * self.height))

    @property
    def blur(self) -> int:
        return max(3, round(0.06 * self.height))

    @property
    def margin(self) -> int:
        return self.jitter + self.blur + 1


@lru_cache(maxsize=64)
def _background(scene_key: tuple, width: int, height: int, margin: int) -> np.ndarray:
    wall, counter, seed = scene_key
    rng = np.random.default_rng(seed)
    H, W = height + 2 * margin, width + 2 * margin
    ys = (np.arange(H) - margin + 0.5) / height
    img = np.empty((H, W, 3), np.float32)
    low = np.asarray(Image.fromarray(rng.uniform(-1, 1, (5, 9)).astype(np.float32), mode="F").resize((W, H), Image.BILINEAR))
    stripes = np.sin(np.arange(W)[None, :] / width * 38 + low * 3)  # wood-like grain
    grain = rng.normal(0, 1, (H, W)).astype(np.float32)
    for c in range(3):
        wall_c = wall[c] * (0.85 + 0.15 * ys[:, None]) + 0 * low
        counter_c = counter[c] + 14 * low + 6 * stripes + 3 * grain
        front_c = counter[c] * 0.55 + 4 * grain
        img[..., c] = np.where(ys[:, None] < COUNTER_TOP, wall_c, np.where(ys[:, None] < COUNTER_FRONT, counter_c, front_c))
    edge = (np.abs(ys - COUNTER_FRONT) < 0.012)[:, None]
    img = np.where(edge[..., None], img * 0.6, img)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_canvas(scene: Scene, p: Pose, width: int, height: int, margin: int = 0) -> np.ndarray:
    """The pose drawn on a (height + 2m, width + 2m, 3) uint8 canvas."""
    bg = _background((tuple(scene.wall), tuple(scene.counter), scene.texture_seed), width, height, margin)
    im = Image.fromarray(bg)
    d = ImageDraw.Draw(im)

    def px(poly):
        return [(margin + x * width, margin + y * height) for x, y in poly]

    stream = p.stream
    for e in entities(scene, p):
        if e.layer == 1 and stream is not None:  # the poured liquid goes under the arms
            d.line(px([stream[:2], stream[2:]]), fill=LIQUID, width=max(1, round(0.025 * height)))
            stream = None
        for poly, rgb in e.parts:
            d.polygon(px(poly), fill=rgb)
    return np.asarray(im)


def _unit(seed: int, video: str, index: int, salt: str) -> float:
    h = hashlib.blake2b(f"{seed}|{video}|{index}|{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


def jitter_at(t: float, cam: Camera, phase: float) -> tuple[int, int]:
    """Camera shake as integer pixel offsets: two slow sinusoids (head motion)."""
    a = cam.jitter
    return (int(round(a * math.sin(2 * math.pi * 0.7 * t + phase))),
            int(round(a * math.sin(2 * math.pi * 0.45 * t + 2.1 * phase))))


def blur_for(seed: int, video: str, index: int, rate: float = 0.25) -> float | None:
    """Deterministic per frame: None for a sharp frame, else the motion-blur angle in radians.

    At most 3 blurred frames in a row (a frame stays sharp when the 3 before it drew "blur"), so every
    best-of-7 window holds a sharp frame, as real footage does.
    """
    def draw(i: int) -> bool:
        return _unit(seed, video, i, "blur") < rate

    if not draw(index) or all(draw(index - k) for k in (1, 2, 3)):
        return None
    return _unit(seed, video, index, "angle") * math.pi


def crop(canvas: np.ndarray, cam: Camera, offset: tuple[int, int], blur_angle: float | None) -> np.ndarray:
    """Cut the (H, W, 3) frame at the jitter offset; a blurred frame averages crops along a line."""
    m = cam.margin
    H, W = cam.height, cam.width
    ox, oy = m + offset[0], m + offset[1]
    if blur_angle is None:
        return np.ascontiguousarray(canvas[oy:oy + H, ox:ox + W])
    n = cam.blur
    acc = np.zeros((H, W, 3), np.float32)
    for k in range(n):
        s = k - (n - 1) / 2
        dx, dy = int(round(s * math.cos(blur_angle))), int(round(s * math.sin(blur_angle)))
        acc += canvas[oy + dy:oy + dy + H, ox + dx:ox + dx + W]
    return (acc / n + 0.5).astype(np.uint8)


def render_frame(scene: Scene, p: Pose, size: int) -> np.ndarray:
    """One clean frame (no jitter, no blur) of height ``size``: what the judge and the figures use."""
    w, h = frame_size(size)
    return render_canvas(scene, p, w, h, 0)


def square_frame(scene: Scene, p: Pose, size: int) -> Image.Image:
    """A clean frame squashed to ``size`` x ``size``, as the pairs' input frames are (the LDM and LLaVA read squares)."""
    return Image.fromarray(render_frame(scene, p, size)).resize((size, size), Image.LANCZOS)
