"""The plan of an EgoSynth dataset: videos made of action segments, and what each frame shows.

Every random choice is made here, in the main process, from one seed; rendering workers only evaluate
deterministic functions of the plan. So the same seed gives the same files whatever ``--workers`` is.

A segment is one action in its own scene (the camera "cuts" between segments):
``t0 -- hold (lead) -- t_start -- action (duration) -- t_stop -- hold (tail) -- t_end``.
Times lie on a 0.01 s grid so that EPIC's 2-decimal timestamps are exact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import knowledge as world_knowledge
from .sampling import sample_action_in
from .world import Action, Scene, reach_and_change


@dataclass
class Segment:
    action_id: str
    scene: Scene
    action: Action
    t0: float
    t_start: float
    t_stop: float
    t_end: float
    narration_offset: float  # EPIC narration_timestamp = t_start - offset
    quirk: str  # "" or one of the annotation quirks to inject (see the writers)

    @property
    def duration(self) -> float:
        return self.t_stop - self.t_start

    def progress(self, t: float) -> tuple[float, float]:
        return reach_and_change((t - self.t_start) / self.duration)


@dataclass
class VideoPlan:
    index: int
    participant: str  # "P03"
    epic_id: str  # "P03_07" (60 fps base) or "P03_107" (EPIC-100 extension, 50 fps base)
    ego4d_uid: str
    split: str  # "train" | "validation"
    segments: list[Segment]
    jitter_phase: float

    @property
    def duration(self) -> float:
        return self.segments[-1].t_end

    @property
    def epic_base(self) -> int:
        """EPIC's frame base: 60 for PXX_YY, 50 for PXX_1YY (extension) videos."""
        return 60 if len(self.epic_id.split("_")[1]) == 2 else 50

    @property
    def epic_fps(self) -> Fraction:
        """The MP4's real frame rate: 59.94 for the 60-base videos, as in EPIC-KITCHENS-55."""
        return Fraction(60000, 1001) if self.epic_base == 60 else Fraction(50)

    def segment_at(self, t: float) -> Segment:
        for s in self.segments:
            if t < s.t_end:
                return s
        return self.segments[-1]


EGO4D_FPS = 30
QUIRKS = ("empty_narration_timestamp", "no_contact_frame", "rejected", "invalid_annotation", "no_frames", "rigth_hand")


def _q(t: float) -> float:
    return round(t, 2)


def plan_dataset(n_actions: int, seed: int, actions_per_video: tuple[int, int] = (6, 14),
                 val_fraction: float = 0.2, actions_per_scene: int = 1, knowledge: str = "none") -> list[VideoPlan]:
    """Split ``n_actions`` into videos; sample scenes (in the world ``knowledge`` names), actions, timing and
    injected quirks.

    ``actions_per_scene`` > 1: consecutive segments of a video reuse one scene (each starting from its
    before-state) with different actions, up to that many per scene; 1 draws the same plan as before the option."""
    rng = np.random.default_rng(seed)
    videos: list[VideoPlan] = []
    made = 0
    vcount: dict[str, int] = {}
    while made < n_actions:
        n = min(n_actions - made, int(rng.integers(actions_per_video[0], actions_per_video[1] + 1)))
        participant = f"P{int(rng.integers(1, 9)):02d}"
        k = vcount.get(participant, 0) + 1
        vcount[participant] = k
        extension = rng.random() < 0.3
        epic_id = f"{participant}_{100 + k}" if extension else f"{participant}_{k:02d}"
        ego_uid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        t = 0.0
        segs: list[Segment] = []
        scene, done = None, set()  # the current scene and its actions so far
        for _ in range(n):
            action = None
            if scene is not None and len(done) < actions_per_scene:
                action = sample_action_in(rng, scene, done)
            if action is None:
                scene, action = world_knowledge.sample(rng, knowledge)
                done = set()
            done.add((action.verb, action.target, action.second))
            lead = _q(rng.uniform(0.7, 0.95) + (1.0 if not segs else 0.0))  # Ego4D's pre_45 stays in the video
            dur = _q(rng.uniform(1.0, 1.6))
            tail = _q(rng.uniform(0.15, 0.3))
            t0 = _q(t)
            t_start = _q(t0 + lead)
            t_stop = _q(t_start + dur)
            t_end = _q(t_stop + tail)
            r = rng.random()
            quirk = QUIRKS[int(r * 100)] if r < len(QUIRKS) / 100 else ""
            segs.append(Segment(f"es{made:06d}", scene, action, t0, t_start, t_stop, t_end,
                                _q(rng.uniform(0.1, 0.6)), quirk))
            made += 1
            t = t_end
        videos.append(VideoPlan(len(videos), participant, epic_id, ego_uid, "train", segs,
                                float(rng.uniform(0, 6.28))))
    # split by video: the last ~val_fraction of the videos (in a seeded order) go to validation
    order = rng.permutation(len(videos))
    n_val = max(1, int(round(val_fraction * len(videos)))) if len(videos) > 1 else 0
    for i in order[:n_val]:
        videos[int(i)].split = "validation"
    return videos
