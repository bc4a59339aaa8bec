"""EgoSynth in the Ego4D FHO layout: ``v2/annotations/fho_main.json``, ``v2/ego4d.json``, ``v2/full_scale/``.

Each video is cut into two annotated intervals (canonical clips padded by up to 8 s), so clip-relative
(``clip_*``) and video-relative numbers differ, as in the real data. Narrated actions carry an 8-second
window, critical frames at 30 fps, and boxes (xywh pixels) of both hands, the object of change and the
tool. A few actions are rejected / invalid / missing a contact frame, as real ones are.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from ..atomic import write_text as atomic_write_text
from .describe import ego4d_narration, state_words
from .timeline import EGO4D_FPS, Segment, VideoPlan
from .vocab import EGO4D_STRUCTURED_VERB, KINDS, VERBS

BOX_FRAMES = ("pre_15", "pre_frame", "contact_frame", "pnr_frame", "post_frame")


def ego4d_uid(*parts) -> str:
    """The stable uid of a video part (clip, narration, narrated action); a narrated action's uid is the pair id
    that ``egolego data build --source ego4d`` gives it (``synth.pairs.truth_by_pair_id``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "egosynth/" + "/".join(map(str, parts))))


def _boxes(seg: Segment, ents: list[dict]) -> list[dict]:
    a = seg.action
    out = []
    for e in ents:
        x1, y1, x2, y2 = e["box"]
        bbox = {"x": x1, "y": y1, "width": round(x2 - x1, 2), "height": round(y2 - y1, 2)}
        if e["index"] < 0:
            out.append({"object_type": e["name"].replace(" ", "_"), "structured_noun": None,
                        "instance_number": None, "bbox": bbox})
        elif e["index"] == a.target or (e["index"] == a.second and VERBS[a.verb].second_role == "with"):
            kind = KINDS[seg.scene.objects[e["index"]].kind]
            out.append({"object_type": "object_of_change" if e["index"] == a.target else "tool",
                        "structured_noun": kind.phrase.replace(" ", "_"), "instance_number": 1, "bbox": bbox})
    return out


def narrated_action(video: VideoPlan, seg: Segment, rec: dict, clip_start_frame: int, n_frames: int) -> dict:
    f = EGO4D_FPS
    narr = seg.t_start + 0.25 * seg.duration
    start_f = max(0, int(round(narr * f)) - 120)
    end_f = min(n_frames, start_f + 240)
    crit = dict(rec["critical_frames"])
    frames = [{"frame_type": k, "frame_number": crit[k], "boxes": _boxes(seg, rec["entities"][k])} for k in BOX_FRAMES]
    if seg.quirk == "no_contact_frame":
        crit.pop("contact_frame")
        frames = [fr for fr in frames if fr["frame_type"] != "contact_frame"]
    before, after = state_words(seg.action)
    act = {
        "warnings": [], "uid": ego4d_uid(video.ego4d_uid, seg.action_id),
        "start_sec": round(start_f / f, 4), "end_sec": round(end_f / f, 4),
        "start_frame": start_f, "end_frame": end_f, "is_valid_action": True, "is_partial": False,
        "clip_start_sec": round((start_f - clip_start_frame) / f, 4), "clip_end_sec": round((end_f - clip_start_frame) / f, 4),
        "clip_start_frame": start_f - clip_start_frame, "clip_end_frame": end_f - clip_start_frame,
        "narration_timestamp_sec": round(narr, 4), "clip_narration_timestamp_sec": round(narr - clip_start_frame / f, 4),
        "narration_text": ego4d_narration(seg.scene, seg.action),
        "narration_annotation_uid": ego4d_uid("narration", video.ego4d_uid, seg.action_id),
        "structured_verb": EGO4D_STRUCTURED_VERB[seg.action.verb], "freeform_verb": None,
        "state_transition": f"{before} -> {after}",
        "critical_frames": crit,
        "clip_critical_frames": {k: v - clip_start_frame for k, v in crit.items()},
        "frames": frames,
        "is_rejected": seg.quirk == "rejected", "is_invalid_annotation": seg.quirk == "invalid_annotation",
        "reject_reason": "hands not visible" if seg.quirk == "rejected" else None, "stage": "3",
    }
    if seg.quirk == "no_frames":
        act["critical_frames"] = act["clip_critical_frames"] = act["frames"] = None
    return act


def is_valid(seg: Segment) -> bool:
    """Whether the action passes Ego4D's recommended validity filter."""
    return seg.quirk not in ("rejected", "invalid_annotation", "no_frames")


def intervals(video: VideoPlan) -> list[list[Segment]]:
    half = (len(video.segments) + 1) // 2
    return [s for s in (video.segments[:half], video.segments[half:]) if s]


def clip_parent_start_frame(video: VideoPlan, segs: list[Segment]) -> int:
    return int(round(max(0.0, segs[0].t0 - 8.0) * EGO4D_FPS))


def write_ego4d(root: Path, videos: list[VideoPlan], fragments: dict[int, dict]) -> None:
    f = EGO4D_FPS
    out_videos, meta = [], []
    for v in videos:
        frag = fragments[v.index]["ego4d"]
        n = frag["n_video_frames"]
        ivs = []
        for ci, segs in enumerate(intervals(v)):
            s_sec, e_sec = segs[0].t0, segs[-1].t_end
            p_start, p_end = max(0.0, s_sec - 8.0), min(v.duration, e_sec + 8.0)
            psf = clip_parent_start_frame(v, segs)
            ivs.append({
                "clip_id": str(10_000 + v.index * 10 + ci), "clip_uid": ego4d_uid("clip", v.ego4d_uid, ci),
                "start_sec": s_sec, "end_sec": e_sec, "start_frame": int(round(s_sec * f)),
                "end_frame": int(round(e_sec * f)), "clip_parent_start_sec": p_start, "clip_parent_end_sec": p_end,
                "clip_parent_start_frame": psf, "clip_parent_end_frame": int(round(p_end * f)), "redacted": False,
                "narrated_actions": [narrated_action(v, s, frag["actions"][s.action_id], psf, n) for s in segs],
            })
        out_videos.append({
            "video_uid": v.ego4d_uid,
            "video_metadata": {"video_start_pts": 0, "video_base_numerator": 1, "video_base_denominator": 15360,
                               "duration_sec": round(n / f, 4), "num_frames": n, "fps": float(f),
                               "width": frag["width"], "height": frag["height"], "rotation": None},
            "annotated_intervals": ivs,
        })
        meta.append({"video_uid": v.ego4d_uid, "split_fho": "train" if v.split == "train" else "val",
                     "duration_sec": round(n / f, 4), "video_metadata": {"fps": float(f), "num_frames": n}})
    doc = {"version": "v2", "date": "2026-11-28", "description": "EgoSynth (synthetic) in Ego4D FHO format",
           "metadata": {"generator": "egolego.synth"}, "videos": out_videos}
    atomic_write_text(root / "v2" / "annotations" / "fho_main.json", json.dumps(doc))
    atomic_write_text(root / "v2" / "ego4d.json", json.dumps({"version": "v2", "videos": meta}))
