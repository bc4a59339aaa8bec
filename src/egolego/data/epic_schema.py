"""The EPIC-KITCHENS-100 action-annotation schema, checked strictly.

Shared by EgoSynth's writer (so its files obey the rules by construction) and by the tests, which run
the same check on the real ``EPIC_100_validation.csv``. The rules (see the dataset-formats reference):

- exactly 15 columns in a fixed order;
- ``narration_timestamp`` is ``HH:MM:SS.mmm`` or empty; start/stop are ``HH:MM:SS.ss``;
- ``all_nouns`` / ``all_noun_classes`` are Python-list strings (``ast.literal_eval``, not JSON);
- frame numbers follow ``max(1, int(seconds * B))`` with B = 60 for ``PXX_YY`` and 50 for ``PXX_1YY``
  videos, whatever the video's real fps.
"""

from __future__ import annotations

import ast
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

COLUMNS = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
           "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
           "noun_class", "all_nouns", "all_noun_classes"]

TS2 = re.compile(r"^\d{2}:[0-5]\d:[0-5]\d\.\d{2}$")
TS3 = re.compile(r"^\d{2}:[0-5]\d:[0-5]\d\.\d{3}$")
VIDEO_ID = re.compile(r"^P\d{2}_\d{2,3}$")


def frame_base(video_id: str) -> int:
    """60 for EPIC-55 videos (``P01_11``), 50 for EPIC-100 extension videos (``P03_101``)."""
    return 60 if len(video_id.split("_")[1]) == 2 else 50


def parse_timestamp(ts: str) -> float:
    """``HH:MM:SS.ss`` (or ``.mmm``) to seconds."""
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def format_timestamp(seconds: float, decimals: int = 2) -> str:
    """Seconds to EPIC's ``HH:MM:SS.ss`` (2 decimals) or ``HH:MM:SS.mmm`` (3 decimals)."""
    unit = 10**decimals
    n = int(round(seconds * unit))
    whole, frac = divmod(n, unit)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{frac:0{decimals}d}"


def frame_of(seconds: float, video_id: str) -> int:
    """EPIC's RGB-frame number for a time: ``max(1, int(seconds * B))``."""
    return max(1, int(seconds * frame_base(video_id)))


@dataclass
class SchemaReport:
    rows: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_row(row: dict[str, str], where: str) -> list[str]:
    """All rule violations of one CSV row, each naming the place and the column."""
    errs = []
    vid = row["video_id"]
    if not VIDEO_ID.match(vid):
        errs.append(f"{where}: video_id {vid!r} is not PXX_YY or PXX_1YY")
        return errs
    if row["participant_id"] != vid.split("_")[0]:
        errs.append(f"{where}: participant_id {row['participant_id']!r} does not match video {vid}")
    if not row["narration_id"].startswith(vid + "_") or not row["narration_id"][len(vid) + 1:].isdigit():
        errs.append(f"{where}: narration_id {row['narration_id']!r} is not <video_id>_<index>")
    nt = row["narration_timestamp"]
    if nt and not TS3.match(nt):
        errs.append(f"{where}: narration_timestamp {nt!r} is not HH:MM:SS.mmm")
    for col, fcol in (("start_timestamp", "start_frame"), ("stop_timestamp", "stop_frame")):
        ts = row[col]
        if not TS2.match(ts):
            errs.append(f"{where}: {col} {ts!r} is not HH:MM:SS.ss")
            continue
        try:
            frame = int(row[fcol])
        except ValueError:
            errs.append(f"{where}: {fcol} {row[fcol]!r} is not an integer")
            continue
        if frame != frame_of(parse_timestamp(ts), vid):
            errs.append(f"{where}: {fcol} {frame} != max(1, int({ts} * {frame_base(vid)}))")
    for col in ("verb_class", "noun_class"):
        if not row[col].lstrip("-").isdigit():
            errs.append(f"{where}: {col} {row[col]!r} is not an integer")
    try:
        nouns = ast.literal_eval(row["all_nouns"])
        classes = ast.literal_eval(row["all_noun_classes"])
        if not (isinstance(nouns, list) and isinstance(classes, list) and len(nouns) == len(classes)):
            errs.append(f"{where}: all_nouns / all_noun_classes are not lists of equal length")
        elif nouns and nouns[0] != row["noun"]:
            errs.append(f"{where}: all_nouns[0] {nouns[0]!r} != noun {row['noun']!r}")
        elif not all(isinstance(c, int) for c in classes):
            errs.append(f"{where}: all_noun_classes holds non-integers")
    except (ValueError, SyntaxError):
        errs.append(f"{where}: all_nouns / all_noun_classes are not Python-list strings")
    return errs


def check_csv(path: Path) -> SchemaReport:
    """Check an EPIC-100 action CSV against every rule; also that rows are sorted lexicographically."""
    rep = SchemaReport()
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            rep.errors.append(f"{path}: columns {reader.fieldnames} != {COLUMNS}")
            return rep
        last = ""
        for line, row in enumerate(reader, start=2):
            rep.rows += 1
            rep.errors += check_row(row, f"{path.name}:{line}")
            if row["narration_id"] < last:
                rep.errors.append(f"{path.name}:{line}: rows are not in lexicographic narration_id order")
            last = row["narration_id"]
    return rep
