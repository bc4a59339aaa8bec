"""Parsers for the real annotation files: EPIC-KITCHENS-100 (+ VISOR) and Ego4D FHO (v2 and v1).

Each parser yields ``ActionRecord``s (one per action, with its input / target frame numbers chosen as in the
paper §4.1) and counts every row it could not use, with the file, line or key and the reason. Nothing raises
on bad data: a malformed row is skipped and reported.

- EPIC: input at t_start - 0.25 s, target at t_start + 0.6 (t_stop - t_start), frames by
  ``max(1, int(s * B))`` with B = 60 (``PXX_YY``) or 50 (``PXX_1YY``), clamped to the video.
- Ego4D: input at ``pre_15``, target at ``pnr_frame`` (video numbering, 30 fps); the recommended validity
  filter ``not is_rejected and not is_invalid_annotation and is_valid_action and critical_frames and frames``.
"""

from __future__ import annotations

import ast
import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingInput
from ..names import is_safe_name
from .epic_schema import COLUMNS, TS2, frame_base, parse_timestamp

HAND_NAMES = {"left hand": "left hand", "right hand": "right hand", "rigth hand": "right hand",
              "left-hand": "left hand", "right-hand": "right hand"}


@dataclass
class ActionRecord:
    pair_id: str
    source: str  # "epic" | "ego4d"
    video_id: str
    label: str
    input_frame: int  # 1-based rgb_frames number (EPIC) or 0-based video frame (Ego4D)
    target_frame: int
    fps: float  # frames per second of the numbering above
    split: str = "train"
    boxes: dict = field(default_factory=dict)  # {"input": {name: [x1,y1,x2,y2]}, "target": {...}}, normalised
    participant: str = ""
    # frames between input and target with known progress (Ego4D's critical frames: {"contact_frame": 412, ...});
    # ``data build --timeline`` keeps them, with their boxes under the same names in ``timeline_boxes``
    timeline: dict = field(default_factory=dict)
    timeline_boxes: dict = field(default_factory=dict)
    # where the action itself begins (EPIC's start_timestamp, as a frame of the numbering above): a timeline's
    # progress is a fraction of [start_frame, target_frame], not of the span from the input frame, which lies a
    # fixed 0.25 s earlier (so a fraction of that span would mean a different point of the action for every duration)
    start_frame: int | None = None


@dataclass
class ParseReport:
    rows: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)  # files skipped whole (e.g. a broken VISOR file)

    def warn(self, reason: str, where: str) -> None:
        self.warnings[reason] += 1
        if len(self.examples) < 50:
            self.examples.append(f"{where}: {reason}")

    def drop(self, reason: str, where: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples) < 50:
            self.examples.append(f"{where}: {reason}")


# ----------------------------------------------------------------------------- EPIC-KITCHENS-100


def read_video_info(path: Path) -> dict[str, dict]:
    """video_id -> {duration, fps, width, height}; malformed rows are ignored (their videos then fail later)."""
    out = {}
    if not path.is_file():
        return out
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM must not rename the first column
            for row in csv.DictReader(f):
                try:
                    w, h = (int(v) for v in row["resolution"].lower().split("x"))
                    out[row["video_id"]] = {"duration": float(row["duration"]), "fps": float(row["fps"]), "width": w,
                                            "height": h}
                except (KeyError, ValueError, AttributeError):
                    continue
    except (UnicodeDecodeError, csv.Error, OSError):
        return out
    return out


def epic_frames(t_start: float, t_stop: float, video_id: str, n_frames: int | None) -> tuple[int, int]:
    b = frame_base(video_id)
    inp = max(1, int((t_start - 0.25) * b))
    tgt = int((t_start + 0.6 * (t_stop - t_start)) * b)
    if n_frames:
        inp, tgt = min(inp, n_frames), min(max(1, tgt), n_frames)
    return inp, max(1, tgt)


def parse_epic_csv(path: Path, split: str, info: dict[str, dict], report: ParseReport) -> list[ActionRecord]:
    try:
        return _parse_epic_csv(path, split, info, report)
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        report.warn(f"unreadable CSV ({type(e).__name__}); its remaining rows are skipped", str(path))
        return []


def _parse_epic_csv(path: Path, split: str, info: dict[str, dict], report: ParseReport) -> list[ActionRecord]:
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or [c for c in COLUMNS if c not in reader.fieldnames]:
            report.drop("missing columns", str(path))
            return out
        for line, row in enumerate(reader, start=2):
            report.rows += 1
            where = f"{path.name}:{line}"
            try:
                vid, start, stop = row["video_id"], row["start_timestamp"], row["stop_timestamp"]
                if not vid or "_" not in vid or not is_safe_name(vid):
                    raise ValueError("bad video_id")
                participant = row.get("participant_id") or vid.split("_")[0]
                if not is_safe_name(participant):
                    raise ValueError("bad participant_id")
                if not (TS2.match(start or "") and TS2.match(stop or "")):
                    raise ValueError("bad timestamp")
                t0, t1 = parse_timestamp(start), parse_timestamp(stop)
                if t1 <= t0:
                    raise ValueError("stop before start")
                label = (row["narration"] or "").strip()
                if not label:
                    raise ValueError("empty narration")
                ast.literal_eval(row["all_nouns"])  # a malformed list marks a corrupt row
            except (ValueError, SyntaxError, KeyError, TypeError, RecursionError, MemoryError) as e:
                report.drop(str(e) if str(e) in ("bad video_id", "bad participant_id", "bad timestamp",
                                                 "stop before start", "empty narration") else "malformed row", where)
                continue
            vi = info.get(vid)
            if vi is None:
                report.drop("video not in EPIC_100_video_info.csv", where)
                continue
            n = int(vi["duration"] * frame_base(vid))
            inp, tgt = epic_frames(t0, t1, vid, n)
            if tgt <= inp:
                report.drop("target not after input", where)
                continue
            pid = row.get("narration_id") or ""
            if not pid:
                report.drop("malformed row", where)
                continue
            start = min(max(inp, int(t0 * frame_base(vid))), tgt - 1)
            out.append(ActionRecord(pid, "epic", vid, label, inp, tgt, float(frame_base(vid)), split,
                                    participant=participant, start_frame=start))
            report.kept += 1
    return out


def visor_boxes(annotation_dirs: list[Path], report: ParseReport | None = None) -> dict[str, dict[int, dict[str, list[float]]]]:
    """video -> frame number -> {entity name: [x1, y1, x2, y2] normalised by 1920 x 1080}.

    A file that cannot be read or has the wrong shape is skipped whole and counted in ``report.warnings``
    (its pairs then have no boxes, and the summary says why)."""
    out: dict[str, dict[int, dict[str, list[float]]]] = {}
    report = report or ParseReport()
    for d in annotation_dirs:
        for f in sorted(d.glob("*.json")):
            try:
                found = _visor_file(f)
            except (OSError, ValueError, TypeError, AttributeError, KeyError, IndexError) as e:
                report.warn(f"VISOR file skipped ({type(e).__name__})", str(f))
                continue
            for video, frames in found.items():
                out.setdefault(video, {}).update(frames)
    return out


def _visor_file(f: Path) -> dict[str, dict[int, dict[str, list[float]]]]:
    doc = json.loads(f.read_text(encoding="utf-8-sig"))
    entries = doc["video_annotations"] if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no video_annotations list")
    out: dict[str, dict[int, dict[str, list[float]]]] = {}
    for e in entries:
        img = e.get("image") or {}
        name, video = img.get("name", ""), img.get("video", f.stem)
        try:
            frame = int(str(name).rsplit("_", 1)[-1].split(".")[0])
        except ValueError:
            continue
        ents = {}
        for a in e.get("annotations") or []:
            pts = [p for poly in (a.get("segments") or []) if poly for p in poly]
            if not pts:
                continue
            xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
            raw = str(a.get("name") or "object").strip()
            nm = HAND_NAMES.get(raw.lower(), raw)
            box = [max(0.0, min(xs) / 1920), max(0.0, min(ys) / 1080), min(1.0, max(xs) / 1920), min(1.0, max(ys) / 1080)]
            key, k = nm, 2
            while key in ents:
                key, k = f"{nm} {k}", k + 1
            ents[key] = [round(v, 4) for v in box]
        out.setdefault(str(video), {})[frame] = ents
    return out


def parse_epic(root: Path, report: ParseReport) -> list[ActionRecord]:
    files = [(root / "EPIC_100_train.csv", "train"), (root / "EPIC_100_validation.csv", "test")]
    if not any(f.is_file() for f, _ in files):
        raise MissingInput("root", f"{root} holds no EPIC_100_train.csv / EPIC_100_validation.csv (an Ego4D folder? "
                           "then the source is ego4d)")
    info = read_video_info(root / "EPIC_100_video_info.csv")
    recs = [r for f, split in files if f.is_file() for r in parse_epic_csv(f, split, info, report)]
    visor_root = root / "visor" / "GroundTruth-SparseAnnotations" / "annotations"
    boxes = visor_boxes([visor_root / "train", visor_root / "val"], report)
    for r in recs:
        frames = boxes.get(r.video_id, {})
        r.boxes = {role: frames[f] for role, f in (("input", r.input_frame), ("target", r.target_frame)) if f in frames}
    return recs


# ----------------------------------------------------------------------------- Ego4D FHO


def _ego4d_boxes(action: dict, frame_type: str, w: float, h: float) -> dict[str, list[float]]:
    out = {}
    for fr in action.get("frames") or []:
        if fr.get("frame_type") != frame_type:
            continue
        for b in fr.get("boxes") or []:
            bb = b.get("bbox") or {}
            try:
                x, y, bw, bh = (float(bb[k]) for k in ("x", "y", "width", "height"))
            except (KeyError, TypeError, ValueError):
                continue
            t = b.get("object_type") or "object"
            name = t.replace("_", " ") if t in ("left_hand", "right_hand") else (b.get("structured_noun") or t)
            out[name] = [round(max(0.0, x / w), 4), round(max(0.0, y / h), 4), round(min(1.0, (x + bw) / w), 4),
                         round(min(1.0, (y + bh) / h), 4)]
    return out


def _ego4d_action(a, uid, iv, k, md, w, h, fps, splits, report, where) -> ActionRecord | None:
    if not ego4d_valid(a):
        report.drop("invalid (Ego4D validity filter)", where)
        return None
    crit = a["critical_frames"]
    text = (a.get("narration_text") or "").strip()
    if not text:
        report.drop("empty narration", where)
        return None
    if "pre_15" not in crit or "pnr_frame" not in crit:
        report.drop("no pre_15 or pnr_frame", where)
        return None
    inp, tgt = int(crit["pre_15"]), int(crit["pnr_frame"])
    n = int(md.get("num_frames") or 0)
    if inp < 0 or (n and tgt >= n) or tgt <= inp:
        report.drop("critical frames outside the video", where)
        return None
    rec = ActionRecord(str(a.get("uid") or f"{uid}_{iv.get('clip_uid')}_{k}"), "ego4d", uid, text, inp, tgt, fps,
                       splits.get(uid, "train"))
    rec.boxes = {"input": _ego4d_boxes(a, "pre_15", w, h), "target": _ego4d_boxes(a, "pnr_frame", w, h)}
    for name in EGO4D_TIMELINE:
        try:
            f = int(crit[name])
        except (KeyError, TypeError, ValueError):
            continue
        if inp < f < tgt:
            rec.timeline[name] = f
            rec.timeline_boxes[name] = _ego4d_boxes(a, name, w, h)
    return rec


EGO4D_TIMELINE = ("pre_frame", "contact_frame")  # the critical frames between pre_15 (input) and pnr_frame (target)


def ego4d_valid(a: dict) -> bool:
    return bool(not a.get("is_rejected") and not a.get("is_invalid_annotation") and a.get("is_valid_action", True)
                and a.get("critical_frames") and a.get("frames"))


def parse_ego4d(root: Path, report: ParseReport) -> list[ActionRecord]:
    f = root / "v2" / "annotations" / "fho_main.json"
    if not f.is_file():
        f = root / "annotations" / "fho_main.json"
    if not f.is_file():
        raise MissingInput("root", f"{root} holds no v2/annotations/fho_main.json (an EPIC-KITCHENS folder? then the "
                           "source is epic)")
    try:
        doc = json.loads(f.read_text(encoding="utf-8-sig"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{f}: not valid JSON ({str(e)[:200]})") from None
    videos = _ego4d_videos(doc, f)
    splits = _ego4d_splits(f.parent.parent / "ego4d.json", report)
    out = []
    for n, v in enumerate(videos):
        if not isinstance(v, dict):
            report.warn("video entry is not an object", f"{f.name}:videos[{n}]")
            continue
        uid = v.get("video_uid")
        if not isinstance(uid, str) or not is_safe_name(uid):
            report.warn("bad video_uid; its actions are skipped", f"{f.name}:videos[{n}]")
            continue
        md = v.get("video_metadata")
        md = md if isinstance(md, dict) else {}
        try:
            w, h, fps = float(md.get("width") or 1920), float(md.get("height") or 1080), float(md.get("fps") or 30)
            if not (w > 0 and h > 0 and fps > 0):
                raise ValueError
        except (TypeError, ValueError):
            report.warn("bad video_metadata; its actions are skipped", f"{f.name}:{uid}")
            continue
        intervals = v.get("annotated_intervals") or []
        if not isinstance(intervals, list):
            report.warn("annotated_intervals is not a list; its actions are skipped", f"{f.name}:{uid}")
            continue
        for iv in intervals:
            actions = iv.get("narrated_actions") if isinstance(iv, dict) else None
            if not isinstance(actions, list):
                if actions is not None or not isinstance(iv, dict):
                    report.warn("interval without a narrated_actions list", f"{f.name}:{uid}")
                continue
            for k, a in enumerate(actions):
                report.rows += 1
                where = f"{f.name}:{uid}/{iv.get('clip_uid')}/{k}"
                try:
                    rec = _ego4d_action(a, uid, iv, k, md, w, h, fps, splits, report, where)
                except (TypeError, ValueError, AttributeError, KeyError, OverflowError):
                    report.drop("malformed action", where)
                    continue
                if rec is not None:
                    out.append(rec)
                    report.kept += 1
    return out


def _ego4d_videos(doc, f: Path) -> list:
    """The video entries of v2 (``videos`` list) or v1 (``video_data`` dict); ValueError for another shape."""
    if isinstance(doc, dict) and isinstance(doc.get("videos"), list):
        return doc["videos"]
    if isinstance(doc, dict) and isinstance(doc.get("video_data"), dict):  # v1: {"video_data": {uid: {...}}}
        return [{"video_uid": uid, **v} if isinstance(v, dict) else v for uid, v in doc["video_data"].items()]
    raise ValueError(f"{f}: not an Ego4D FHO file (expected an object with a 'videos' list or a 'video_data' object)")


def _ego4d_splits(meta: Path, report: ParseReport) -> dict[str, str]:
    """video_uid -> train | test from ``ego4d.json`` (absent or broken: every video is train, and it is said)."""
    splits: dict[str, str] = {}
    if not meta.is_file():
        return splits
    try:
        for v in json.loads(meta.read_text(encoding="utf-8-sig")).get("videos", []):
            if isinstance(v, dict) and isinstance(v.get("video_uid"), str):
                splits[v["video_uid"]] = "test" if v.get("split_fho") in ("val", "test") else "train"
    except (ValueError, AttributeError, TypeError, RecursionError, OSError) as e:
        report.warn(f"ego4d.json unreadable ({type(e).__name__}); splits default to train", str(meta))
    return splits
