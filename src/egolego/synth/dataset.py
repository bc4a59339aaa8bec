"""``egolego synth``: plan, render (in worker processes, resumable) and write an EgoSynth dataset.

Output layout::

    <out>/egosynth.json     what was generated (written last: its presence marks a complete dataset)
    <out>/truth.jsonl       one exact ground-truth record per action
    <out>/epic/...          EPIC-KITCHENS-100 + VISOR layout (see epic_writer)
    <out>/ego4d/v2/...      Ego4D FHO layout (see ego4d_writer)

Rendering one video is one task; a finished task leaves ``<out>/.parts/<video>.json``, so a killed run
picks up where it stopped when rerun with the same arguments.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..atomic import write_text as atomic_write_text
from ..config import SynthConfig
from ..errors import InputError
from .describe import description, ego4d_narration, label, state_words
from .ego4d_writer import clip_parent_start_frame, intervals, is_valid, write_ego4d
from .epic_writer import write_epic
from .job import render_ego4d, render_epic
from .knowledge import WORLDS
from .render import frame_size
from .shapes import entities, hand_box
from .timeline import Segment, VideoPlan, plan_dataset
from .vocab import KINDS
from .world import pose, side_word

FORMATS = ("epic", "ego4d")
VERSION = 1


class DatasetExists(Exception):
    """The output folder already holds a dataset and ``overwrite`` was not given."""


@dataclass(frozen=True, kw_only=True)
class SynthArgs:
    """One ``egolego synth`` run; the defaults are the tiny preset's ``synth`` settings (``config.SynthConfig``)."""

    out: Path
    actions: int = SynthConfig.actions
    size: int = SynthConfig.size
    seed: int = SynthConfig.seed
    formats: tuple[str, ...] = FORMATS
    workers: int = SynthConfig.workers
    actions_per_scene: int = SynthConfig.actions_per_scene
    knowledge: str = SynthConfig.knowledge
    overwrite: bool = False

    def validate(self) -> None:
        """Raise ``InputError`` naming the argument for every invalid value."""
        if self.actions <= 0:
            raise InputError("actions", f"must be a positive integer, got {self.actions}")
        if self.size <= 0 or self.size % 8:
            raise InputError("size", f"must be a positive multiple of 8, got {self.size}")
        if self.size < 32:
            raise InputError("size", f"must be at least 32, got {self.size}")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise InputError("format", f"must be a comma-separated subset of {','.join(FORMATS)}, got "
                             f"{','.join(self.formats)!r}")
        if self.workers < 1:
            raise InputError("workers", f"must be >= 1, got {self.workers}")
        if self.actions_per_scene < 1:
            raise InputError("actions_per_scene", f"must be >= 1, got {self.actions_per_scene}")
        if self.knowledge not in WORLDS:
            raise InputError("knowledge", f"must be one of {', '.join(WORLDS)}, got {self.knowledge!r}")
        if self.knowledge != "none" and self.actions_per_scene != 1:
            raise InputError("actions_per_scene", "must be 1 in a world with knowledge rules (a rule decides the "
                             "target of the scene's one action); use --knowledge none to share scenes")

    def fingerprint(self) -> dict:
        fp = {"version": VERSION, "actions": self.actions, "size": self.size, "seed": self.seed,
              "formats": list(self.formats)}
        if self.actions_per_scene != 1:  # datasets made before the option keep their fingerprint
            fp["actions_per_scene"] = self.actions_per_scene
        if self.knowledge != "none":  # so do datasets of the world without knowledge
            fp["knowledge"] = self.knowledge
        return fp


def _render_task(job: tuple[VideoPlan, str, int, int, tuple[str, ...]]) -> tuple[int, dict]:
    video, out, size, seed, formats = job
    frag: dict = {}
    if "epic" in formats:
        frag["epic"] = render_epic(video, Path(out) / "epic", size, seed)
    if "ego4d" in formats:
        frag["ego4d"] = render_ego4d(video, Path(out) / "ego4d", size, seed)
    atomic_write_text(Path(out) / ".parts" / f"{video.index:05d}.json", json.dumps(frag))
    return video.index, frag


def _norm_boxes(seg: Segment, p: float) -> dict[str, list[float]]:
    """Canonical (no jitter) boxes of every entity, normalised (x1, y1, x2, y2), clipped to the frame."""
    out = {}
    for e in entities(seg.scene, pose(seg.scene, seg.action, p)):
        x1, y1, x2, y2 = hand_box(e) if e.index < 0 else e.box()
        key = e.name if e.index < 0 else f"{e.index}:{e.name}"
        out[key] = [round(min(1.0, max(0.0, v)), 4) for v in (x1, y1, x2, y2)]
    return out


def _px_boxes(ents: list[dict]) -> dict[str, list[float]]:
    return {(e["name"] if e["index"] < 0 else f"{e['index']}:{e['name']}"): e["box"] for e in ents}


def truth_record(v: VideoPlan, i: int, seg: Segment, frags: dict, size: int) -> dict:
    sc, a = seg.scene, seg.action

    def obj(idx):
        if idx is None:
            return None
        o = sc.objects[idx]
        return {"index": idx, "kind": o.kind, "noun": KINDS[o.kind].phrase, "color": o.color, "side": side_word(o.x)}

    before, after = state_words(a)
    rec = {
        "action_id": seg.action_id, "split": v.split, "verb": a.verb,
        "noun": sc.objects[a.target].kind, "second_noun": sc.objects[a.second].kind if a.second is not None else None,
        "hand": a.hand, "label": label(sc, a), "narration": ego4d_narration(sc, a), "description": description(sc, a),
        "target": obj(a.target), "second": obj(a.second), "state": {"before": before, "after": after},
        "scene": sc.to_dict(), "action": a.to_dict(), "size": size, "frame_size": list(frame_size(size)),
        "timing": {"t_start": seg.t_start, "t_stop": seg.t_stop, "duration": round(seg.duration, 2)},
        "boxes": {"input": _norm_boxes(seg, 0.0), "target": _norm_boxes(seg, 1.0)},
        "quirk": seg.quirk or None,
        "rule": sc.rule or None,  # the knowledge rule that decides the target among look-alikes (synth.knowledge)
    }
    if "epic" in frags:
        e = frags["epic"]["actions"][seg.action_id]
        rec["epic"] = {"narration_id": f"{v.epic_id}_{i}", "video_id": v.epic_id, "participant_id": v.participant,
                       "frame_base": v.epic_base, "video_fps": float(v.epic_fps),
                       "input_frame": e["frames"]["input"], "target_frame": e["frames"]["target"],
                       "input_video_frame": e["video_frames"]["input"], "target_video_frame": e["video_frames"]["target"],
                       "content_time": e["content_time"],
                       "boxes_px": {r: _px_boxes(e["entities"][r]) for r in ("input", "target")},
                       "blurred_rgb_frames": e["blurred_rgb_frames"], "blurred_video_frames": e["blurred_video_frames"]}
    if "ego4d" in frags:
        g = frags["ego4d"]["actions"][seg.action_id]
        iv = next(k for k, segs in enumerate(intervals(v)) if seg in segs)
        psf = clip_parent_start_frame(v, intervals(v)[iv])
        crit = g["critical_frames"]
        rec["ego4d"] = {"video_uid": v.ego4d_uid, "interval": iv, "valid": is_valid(seg),
                        "critical_frames": crit, "clip_critical_frames": {k: c - psf for k, c in crit.items()},
                        "input_frame": crit["pre_15"], "target_frame": crit["pnr_frame"],
                        "boxes_px": {"input": _px_boxes(g["entities"]["pre_15"]),
                                     "target": _px_boxes(g["entities"]["pnr_frame"])},
                        "blurred_video_frames": g["blurred_video_frames"]}
    return rec


def generate(args: SynthArgs, progress: bool = True) -> dict:
    """Generate the dataset; returns the summary written to ``egosynth.json``."""
    args.validate()
    out = Path(args.out)
    marker = out / "egosynth.json"
    parts = out / ".parts"
    if marker.exists():
        if not args.overwrite:
            raise DatasetExists(f"{out} already holds an EgoSynth dataset (use --overwrite to replace it)")
        for sub in ("epic", "ego4d", ".parts"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in ("truth.jsonl", "egosynth.json"):
            (out / f).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    plan_file = parts / "plan.json"
    if plan_file.exists() and json.loads(plan_file.read_text()) != args.fingerprint():
        shutil.rmtree(parts)  # an unfinished run with other arguments: start over
    parts.mkdir(exist_ok=True)
    atomic_write_text(plan_file, json.dumps(args.fingerprint()))

    t0 = time.perf_counter()
    videos = plan_dataset(args.actions, args.seed, actions_per_scene=args.actions_per_scene, knowledge=args.knowledge)
    frags: dict[int, dict] = {}
    for v in videos:
        f = parts / f"{v.index:05d}.json"
        if f.exists():
            frags[v.index] = json.loads(f.read_text())
    todo = [(v, str(out), args.size, args.seed, tuple(args.formats)) for v in videos if v.index not in frags]
    bar = tqdm(total=len(videos), initial=len(frags), desc="egosynth videos", unit="video", disable=not progress)
    if args.workers > 1 and len(todo) > 1:
        with mp.get_context("spawn").Pool(min(args.workers, len(todo))) as pool:
            for idx, frag in pool.imap_unordered(_render_task, todo):
                frags[idx] = frag
                bar.update()
    else:
        for job in todo:
            idx, frag = _render_task(job)
            frags[idx] = frag
            bar.update()
    bar.close()

    if "epic" in args.formats:
        write_epic(out / "epic", videos, frags)
    if "ego4d" in args.formats:
        write_ego4d(out / "ego4d", videos, frags)
    lines = [json.dumps(truth_record(v, i, s, frags[v.index], args.size))
             for v in videos for i, s in enumerate(v.segments)]
    atomic_write_text(out / "truth.jsonl", "\n".join(lines) + "\n")
    elapsed = time.perf_counter() - t0
    n_frames = sum(fr[k]["n_video_frames"] for fr in frags.values() for k in fr)
    summary = {**args.fingerprint(), "videos": len(videos), "video_frames": n_frames,
               "frame_size": list(frame_size(args.size)), "seconds": round(elapsed, 2)}
    atomic_write_text(marker, json.dumps({k: v for k, v in summary.items() if k != "seconds"}, indent=1))
    shutil.rmtree(parts, ignore_errors=True)
    return summary


def load_truth(root: Path) -> list[dict]:
    """The ground-truth records of a dataset, in action order."""
    with open(Path(root) / "truth.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]
