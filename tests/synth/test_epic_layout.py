"""EgoSynth's EPIC-KITCHENS-100 + VISOR files: layout, media and agreement with truth.jsonl."""

import ast
import csv
import json
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from egolego.synth.epic_writer import VISOR_H, VISOR_W


def _rows(root):
    return {r["narration_id"]: r for s in ("train", "validation")
            for r in csv.DictReader(open(root / "epic" / f"EPIC_100_{s}.csv"))}


def test_video_info_and_class_files(small_dataset):
    info = list(csv.DictReader(open(small_dataset / "epic" / "EPIC_100_video_info.csv")))
    assert list(info[0]) == ["video_id", "duration", "fps", "resolution"]
    for r in info:
        assert r["resolution"] == "112x64"
        assert float(r["fps"]) in (50.0, 60000 / 1001)
    verbs = list(csv.DictReader(open(small_dataset / "epic" / "EPIC_100_verb_classes.csv")))
    assert list(verbs[0]) == ["id", "key", "instances", "category"]
    by_id = {int(v["id"]): v for v in verbs}
    assert by_id[0]["key"] == "take" and by_id[10]["key"] == "mix" and "stir" in ast.literal_eval(by_id[10]["instances"])
    nouns = {int(n["id"]): n["key"] for n in csv.DictReader(open(small_dataset / "epic" / "EPIC_100_noun_classes.csv"))}
    assert nouns[13] == "cup" and nouns[18] == "board:chopping" and nouns[24] == "hob"  # the real EPIC ids


def test_rows_match_truth(small_dataset, small_truth):
    rows = _rows(small_dataset)
    for t in small_truth:
        r = rows[t["epic"]["narration_id"]]
        assert r["narration"] == t["label"] and r["verb"] == t["verb"]
        assert r["video_id"] == t["epic"]["video_id"]
        assert (t["split"] == "validation") == (r in csv.DictReader(open(small_dataset / "epic" / "EPIC_100_validation.csv")))


def test_split_is_by_video(small_truth):
    train = {t["epic"]["video_id"] for t in small_truth if t["split"] == "train"}
    val = {t["epic"]["video_id"] for t in small_truth if t["split"] == "validation"}
    assert train and val and not train & val


def test_rgb_frames_and_mp4(small_dataset, small_truth):
    info = {r["video_id"]: r for r in csv.DictReader(open(small_dataset / "epic" / "EPIC_100_video_info.csv"))}
    vid = small_truth[0]["epic"]["video_id"]
    part = small_truth[0]["epic"]["participant_id"]
    frames = sorted((small_dataset / "epic" / "rgb_frames" / part / vid).glob("frame_*.jpg"))
    base = 60 if len(vid.split("_")[1]) == 2 else 50
    assert frames[0].name == "frame_0000000001.jpg"
    assert len(frames) == int(float(info[vid]["duration"]) * base + 1e-9)
    assert Image.open(frames[0]).size == (112, 64)
    with av.open(str(small_dataset / "epic" / "videos" / f"{vid}.MP4")) as c:
        s = c.streams.video[0]
        assert s.average_rate == (Fraction(60000, 1001) if base == 60 else Fraction(50))
        n = sum(1 for _ in c.decode(s))
    assert n == int(float(info[vid]["duration"]) * float(info[vid]["fps"]) + 1e-9)


def test_jpeg_equals_mp4_frame(small_dataset, small_truth):
    """rgb frame k is the MP4 frame nearest (k-1)/B, as ffmpeg -r resamples it."""
    t = small_truth[1]["epic"]
    jpg = np.asarray(Image.open(small_dataset / "epic" / "rgb_frames" / t["participant_id"] / t["video_id"]
                                / f"frame_{t['target_frame']:010d}.jpg")).astype(float)
    with av.open(str(small_dataset / "epic" / "videos" / f"{t['video_id']}.MP4")) as c:
        dec = [f.to_ndarray(format="rgb24").astype(float) for _, f in zip(range(t["target_video_frame"] + 2), c.decode(video=0), strict=False)]
    errs = [np.abs(jpg - d).mean() for d in dec]
    j = t["target_video_frame"]
    assert errs[j] < 6 and errs[j] <= min(errs) + 0.5, (errs[j], min(errs), int(np.argmin(errs)))  # holds repeat poses


def test_visor_polygons_give_truth_boxes(small_dataset, small_truth):
    by_frame = {}
    for split in ("train", "val"):
        for f in (small_dataset / "epic" / "visor" / "GroundTruth-SparseAnnotations" / "annotations" / split).glob("*.json"):
            for e in json.loads(f.read_text())["video_annotations"]:
                by_frame[e["image"]["name"]] = e
    checked = 0
    for t in small_truth:
        e = t["epic"]
        ann = by_frame[f"{e['video_id']}_frame_{e['target_frame']:010d}.jpg"]
        ids = {a["id"] for a in ann["annotations"]}
        names = {a["name"] for a in ann["annotations"]}
        assert "left hand" in names and ("right hand" in names or "rigth hand" in names)
        for a in ann["annotations"]:
            pts = np.array([p for poly in a["segments"] for p in poly])
            box = np.clip([pts[:, 0].min() * 112 / VISOR_W, pts[:, 1].min() * 64 / VISOR_H,
                           pts[:, 0].max() * 112 / VISOR_W, pts[:, 1].max() * 64 / VISOR_H], 0, [112, 64, 112, 64])
            if a["class_id"] in (300, 301):
                key = "right hand" if a["name"] == "rigth hand" else a["name"]
                if key.startswith(t["hand"]):
                    assert a["in_contact_object"] in ids  # the acting hand touches something at the target
                truth_boxes = [e["boxes_px"]["target"][key]]
            else:
                truth_boxes = [b for k, b in e["boxes_px"]["target"].items() if ":" in k]
            assert any(np.allclose(box, b, atol=1.0) for b in truth_boxes), (a["name"], box)
            checked += 1
    assert checked >= 3 * len(small_truth)
