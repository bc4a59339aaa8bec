"""EgoSynth's Ego4D FHO files: the v2 fho_main.json schema, clip vs video numbering, boxes, and MP4 frames."""

import json

import av
import numpy as np

from egolego.synth.job import VideoRenderer
from egolego.synth.timeline import plan_dataset

FRAME_KEYS = {"pre_45", "pre_30", "pre_15", "pre_frame", "contact_frame", "pnr_frame", "post_frame"}


def _fho(root):
    return json.loads((root / "ego4d" / "v2" / "annotations" / "fho_main.json").read_text())


def test_schema(small_dataset):
    doc = _fho(small_dataset)
    assert {"version", "date", "description", "metadata", "videos"} <= set(doc)
    n_actions = 0
    for v in doc["videos"]:
        md = v["video_metadata"]
        assert md["fps"] == 30.0 and (md["width"], md["height"]) == (112, 64)
        assert len(v["annotated_intervals"]) == 2
        for iv in v["annotated_intervals"]:
            for key in ("clip_id", "clip_uid", "start_sec", "end_sec", "start_frame", "end_frame",
                        "clip_parent_start_sec", "clip_parent_end_sec", "clip_parent_start_frame",
                        "clip_parent_end_frame", "redacted", "narrated_actions"):
                assert key in iv
            for a in iv["narrated_actions"]:
                n_actions += 1
                assert a["narration_text"].startswith("#C C ")
                assert a["end_frame"] - a["start_frame"] <= 240
                if a["critical_frames"] is None:
                    assert a["frames"] is None
                    continue
                assert set(a["critical_frames"]) <= FRAME_KEYS
                for k, f in a["critical_frames"].items():  # clip numbering = video numbering - clip start
                    assert a["clip_critical_frames"][k] == f - iv["clip_parent_start_frame"]
                assert a["critical_frames"]["pre_15"] == a["critical_frames"]["pre_frame"] - 15
                for fr in a["frames"]:
                    assert fr["frame_number"] == a["critical_frames"][fr["frame_type"]]
                    types = {b["object_type"] for b in fr["boxes"]}
                    assert "object_of_change" in types and types <= {"left_hand", "right_hand", "object_of_change", "tool"}
                    for b in fr["boxes"]:
                        x, y, w, h = (b["bbox"][k] for k in ("x", "y", "width", "height"))
                        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 112.01 and y + h <= 64.01
    assert n_actions == 40


def test_validity_filter_matches_truth(tmp_path):
    from egolego.synth.dataset import SynthArgs, generate, load_truth
    # the world without knowledge: this seed's stream draws every quirk the test looks for
    generate(SynthArgs(out=tmp_path, actions=300, size=32, seed=2, formats=("ego4d",), workers=2, knowledge="none"),
             progress=False)
    truth = {t["action_id"]: t for t in load_truth(tmp_path)}
    doc = _fho(tmp_path)
    kept = 0
    reasons = set()
    for v in doc["videos"]:
        for iv in v["annotated_intervals"]:
            for a in iv["narrated_actions"]:
                ok = (not a["is_rejected"] and not a["is_invalid_annotation"] and a["is_valid_action"]
                      and a["critical_frames"] and a["frames"])
                kept += bool(ok)
                reasons |= {"rejected"} if a["is_rejected"] else set()
                reasons |= {"no_frames"} if a["frames"] is None else set()
                if a["critical_frames"] and "contact_frame" not in a["critical_frames"]:
                    reasons.add("no_contact")
    assert kept == sum(t["ego4d"]["valid"] for t in truth.values())
    assert 0 < len(truth) - kept < 40 and {"rejected", "no_frames", "no_contact"} <= reasons


def test_mp4_frame_index_is_exact(small_dataset, small_truth):
    """Decoded frame j of full_scale/<uid>.mp4 is the frame the renderer made for j (not j +- 1)."""
    t = next(t for t in small_truth if t["ego4d"]["valid"])
    knowledge = json.loads((small_dataset / "egosynth.json").read_text()).get("knowledge", "none")
    video = next(v for v in plan_dataset(40, 3, knowledge=knowledge) if v.ego4d_uid == t["ego4d"]["video_uid"])
    vr = VideoRenderer(video, 64, 3, 30, "ego4d")
    wanted = {t["ego4d"]["input_frame"], t["ego4d"]["target_frame"]}
    got = {}
    with av.open(str(small_dataset / "ego4d" / "v2" / "full_scale" / f"{video.ego4d_uid}.mp4")) as c:
        for j, f in enumerate(c.decode(video=0)):
            if j in wanted:
                got[j] = f.to_ndarray(format="rgb24").astype(float)
    for j in wanted:
        err_here = np.abs(got[j] - vr.frame(j)).mean()
        assert err_here < 5
    a, b = sorted(wanted)
    assert np.abs(got[a] - got[b]).mean() > 3 * np.abs(got[a] - vr.frame(a)).mean()  # input and target differ
