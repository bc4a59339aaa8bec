"""EgoSynth as pairs: the oracle pairs manifest, and each action's truth by the pair id a build gives it.

These helpers know EgoSynth's files, so they live here; ``data/`` and ``eval/`` stay free of EgoSynth. A pair
built from EgoSynth's EPIC files is named by its ``narration_id``, one built from its Ego4D files by the uid
its Ego4D writer gave the narrated action (``ego4d_writer.ego4d_uid``), an oracle pair by the action id.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..data.manifest import write_manifest
from ..errors import InputError
from ..names import safe_name
from .dataset import load_truth
from .ego4d_writer import ego4d_uid


def truth_by_pair_id(root: str | Path) -> dict[str, dict]:
    """Each action's truth record, under every pair id it can have: EPIC build, Ego4D build, oracle pairs."""
    out = {}
    for t in load_truth(Path(root)):
        if "epic" in t:
            out[t["epic"]["narration_id"]] = t
        if "ego4d" in t:
            out[ego4d_uid(t["ego4d"]["video_uid"], t["action_id"])] = t
        out[t["action_id"]] = t
    return out


def frame_pose(truth: dict, row: dict) -> float | tuple[float, float]:
    """The (reach, change) pose a pair's target frame shows, from the frame number the build chose: what the judge
    compares a generated frame of a timeline pair against. 1.0 (the action done) for a single-frame pair."""
    from .timeline import EGO4D_FPS
    from .world import reach_and_change

    if row.get("progress") is None or row.get("target_frame") is None:
        return 1.0
    if row["source"] == "ego4d":
        t = row["target_frame"] / EGO4D_FPS
    elif row["source"] == "epic" and "epic" in truth:
        t = (row["target_frame"] - 1) / truth["epic"]["frame_base"]  # rgb frame k shows time (k - 1) / base
    else:
        return 1.0
    timing = truth["timing"]
    return reach_and_change((t - timing["t_start"]) / (timing["t_stop"] - timing["t_start"]))


def pairs_from_egosynth(egosynth: str | Path, out: str | Path, size: int = 64, with_description: bool = True,
                        progress: bool = False) -> Path:
    """Oracle pairs straight from EgoSynth's truth (its EPIC frames): for tests and the LDM's own demo.

    ``egolego data build`` is the real path (parsers, frame choice, quality pick, filters); this shortcut
    takes the truth's frames as they are. The description column holds the exact truth description when
    ``with_description`` (what a perfect curation would write).
    """
    egosynth, out = Path(egosynth), Path(out)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for t in tqdm(load_truth(egosynth), desc="pairs", disable=not progress):
        if "epic" not in t:
            raise InputError("egosynth", f"{egosynth} has no EPIC-format frames (generate it with the epic format)")
        e = t["epic"]
        d = egosynth / "epic" / "rgb_frames" / e["participant_id"] / e["video_id"]
        inp = Image.open(d / f"frame_{e['input_frame']:010d}.jpg").convert("RGB")
        tgt = Image.open(d / f"frame_{e['target_frame']:010d}.jpg").convert("RGB")
        pid, name = t["action_id"], safe_name(t["action_id"])
        paths = {"input_path": f"images/{name}_input.jpg", "target_path": f"images/{name}_target.jpg",
                 "target_full_path": f"images/{name}_target_full.jpg"}
        inp.resize((size, size), Image.LANCZOS).save(out / paths["input_path"], quality=95)
        tgt.resize((size, size), Image.LANCZOS).save(out / paths["target_path"], quality=95)
        tgt.save(out / paths["target_full_path"], quality=95)
        ct = e["content_time"]
        rows.append({"pair_id": pid, "source": "egosynth", "split": "test" if t["split"] == "validation" else "train",
                     "video_id": e["video_id"], "label": t["label"],
                     "description": t["description"] if with_description else "",
                     "boxes": json.dumps(t["boxes"]), "delta": round(ct["target"] - ct["input"], 4), **paths})
    return write_manifest(rows, out)


def rule_marks(root: str | Path) -> dict[str, str]:
    """A note per pair id of the actions a knowledge rule decides (``synth.knowledge``), for the report's samples:
    "rule scene (take-clean): you take the clean dish; the stained one goes to the sink"."""
    from .knowledge import RULE_BY_NAME

    out = {}
    for pid, t in truth_by_pair_id(root).items():
        rule = RULE_BY_NAME.get(t.get("rule") or "")
        if rule is not None:
            out[pid] = f"rule scene ({rule.name}): {rule.why}"
    return out


def egosynth_root(pairs: Path, given: Path | None) -> Path | None:
    """EgoSynth's folder for the action judge: given, or the parent of the root the pairs were built from."""
    if given is not None:
        return given if (given / "truth.jsonl").is_file() else None
    try:
        root = Path(json.loads((pairs / "summary.json").read_text())["args"]["root"])
    except (OSError, KeyError, ValueError):
        return None
    for cand in (root.parent, root):
        if (cand / "truth.jsonl").is_file() and (cand / "egosynth.json").is_file():
            return cand
    return None
