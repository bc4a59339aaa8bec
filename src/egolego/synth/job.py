"""Render one planned video in the requested formats and measure what its annotations need.

Runs in a worker process. Writes the video's media (MP4s, EPIC ``rgb_frames`` JPEGs) and returns a
JSON-able fragment: for each action the frame numbers, pixel boxes, polygons and blur flags of the frames
the annotation files mention. The main process turns fragments into the dataset's annotation files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data.epic_schema import format_timestamp, parse_timestamp
from .media import write_jpeg, write_mp4
from .render import Camera, blur_for, crop, frame_size, jitter_at, render_canvas
from .shapes import entities, hand_box
from .timeline import EGO4D_FPS, Segment, VideoPlan
from .vocab import SKIN
from .world import pose

BLUR_WINDOW = 4  # frames either side of an annotated input/target frame whose blur is recorded


class VideoRenderer:
    """Frames of one video at one frame rate, with a cache of canvases for repeated poses."""

    def __init__(self, video: VideoPlan, size: int, seed: int, fps: float, stream: str):
        self.video, self.seed, self.fps, self.stream = video, seed, float(fps), stream
        w, h = frame_size(size)
        self.cam = Camera(w, h)
        self._cache: dict[tuple, np.ndarray] = {}

    def n_frames(self) -> int:
        return int(math.floor(self.video.duration * self.fps + 1e-9))

    def time(self, j: int) -> float:
        return j / self.fps

    def blurred(self, j: int) -> bool:
        return blur_for(self.seed, f"{self.stream}:{self.video.epic_id}", j) is not None

    def offset(self, j: int) -> tuple[int, int]:
        return jitter_at(self.time(j), self.cam, self.video.jitter_phase)

    def frame(self, j: int) -> np.ndarray:
        t = self.time(j)
        seg = self.video.segment_at(t)
        r, c = seg.progress(t)
        key = (seg.action_id, round(r, 4), round(c, 4))
        canvas = self._cache.get(key)
        if canvas is None:
            if len(self._cache) > 8:
                self._cache.clear()
            canvas = render_canvas(seg.scene, pose(seg.scene, seg.action, (r, c)), self.cam.width,
                                   self.cam.height, self.cam.margin)
            self._cache[key] = canvas
        angle = blur_for(self.seed, f"{self.stream}:{self.video.epic_id}", j)
        return crop(canvas, self.cam, self.offset(j), angle)

    def entities_px(self, seg: Segment, j: int) -> list[dict]:
        """Every entity at frame ``j``: kind, object index, clipped pixel box, polygons (pixels)."""
        t = self.time(j)
        dx, dy = self.offset(j)
        W, H = self.cam.width, self.cam.height
        out = []
        for e in entities(seg.scene, pose(seg.scene, seg.action, seg.progress(t))):
            x1, y1, x2, y2 = hand_box(e) if e.index < 0 else e.box()
            bx1, by1 = max(0.0, x1 * W - dx), max(0.0, y1 * H - dy)
            bx2, by2 = min(float(W), x2 * W - dx), min(float(H), y2 * H - dy)
            if bx2 - bx1 < 1 or by2 - by1 < 1:
                continue  # out of view
            parts = [poly for poly, rgb in e.parts if e.index >= 0 or rgb == SKIN]  # a hand's mask: no sleeve
            polys = [[[round(x * W - dx, 2), round(y * H - dy, 2)] for x, y in poly] for poly in parts]
            out.append({"name": e.name, "index": e.index, "box": [round(bx1, 2), round(by1, 2), round(bx2, 2), round(by2, 2)],
                        "polygons": polys})
        return out

    def blur_flags(self, centres: list[int]) -> list[int]:
        n = self.n_frames()
        return sorted({j for c in centres for j in range(c - BLUR_WINDOW, c + BLUR_WINDOW + 1)
                       if 0 <= j < n and self.blurred(j)})


def epic_frames(seg: Segment, base: int, n_rgb: int) -> dict[str, int]:
    """LEGO's EPIC frame choice (paper 4.1): input at t_start - 0.25 s, target at 60 % of the segment."""
    t0, t1 = (parse_timestamp(format_timestamp(t)) for t in (seg.t_start, seg.t_stop))  # as a reader sees them
    inp = max(1, int((t0 - 0.25) * base))
    tgt = int((t0 + 0.6 * (t1 - t0)) * base)
    return {"input": min(inp, n_rgb), "target": max(1, min(tgt, n_rgb))}


def ego4d_critical(seg: Segment) -> dict[str, int]:
    """Ego4D critical frames at 30 fps (video numbering)."""
    f = EGO4D_FPS
    pre = int(round(seg.t_start * f))
    return {"pre_45": pre - 45, "pre_30": pre - 30, "pre_15": pre - 15, "pre_frame": pre,
            "contact_frame": int(round((seg.t_start + 0.3 * seg.duration) * f)),
            "pnr_frame": int(round((seg.t_start + 0.55 * seg.duration) * f)),
            "post_frame": int(round(seg.t_stop * f))}


def render_epic(video: VideoPlan, root: Path, size: int, seed: int, jpgs: bool = True) -> dict:
    """MP4 at the video's real rate + ``rgb_frames`` JPEGs resampled to the 60/50 base, like ffmpeg -r."""
    base = video.epic_base
    vr = VideoRenderer(video, size, seed, float(video.epic_fps), "epic")
    n = vr.n_frames()
    n_rgb = int(math.floor(video.duration * base + 1e-9))

    def j_of(k: int) -> int:  # rgb frame k (1-based) shows the MP4 frame nearest to (k - 1) / base
        return min(n - 1, int(round((k - 1) / base * vr.fps)))

    by_j: dict[int, list[int]] = {}
    for k in range(1, n_rgb + 1):
        by_j.setdefault(j_of(k), []).append(k)
    frame_dir = root / "rgb_frames" / video.participant / video.epic_id
    frame_dir.mkdir(parents=True, exist_ok=True)

    def frames():
        for j in range(n):
            arr = vr.frame(j)
            if jpgs:
                for k in by_j.get(j, ()):
                    write_jpeg(frame_dir / f"frame_{k:010d}.jpg", arr)
            yield arr

    write_mp4(root / "videos" / f"{video.epic_id}.MP4", frames(), video.epic_fps, vr.cam.width, vr.cam.height)
    actions = {}
    for seg in video.segments:
        fr = epic_frames(seg, base, n_rgb)
        rec = {"frames": fr, "video_frames": {}, "entities": {}, "content_time": {}}
        for role, k in fr.items():
            j = j_of(k)
            rec["video_frames"][role] = j
            rec["content_time"][role] = round(vr.time(j), 4)
            rec["entities"][role] = vr.entities_px(seg, j)
        rec["blurred_video_frames"] = vr.blur_flags(list(rec["video_frames"].values()))
        rgb_window = {k for c in fr.values() for k in range(c - BLUR_WINDOW, c + BLUR_WINDOW + 1) if 1 <= k <= n_rgb}
        rec["blurred_rgb_frames"] = sorted(k for k in rgb_window if vr.blurred(j_of(k)))
        actions[seg.action_id] = rec
    return {"n_video_frames": n, "n_rgb_frames": n_rgb, "width": vr.cam.width, "height": vr.cam.height,
            "actions": actions}


def render_ego4d(video: VideoPlan, root: Path, size: int, seed: int) -> dict:
    """The full-scale 30 fps MP4 of Ego4D and the boxes of every critical frame."""
    vr = VideoRenderer(video, size, seed, EGO4D_FPS, "ego4d")
    n = vr.n_frames()
    write_mp4(root / "v2" / "full_scale" / f"{video.ego4d_uid}.mp4", (vr.frame(j) for j in range(n)),
              EGO4D_FPS, vr.cam.width, vr.cam.height)
    actions = {}
    for seg in video.segments:
        crit = {k: min(max(v, 0), n - 1) for k, v in ego4d_critical(seg).items()}
        ents = {k: vr.entities_px(seg, v) for k, v in crit.items() if k not in ("pre_45", "pre_30")}
        actions[seg.action_id] = {"critical_frames": crit, "entities": ents,
                                  "blurred_video_frames": vr.blur_flags([crit["pre_15"], crit["pnr_frame"]])}
    return {"n_video_frames": n, "width": vr.cam.width, "height": vr.cam.height, "actions": actions}
