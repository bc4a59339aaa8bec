"""EgoSynth in the EPIC-KITCHENS-100 layout: action CSVs, video info, class files and VISOR sparse JSON.

Layout under ``<out>/epic/``::

    EPIC_100_train.csv  EPIC_100_validation.csv  EPIC_100_video_info.csv
    EPIC_100_verb_classes.csv  EPIC_100_noun_classes.csv
    rgb_frames/<Pxx>/<video_id>/frame_%010d.jpg     videos/<video_id>.MP4
    visor/GroundTruth-SparseAnnotations/annotations/{train,val}/<video_id>.json
    visor/frame_mapping.json  visor/EPIC_100_noun_classes_v2.csv
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from ..atomic import write_text as atomic_write_text
from ..data.epic_schema import COLUMNS, format_timestamp, frame_of, parse_timestamp
from .describe import label
from .timeline import Segment, VideoPlan
from .vocab import EPIC_NOUN_CATEGORY, EPIC_VERB_CATEGORY, EPIC_VERB_KEYS, KINDS, VERBS

VISOR_W, VISOR_H = 1920, 1080  # VISOR's sparse polygons are in full-HD pixels, whatever the frame size


def action_row(video: VideoPlan, index: int, seg: Segment) -> dict[str, str]:
    """One row of EPIC_100_{train,validation}.csv."""
    sc, a = seg.scene, seg.action
    nouns = [KINDS[sc.objects[a.target].kind].epic_noun]
    classes = [KINDS[sc.objects[a.target].kind].epic_class]
    if a.second is not None:
        nouns.append(KINDS[sc.objects[a.second].kind].epic_noun)
        classes.append(KINDS[sc.objects[a.second].kind].epic_class)
    start, stop = format_timestamp(seg.t_start), format_timestamp(seg.t_stop)
    narr_ts = "" if seg.quirk == "empty_narration_timestamp" else format_timestamp(
        max(0.0, seg.t_start - seg.narration_offset), 3)
    return {
        "narration_id": f"{video.epic_id}_{index}", "participant_id": video.participant,
        "video_id": video.epic_id, "narration_timestamp": narr_ts,
        "start_timestamp": start, "stop_timestamp": stop,
        # frames from the written timestamps, exactly as a reader recomputes them
        "start_frame": str(frame_of(parse_timestamp(start), video.epic_id)),
        "stop_frame": str(frame_of(parse_timestamp(stop), video.epic_id)),
        "narration": label(sc, a), "verb": a.verb, "verb_class": str(VERBS[a.verb].epic_class),
        "noun": nouns[0], "noun_class": str(classes[0]),
        "all_nouns": repr(nouns), "all_noun_classes": repr(classes),
    }


def _csv_text(header: list[str], rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def contact_index(seg: Segment, role: str) -> int | None:
    """Which object the acting hand touches in the input / target frame (VISOR's in_contact_object)."""
    v, a = seg.action.verb, seg.action
    if role == "input":
        return a.target if v == "put" else a.second if v == "cut" else None
    return a.second if v in ("cut", "wipe", "stir") else a.target


def _mask_id(*parts) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=6).hexdigest()


def visor_frame(video: VideoPlan, seg: Segment, seq: int, role: str, frame: int, ents: list[dict],
                width: int, height: int) -> dict:
    """One ``video_annotations`` entry: polygons in 1920x1080 pixels, hands with their contact."""
    sx, sy = VISOR_W / width, VISOR_H / height
    name = f"{video.epic_id}_frame_{frame:010d}.jpg"
    ids = {e["index"] if e["index"] >= 0 else e["name"]: _mask_id(video.epic_id, frame, e["name"], e["index"]) for e in ents}
    anns = []
    for e in ents:
        segments = [[[round(x * sx, 2), round(y * sy, 2)] for x, y in poly] for poly in e["polygons"]]
        if e["index"] < 0:
            side = e["name"].split()[0]
            ann = {"id": ids[e["name"]], "name": e["name"], "class_id": 300 if side == "left" else 301,
                   "exhaustive": "y", "segments": segments}
            touched = contact_index(seg, role) if side == seg.action.hand else None
            ann["in_contact_object"] = ids.get(touched, "hand-not-in-contact") if touched is not None else "hand-not-in-contact"
            if side == "right" and seg.quirk == "rigth_hand":
                ann["name"] = "rigth hand"  # the real files hold this typo
        else:
            kind = KINDS[seg.scene.objects[e["index"]].kind]
            ann = {"id": ids[e["index"]], "name": kind.phrase, "class_id": kind.epic_class,
                   "exhaustive": "y", "segments": segments}
        anns.append(ann)
    return {"image": {"image_path": f"{video.epic_id}/{name}", "name": name,
                      "subsequence": f"{video.epic_id}_seq_{seq:05d}", "video": video.epic_id},
            "annotations": anns}


def class_files() -> tuple[str, str, str]:
    """Verb, noun and VISOR noun-v2 class files with the real EPIC ids (our subset of instances)."""
    verb_rows = []
    for cid in sorted(EPIC_VERB_KEYS):
        inst = sorted(v.name for v in VERBS.values() if v.epic_class == cid)
        verb_rows.append({"id": str(cid), "key": EPIC_VERB_KEYS[cid], "instances": repr(inst),
                          "category": EPIC_VERB_CATEGORY[cid]})
    noun_rows = [{"id": str(k.epic_class), "key": k.epic_noun, "instances": repr([k.epic_noun, k.name]),
                  "category": EPIC_NOUN_CATEGORY[k.name]} for k in sorted(KINDS.values(), key=lambda k: k.epic_class)]
    v2 = noun_rows + [{"id": "300", "key": "hand:left", "instances": "['hand:left']", "category": "hand"},
                      {"id": "301", "key": "hand:right", "instances": "['hand:right']", "category": "hand"}]
    hdr = ["id", "key", "instances", "category"]
    return _csv_text(hdr, verb_rows), _csv_text(hdr, noun_rows), _csv_text(hdr, v2)


def write_epic(root: Path, videos: list[VideoPlan], fragments: dict[int, dict]) -> None:
    """All EPIC / VISOR annotation files (the media were written by the workers)."""
    rows = {"train": [], "validation": []}
    info = []
    for v in videos:
        frag = fragments[v.index]["epic"]
        for i, seg in enumerate(v.segments):
            rows[v.split].append(action_row(v, i, seg))
        info.append({"video_id": v.epic_id, "duration": f"{v.duration:.6f}", "fps": repr(float(v.epic_fps)),
                     "resolution": f"{frag['width']}x{frag['height']}"})
        entries = []
        for i, seg in enumerate(v.segments):
            rec = frag["actions"][seg.action_id]
            for role in ("input", "target"):
                entries.append(visor_frame(v, seg, i + 1, role, rec["frames"][role], rec["entities"][role],
                                           frag["width"], frag["height"]))
        entries.sort(key=lambda e: e["image"]["name"])
        split = "train" if v.split == "train" else "val"
        atomic_write_text(root / "visor" / "GroundTruth-SparseAnnotations" / "annotations" / split / f"{v.epic_id}.json",
                          json.dumps({"video_annotations": entries}))
    for split, name in (("train", "EPIC_100_train.csv"), ("validation", "EPIC_100_validation.csv")):
        atomic_write_text(root / name, _csv_text(COLUMNS, sorted(rows[split], key=lambda r: r["narration_id"])))
    atomic_write_text(root / "EPIC_100_video_info.csv", _csv_text(["video_id", "duration", "fps", "resolution"],
                                                                   sorted(info, key=lambda r: r["video_id"])))
    verbs, nouns, nouns_v2 = class_files()
    atomic_write_text(root / "EPIC_100_verb_classes.csv", verbs)
    atomic_write_text(root / "EPIC_100_noun_classes.csv", nouns)
    atomic_write_text(root / "visor" / "EPIC_100_noun_classes_v2.csv", nouns_v2)
    mapping = {v.epic_id: {f"{v.epic_id}_frame_{k:010d}.jpg": f"frame_{k:010d}.jpg"
                           for seg in v.segments for k in fragments[v.index]["epic"]["actions"][seg.action_id]["frames"].values()}
               for v in videos}
    atomic_write_text(root / "visor" / "frame_mapping.json", json.dumps(mapping, sort_keys=True))
