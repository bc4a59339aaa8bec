"""A contact sheet of EgoSynth pairs: input frame, action frame and the words, one row per action."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import InputError
from .judge import judge


def pair_frames(root: Path, rec: dict) -> tuple[Image.Image, Image.Image]:
    """The EPIC ``rgb_frames`` JPEGs of a truth record's input and target frames."""
    e = rec["epic"]
    d = Path(root) / "epic" / "rgb_frames" / e["participant_id"] / e["video_id"]
    return (Image.open(d / f"frame_{e['input_frame']:010d}.jpg").convert("RGB"),
            Image.open(d / f"frame_{e['target_frame']:010d}.jpg").convert("RGB"))


def contact_sheet(root: Path, truth: list[dict], out: Path, rows: int = 12, scale: int = 2) -> Path:
    """Write a PNG with ``rows`` pairs (label, description and the judge's verdict on the target frame)."""
    recs = [r for r in truth if "epic" in r][:rows]
    if not recs:
        raise InputError("truth", "no EPIC-format actions to show (generate EgoSynth with the epic format)")
    w0, h0 = pair_frames(root, recs[0])[0].size
    w, h = w0 * scale, h0 * scale
    text_w = 420
    sheet = Image.new("RGB", (2 * w + text_w + 30, rows * (h + 8) + 30), (250, 250, 248))
    d = ImageDraw.Draw(sheet)
    d.text((10, 8), "input frame", fill=(0, 0, 0))
    d.text((w + 20, 8), "action frame (target)", fill=(0, 0, 0))
    for i, rec in enumerate(recs):
        inp, tgt = pair_frames(root, rec)
        y = 26 + i * (h + 8)
        sheet.paste(inp.resize((w, h), Image.NEAREST), (10, y))
        sheet.paste(tgt.resize((w, h), Image.NEAREST), (w + 20, y))
        v = judge(np.asarray(tgt), rec)
        lines = [f"label: {rec['label']}"] + textwrap.wrap(rec["description"], 62)
        lines.append(f"judge: hand {'ok' if v.hand else 'x'}  object {'ok' if v.object else 'x'}  "
                     f"state {'ok' if v.state else 'x'}")
        for k, line in enumerate(lines):
            d.text((2 * w + 30, y + 2 + 12 * k), line, fill=(20, 20, 20))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
