"""`egolego data build` on EgoSynth (both formats, MP4 and JPEG frames) against truth.jsonl."""

import csv
import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egolego.data.build import BuildArgs, build
from egolego.data.manifest import read_manifest
from egolego.data.sources import ParseReport, parse_epic_csv, read_video_info

from ..conftest import REAL_EPIC


@pytest.fixture(scope="module", params=[("epic", "video"), ("epic", "jpg"), ("ego4d", "video")], ids=str)
def built(request, small_dataset, small_truth, tmp_path_factory):
    src, ff = request.param
    out = tmp_path_factory.mktemp(f"build_{src}_{ff}")
    summary = build(BuildArgs(source=src, root=small_dataset / src, out=out, frames_from=ff, size=64), progress=False)
    return src, ff, summary, read_manifest(out), {t["action_id"]: t for t in small_truth}, out


def _truth_for(src, row, truth):
    if src == "epic":
        return next(t for t in truth.values() if t["epic"]["narration_id"] == row["pair_id"])
    return next(t for t in truth.values() if row["video_id"] == t["ego4d"]["video_uid"]
                and t["ego4d"]["critical_frames"]["pnr_frame"] in range(row["target_frame"] - 3, row["target_frame"] + 4)
                and t["ego4d"]["input_frame"] in range(row["input_frame"] - 3, row["input_frame"] + 4))


def test_frames_near_truth_and_not_blurred(built):
    src, ff, summary, rows, truth, _ = built
    assert len(rows) >= 35 and summary["kept"] == len(rows)
    for row in rows:
        t = _truth_for(src, row, truth)
        f = t[src]
        assert abs(row["input_frame"] - f["input_frame"]) <= 3 and abs(row["target_frame"] - f["target_frame"]) <= 3
        if src == "epic" and ff == "jpg":
            blurred = set(f["blurred_rgb_frames"])
            chosen = {row["input_frame"], row["target_frame"]}
        elif src == "epic":
            fps, base = f["video_fps"], f["frame_base"]
            blurred = set(f["blurred_video_frames"])
            chosen = {int(round((k - 1) / base * fps)) for k in (row["input_frame"], row["target_frame"])}
        else:
            blurred, chosen = set(f["blurred_video_frames"]), {row["input_frame"], row["target_frame"]}
        assert not chosen & blurred, (row["pair_id"], chosen & blurred)
        assert row["label"] in (t["label"], t["narration"])


def test_boxes_match_truth_within_a_pixel(built):
    src, _, _, rows, truth, _ = built
    w, h = 112, 64
    n = 0
    for row in rows:
        t = _truth_for(src, row, truth)
        boxes = json.loads(row["boxes"])["target"]
        truth_px = t[src]["boxes_px"]["target"]
        hand = f"{t['hand']} hand"
        mine = boxes[hand]
        ref = truth_px[hand]
        assert all(abs(a * s - b) <= 1.0 for a, b, s in zip(mine, ref, (w, h, w, h))), (mine, ref)
        n += 1
    assert n == len(rows)


def test_split_by_video_and_outputs(built):
    _, _, summary, rows, _, out = built
    train = {r["video_id"] for r in rows if r["split"] == "train"}
    test = {r["video_id"] for r in rows if r["split"] == "test"}
    assert train and test and not train & test
    assert (out / "summary.json").is_file() and (out / "similarity_histogram.png").is_file()
    from PIL import Image
    assert Image.open(out / rows[0]["input_path"]).size == (64, 64)
    assert Image.open(out / rows[0]["target_full_path"]).size == (112, 64)  # original aspect kept for metrics


def test_missing_and_corrupt_videos_are_counted(small_dataset, tmp_path):
    root = tmp_path / "epic"
    shutil.copytree(small_dataset / "epic", root, ignore=shutil.ignore_patterns("rgb_frames"))
    vids = sorted((root / "videos").glob("*.MP4"))
    vids[0].write_bytes(b"garbage")
    vids[1].unlink()
    s = build(BuildArgs(source="epic", root=root, out=tmp_path / "out", size=64), progress=False)
    assert s["kept"] > 0
    reasons = " ".join(s["dropped"])
    assert "unreadable video" in reasons and "missing video" in reasons  # one of each was made
    assert s["kept"] + sum(v for k, v in s["dropped"].items()) == s["rows_parsed"]


def test_wrong_source_is_a_clear_error(small_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="no v2/annotations/fho_main.json .*the source is epic") as e:
        build(BuildArgs(source="ego4d", root=small_dataset / "epic", out=tmp_path), progress=False)
    assert e.value.flag == "--root"


COLS = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp", "stop_timestamp",
        "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class", "all_nouns",
        "all_noun_classes"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({c: st.one_of(st.text(max_size=12), st.sampled_from(
    ["P01_01", "00:00:01.50", "00:00:03.20", "['cup']", "take cup", "3", ""])) for c in COLS}), max_size=15))
def test_mangled_epic_rows_never_crash(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("mangled")
    (d / "EPIC_100_video_info.csv").write_text("video_id,duration,fps,resolution\nP01_01,100.0,59.94,112x64\n")
    with open(d / "EPIC_100_train.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLS)
        w.writeheader()
        w.writerows(rows)
    rep = ParseReport()
    recs = parse_epic_csv(d / "EPIC_100_train.csv", "train", read_video_info(d / "EPIC_100_video_info.csv"), rep)
    assert rep.rows == len(rows) and rep.kept == len(recs) and rep.kept + sum(rep.dropped.values()) == rep.rows


def test_exporters(small_dataset, tmp_path):
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    from egolego.data.export import export_ip2p, export_lego
    from egolego.synth.pairs import pairs_from_egosynth
    pairs = tmp_path / "pairs"
    pairs_from_egosynth(small_dataset, pairs)
    rows = read_manifest(pairs)
    files = export_lego(pairs, tmp_path / "lego")
    doc = json.loads((tmp_path / "lego" / "lego_train.json").read_text())
    r = next(r for r in rows if r["split"] == "train")
    assert doc[r["video_id"]][r["pair_id"]] == {"image_0": r["input_path"], "image_1": r["target_path"],
                                               "action": r["label"], "llava_forecast_finetune": r["description"]}
    assert {f.name for f in files} == {"lego_train.json", "lego_val.json"}
    export_ip2p(pairs, tmp_path / "ip2p")
    t = pq.read_table(tmp_path / "ip2p" / "train.parquet")
    assert t.column_names == ["input_image", "edit_prompt", "edited_image"]
    assert b"Image" in t.schema.metadata[b"huggingface"]
    first = t.slice(0, 1).to_pylist()[0]
    assert Image.open(io.BytesIO(first["input_image"]["bytes"])).size == (64, 64)
    assert t.num_rows == sum(r["split"] == "train" for r in rows)


@pytest.mark.skipif(not (REAL_EPIC / "EPIC_100_validation.csv").exists(), reason="shared/real-samples not present")
def test_epic_parser_on_the_real_validation_csv():
    """Frames checked against the CSV's own frame columns (not against the helper the parser calls):
    input 0.25 s before start_frame, target 60 % of the way from start_frame to stop_frame, both in the video."""
    real = REAL_EPIC
    rep = ParseReport()
    info = read_video_info(real / "EPIC_100_video_info.csv")
    recs = parse_epic_csv(real / "EPIC_100_validation.csv", "test", info, rep)
    assert rep.rows == 9668 and rep.kept == rep.rows == len(recs)  # every real row is usable
    rows = {r["narration_id"]: r for r in csv.DictReader(open(real / "EPIC_100_validation.csv"))}
    for rec in recs:
        row = rows[rec.pair_id]
        base = 60 if len(rec.video_id.split("_")[1]) == 2 else 50
        s, e = int(row["start_frame"]), int(row["stop_frame"])
        n = int(float(info[rec.video_id]["duration"]) * base)
        assert (rec.label, rec.fps) == (row["narration"].strip(), base)
        assert abs(rec.input_frame - max(1, s - 0.25 * base)) <= 1, (rec.pair_id, rec.input_frame, s)
        assert abs(rec.target_frame - min(s + 0.6 * (e - s), n)) <= 1, (rec.pair_id, rec.target_frame, s, e)
        assert 1 <= rec.input_frame <= s <= rec.target_frame + 1 <= e + 1 and rec.target_frame <= n


_json = st.recursive(st.none() | st.booleans() | st.integers(-5, 5000) | st.text(max_size=6),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(
                         ["critical_frames", "frames", "pre_15", "pnr_frame", "narration_text", "is_rejected",
                          "boxes", "bbox", "x", "frame_type", "object_type", "uid"]), c, max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_json, max_size=6))
def test_mangled_ego4d_actions_never_crash(tmp_path_factory, actions):
    d = tmp_path_factory.mktemp("ego")
    (d / "v2" / "annotations").mkdir(parents=True)
    actions = [a if isinstance(a, dict) else {"junk": a} for a in actions]
    doc = {"videos": [{"video_uid": "v", "video_metadata": {"width": 112, "height": 64, "num_frames": 900},
                       "annotated_intervals": [{"clip_uid": "c", "narrated_actions": actions}]}]}
    (d / "v2" / "annotations" / "fho_main.json").write_text(json.dumps(doc))
    from egolego.data.sources import parse_ego4d
    rep = ParseReport()
    try:
        recs = parse_ego4d(d, rep)
    except (TypeError, AttributeError, ValueError) as e:  # pragma: no cover - the test fails with the reason
        pytest.fail(f"parser crashed: {e!r}")
    assert rep.rows == len(actions) and rep.kept == len(recs) and rep.kept + sum(rep.dropped.values()) == rep.rows


def test_sharded_build_merges_to_the_whole(small_dataset, tmp_path):
    from egolego.cli import main
    from egolego.data.manifest import resolve

    whole = tmp_path / "whole"
    build(BuildArgs(source="epic", root=small_dataset / "epic", out=whole, frames_from="jpg", size=64), progress=False)
    for i in range(2):
        build(BuildArgs(source="epic", root=small_dataset / "epic", out=tmp_path / "sharded", frames_from="jpg", size=64, num_shards=2,
                        shard_index=i), progress=False)
    shards = sorted((tmp_path / "sharded").glob("shard-*of2"))
    assert len(shards) == 2 and all(read_manifest(s) for s in shards)
    merged = tmp_path / "merged"
    assert main(["data", "merge", *map(str, shards), "--out", str(merged)]) == 0
    a, b = read_manifest(whole), read_manifest(merged)
    assert [r["pair_id"] for r in a] == [r["pair_id"] for r in b]
    for ra, rb in zip(a, b):
        assert resolve(whole, ra["target_path"]).read_bytes() == resolve(merged, rb["target_path"]).read_bytes()
    assert main(["data", "merge", str(shards[0]), str(shards[0]), "--out", str(tmp_path / "m2")]) == 2  # shared ids
