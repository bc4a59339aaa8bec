"""``egolego data build``: from raw EPIC-KITCHENS-100 / Ego4D files to a pairs manifest (paper §4.1, D.2).

parse (sources.py) -> per video: decode the 7 candidates around each input / target frame once (frames.py)
-> best-of-7 by a quality scorer -> similarity filter [lo, hi] -> square JPEGs at ``--size`` + the target at
its original aspect -> ``pairs.parquet`` + ``summary.json`` (kept / dropped by reason) + a similarity histogram.

Videos are processed in worker processes; each finished video leaves ``.videos/<id>.json`` so that a rerun
only does what is missing. ``--num-shards/--shard-index`` split the videos between machines (each shard writes
its own manifest folder ``shard-IofK``).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..atomic import write_json
from ..errors import InputError, MissingInput
from ..names import safe_name
from .frames import best_of, decode_frames, pixel_similarity, read_jpegs, sharpness
from .manifest import action_rows, refuse_existing, timeline_id, write_manifest
from .sources import ActionRecord, ParseReport, parse_ego4d, parse_epic, read_video_info

# Default similarity ranges: the paper's CLIP range, and the pixel encoder's range calibrated on EgoSynth
# (input/target pairs of one action lie in ~[0.55, 0.99]; frames of different scenes below ~0.3).
SIM_RANGES = {"clip": (0.81, 0.97), "pixel": (0.45, 0.995)}


@dataclass(kw_only=True)
class BuildArgs:
    """One ``egolego data build`` run (paper 4.1): where the raw dataset is, how frames are chosen and filtered."""

    source: str
    root: Path
    out: Path
    frames_from: str = "video"
    quality: str = "sharpness"
    quality_weights: str | None = None
    similarity: str = "pixel"
    clip_weights: str | None = None
    sim_range: tuple[float, float] | None = None
    size: int = 256
    workers: int = 1
    num_shards: int = 1
    shard_index: int = 0
    overwrite: bool = False
    timeline: int = 0  # > 0: also the frames along each action (EPIC: K - 1 even fractions; Ego4D: critical frames)

    def validate(self) -> None:
        if self.source not in ("epic", "ego4d"):
            raise InputError("source", f"must be epic or ego4d, got {self.source!r}")
        if self.frames_from not in ("video", "jpg") or (self.source == "ego4d" and self.frames_from == "jpg"):
            raise InputError("frames_from", "must be video (Ego4D has no JPEG frames) or jpg (EPIC rgb_frames), got "
                             f"{self.frames_from!r}")
        if self.quality not in ("sharpness", "laion"):
            raise InputError("quality", f"must be sharpness or laion, got {self.quality!r}")
        if self.similarity not in ("pixel", "clip"):
            raise InputError("similarity", f"must be pixel or clip, got {self.similarity!r}")
        if self.size <= 0 or self.size % 8:
            raise InputError("size", f"must be a positive multiple of 8, got {self.size}")
        if self.size > 4096:
            raise InputError("size", f"must be at most 4096, got {self.size}")
        if self.timeline and not 2 <= self.timeline <= 16:
            raise InputError("timeline", f"must be 0 (single frames) or 2 to 16 frames per action, got {self.timeline}")
        if self.workers < 1:
            raise InputError("workers", f"must be at least 1, got {self.workers}")
        if self.num_shards < 1:
            raise InputError("num_shards", f"must be at least 1, got {self.num_shards}")
        if not 0 <= self.shard_index < self.num_shards:
            raise InputError("shard_index", f"must be in [0, {self.num_shards}), got {self.shard_index}")
        if self.sim_range is not None:
            lo, hi = self.sim_range
            if not (math.isfinite(lo) and math.isfinite(hi) and -1 <= lo < hi <= 1):
                raise InputError("sim_range", f"LO HI must be finite with -1 <= LO < HI <= 1, got {lo} {hi}")
        if not Path(self.root).is_dir():
            raise MissingInput("root", f"{self.root} is not a folder")

    def fingerprint(self) -> dict:
        """What decides the pairs: a resumed build must have the same (``workers`` and ``overwrite`` do not)."""
        skip = ("workers", "overwrite") + (("timeline",) if not self.timeline else ())  # older builds stay resumable
        out = {k: str(v) for k, v in asdict(self).items() if k not in skip}
        if self.timeline:  # timeline builds before 2026-12-07 counted EPIC's progress from the input frame
            out["timeline_progress"] = "from the action's start"
        return out

    def out_dir(self) -> Path:
        """The manifest folder this run writes: ``out``, or ``out/shard-IofK`` for a shard."""
        return Path(self.out) if self.num_shards == 1 else Path(self.out) / f"shard-{self.shard_index}of{self.num_shards}"


def _shard_of(video: str, k: int) -> int:
    return int(hashlib.md5(video.encode()).hexdigest(), 16) % k


def _scorers(args: BuildArgs):
    if args.quality == "laion" or args.similarity == "clip":
        from .clip_scores import ClipScorers
        cs = ClipScorers(args.clip_weights or args.quality_weights, args.quality_weights)
        q = cs.aesthetic if args.quality == "laion" else sharpness
        sim = cs.similarity if args.similarity == "clip" else pixel_similarity
        return q, sim
    return sharpness, pixel_similarity


def _video_job(job) -> tuple[str, list[dict], list[tuple[str, str]], list[float]]:
    """Build the pairs of one video: (video, rows, dropped [(pair_id, reason)], similarities)."""
    args, video, recs, info = job
    quality, similarity = _scorers(args)
    root, out = Path(args.root), args.out_dir()
    rows, dropped, sims = [], [], []
    points = {r.pair_id: timeline_points(r, args.timeline) for r in recs}
    wanted = [k + d for r in recs for k in (r.input_frame, r.target_frame, *(f for _, f, _ in points[r.pair_id]))
              for d in range(-3, 4)]
    try:
        if args.source == "ego4d":
            frames = decode_frames(root / "v2" / "full_scale" / f"{video}.mp4", wanted)
        elif args.frames_from == "jpg":
            frames = read_jpegs(root / "rgb_frames" / recs[0].participant / video, wanted)
        else:  # EPIC MP4: rgb frame k shows the video frame nearest (k - 1) / B
            fps = info.get("fps") or recs[0].fps
            to_video = {k: int(round((k - 1) / recs[0].fps * fps)) for k in wanted if k >= 1}
            decoded = decode_frames(root / "videos" / f"{video}.MP4", list(to_video.values()))
            frames = {k: decoded[j] for k, j in to_video.items() if j in decoded}
    except FileNotFoundError:  # a video the annotations name but the folder lacks: missing, not unreadable
        return video, [], [(r.pair_id, "missing video or frames") for r in recs], []
    except (OSError, av_errors()) as e:
        return video, [], [(r.pair_id, f"unreadable video ({type(e).__name__})") for r in recs], []
    if not frames:
        return video, [], [(r.pair_id, "missing video or frames") for r in recs], []
    img_dir = out / "images"
    for r in recs:
        i = best_of(frames, r.input_frame, score=quality)
        t = best_of(frames, r.target_frame, score=quality)
        if i is None or t is None:
            dropped.append((r.pair_id, "frame beyond the video"))
            continue
        s = similarity(frames[i], frames[t])
        sims.append(s)
        lo, hi = args.sim_range or SIM_RANGES[args.similarity]
        if not lo <= s <= hi:
            dropped.append((r.pair_id, "similarity below range" if s < lo else "similarity above range"))
            continue
        safe = safe_name(r.pair_id)
        paths = {"input_path": f"images/{safe}_input.jpg", "target_path": f"images/{safe}_target.jpg",
                 "target_full_path": f"images/{safe}_target_full.jpg"}
        inp, tgt = Image.fromarray(frames[i]), Image.fromarray(frames[t])
        inp.resize((args.size, args.size), Image.LANCZOS).save(out / paths["input_path"], quality=95)
        tgt.resize((args.size, args.size), Image.LANCZOS).save(out / paths["target_path"], quality=95)
        w = max(1, round(tgt.width * args.size / tgt.height))
        tgt.resize((w, args.size), Image.LANCZOS).save(out / paths["target_full_path"], quality=95)
        row = {"pair_id": r.pair_id, "source": r.source, "split": r.split, "video_id": video, "label": r.label,
               "description": "", "boxes": json.dumps(r.boxes), "delta": round((t - i) / r.fps, 4),
               "input_frame": i, "target_frame": t, **paths}
        rows.append(row)
        rows += _timeline_rows(args, frames, row, r, points[r.pair_id], quality, out)
    img_dir.mkdir(exist_ok=True)
    return video, rows, dropped, sims


def timeline_points(r: ActionRecord, k: int) -> list[tuple[float, int, str]]:
    """(nominal progress, frame, name) of the frames strictly between an action's input and target frames that
    ``--timeline k`` keeps: Ego4D's critical frames, else k - 1 even fractions of the action's segment (EPIC: from
    its start to the target frame; ``progress_anchor``)."""
    if not k:
        return []
    a = progress_anchor(r, r.input_frame)
    span = r.target_frame - a
    if r.timeline:
        return sorted(((f - a) / span, f, name) for name, f in r.timeline.items())
    pts = [(j / k, a + round(j / k * span), f"p{j}of{k}") for j in range(1, k)]
    return [(p, f, n) for p, f, n in pts if r.input_frame < f < r.target_frame]


def progress_anchor(r: ActionRecord, input_frame: int) -> int:
    """The frame a timeline's progress counts from (p = 0): the action's start where the annotation gives one
    (EPIC), else ``input_frame`` (Ego4D's ``pre_15``: the nominal one, or the one best of 7 chose). EPIC's input
    lies 0.25 s before the start, so counting from the input would put p = 1/2 at a different point of the action
    for every duration (on EgoSynth, the arm's reach at p = 1/2 spread 0.25 / 0.46 / 0.73 at the 5th / 50th / 95th
    percentile; from the start 0.73 / 0.89 / 0.99)."""
    return input_frame if r.start_frame is None else r.start_frame


def _timeline_rows(args: BuildArgs, frames: dict, row: dict, r: ActionRecord, points, quality, out: Path) -> list[dict]:
    """The kept action's frames along its timeline, as pairs with the action's input and a ``progress`` measured on
    the frames chosen (best of 7 moves a frame by up to 3): (frame - anchor) / (target - anchor), the anchor being
    the action's start (EPIC) or the input frame (Ego4D; ``progress_anchor``)."""
    i, t = row["input_frame"], row["target_frame"]
    a = progress_anchor(r, i)
    found = []
    for _, f, name in points:
        c = best_of(frames, f, score=quality)
        if c is None or not i < c < t:
            continue
        found.append((c, name))
    extra = []
    for c, name in found:
        p = round((c - a) / (t - a), 4)
        if not 0 < p < 1:
            continue  # best of 7 moved a frame next to the start onto or before it
        pid = timeline_id(r.pair_id, p)
        if any(e["pair_id"] == pid for e in extra):
            continue  # two nominal points on one frame (a short action)
        safe = safe_name(pid)
        paths = {"target_path": f"images/{safe}_target.jpg", "target_full_path": f"images/{safe}_target_full.jpg"}
        tgt = Image.fromarray(frames[c])
        tgt.resize((args.size, args.size), Image.LANCZOS).save(out / paths["target_path"], quality=95)
        w = max(1, round(tgt.width * args.size / tgt.height))
        tgt.resize((w, args.size), Image.LANCZOS).save(out / paths["target_full_path"], quality=95)
        boxes = {"input": r.boxes.get("input", {}), "target": r.timeline_boxes.get(name, {})}
        extra.append({**row, "pair_id": pid, "boxes": json.dumps(boxes), "delta": round((c - i) / r.fps, 4),
                      "target_frame": c, "progress": p, **paths})
    return extra


def av_errors():
    import av
    return av.error.FFmpegError


def _histogram(sims: list[float], lo: float, hi: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(sims, bins=40, color="#557")
    for v in (lo, hi):
        ax.axvline(v, color="r", ls="--")
    ax.set_xlabel("input / target similarity")
    ax.set_ylabel("pairs")
    ax.set_title(f"kept: [{lo}, {hi}]")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build(args: BuildArgs, progress: bool = True) -> dict:
    args.validate()
    report = ParseReport()
    root = Path(args.root)
    recs = parse_epic(root, report) if args.source == "epic" else parse_ego4d(root, report)
    out = args.out_dir()
    done_dir = _start_or_resume(args, out)
    by_video: dict[str, list[ActionRecord]] = {}
    for r in recs:
        if _shard_of(r.video_id, args.num_shards) == args.shard_index:
            by_video.setdefault(r.video_id, []).append(r)
    info = read_video_info(root / "EPIC_100_video_info.csv") if args.source == "epic" else {}
    results: dict[str, dict] = {}
    for v in by_video:
        f = done_dir / f"{safe_name(v)}.json"
        if f.is_file():
            results[v] = json.loads(f.read_text())
    todo = [(args, v, rs, info.get(v, {})) for v, rs in sorted(by_video.items()) if v not in results]
    bar = tqdm(total=len(by_video), initial=len(results), desc=f"data build {args.source}", unit="video",
               disable=not progress)

    def keep(res):
        video, rows, dropped, sims = res
        results[video] = {"rows": rows, "dropped": dropped, "sims": sims}
        write_json(done_dir / f"{safe_name(video)}.json", results[video])
        bar.update()

    if args.workers > 1 and len(todo) > 1:
        with mp.get_context("spawn").Pool(min(args.workers, len(todo))) as pool:
            for res in pool.imap_unordered(_video_job, todo):
                keep(res)
    else:
        for job in todo:
            keep(_video_job(job))
    bar.close()
    rows = sorted((row for r in results.values() for row in r["rows"]), key=lambda x: x["pair_id"])
    dropped = Counter({f"parse: {k}": v for k, v in report.dropped.items()})
    dropped.update(reason for r in results.values() for _, reason in r["dropped"])
    sims = [s for r in results.values() for s in r["sims"]]
    lo, hi = args.sim_range or SIM_RANGES[args.similarity]
    if sims:
        _histogram(sims, lo, hi, out / "similarity_histogram.png")
    train_v = {r["video_id"] for r in rows if r["split"] == "train"}
    test_v = {r["video_id"] for r in rows if r["split"] == "test"}
    if train_v & test_v:
        raise ValueError(f"split leak: videos {sorted(train_v & test_v)[:3]} are in both splits")
    singles = action_rows(rows)
    summary = {"source": args.source, "rows_parsed": report.rows, "kept": len(singles), "dropped": dict(dropped),
               "warnings": dict(report.warnings), "dropped_examples": report.examples[:20], "similarity_range": [lo, hi],
               "similarity_median": float(np.median(sims)) if sims else None,
               "train": sum(r["split"] == "train" for r in singles), "test": sum(r["split"] == "test" for r in singles),
               "timeline_pairs": len(rows) - len(singles),
               "args": {k: str(v) for k, v in asdict(args).items()}}
    if not rows:
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        shutil.rmtree(done_dir, ignore_errors=True)
        why = ", ".join(f"{k}: {v}" for k, v in dropped.most_common(3)) or "no annotated action found"
        raise InputError("root", f"no pair kept of {report.rows} annotated actions ({why}); is it the right folder? "
                         f"(details in {out / 'summary.json'})")
    write_manifest(rows, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    shutil.rmtree(done_dir, ignore_errors=True)
    return summary


def _start_or_resume(args: BuildArgs, out: Path) -> Path:
    """The folder of per-video results: a rerun resumes only a build with the same arguments (else old and new
    pairs would mix); a finished manifest is replaced only with ``--overwrite``."""
    done_dir = out / ".videos"
    refuse_existing(out, args.overwrite)
    marker = done_dir / ".args.json"  # a dot name: no video id maps to it
    if args.overwrite:
        for p in (done_dir, out / "images"):
            shutil.rmtree(p, ignore_errors=True)
    elif marker.is_file():
        try:
            old = json.loads(marker.read_text())
        except ValueError:
            old = {}
        diff = [f"{k}: {old.get(k)} -> {v}" for k, v in args.fingerprint().items() if old.get(k) != v]
        if diff:
            raise InputError("out", f"{out} holds an unfinished build with other arguments ({'; '.join(diff[:3])}); "
                             "rerun it with the same arguments, or pass --overwrite to start again")
    elif done_dir.is_dir() and any(done_dir.glob("*.json")):
        raise InputError("out", f"{out} holds an unfinished build of unknown arguments; pass --overwrite to start "
                         "again")
    (out / "images").mkdir(parents=True, exist_ok=True)
    done_dir.mkdir(exist_ok=True)
    write_json(marker, args.fingerprint())
    return done_dir
