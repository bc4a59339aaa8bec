"""``egolego import lego-dataset``: the release's JSON + frame layout into a pairs manifest, and the inverse of
``data export --format lego`` (round trip)."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from egolego.cli import main
from egolego.data.export import export_lego
from egolego.data.manifest import read_manifest, resolve, write_manifest

CARRIED = ("pair_id", "split", "video_id", "label", "description", "input_path", "target_path")


def _jpg(path: Path, seed: int, size=(64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def our_manifest(root: Path) -> Path:
    """A small manifest of our own (images/, both splits) to export."""
    rows = []
    for i, (split, video) in enumerate([("train", "v1"), ("train", "v1"), ("train", "v2"), ("test", "v3")]):
        pid = f"P{i:02d}"
        for kind in ("input", "target"):
            _jpg(root / "images" / f"{pid}_{kind}.jpg", 10 * i + len(kind))
        rows.append({"pair_id": pid, "source": "egosynth", "split": split, "video_id": video,
                     "label": f"take cup {i}", "description": "" if i == 1 else f"The person takes cup {i}.",
                     "input_path": f"images/{pid}_input.jpg", "target_path": f"images/{pid}_target.jpg",
                     "target_full_path": f"images/{pid}_target.jpg", "boxes": "{}", "delta": 0.5})
    write_manifest(rows, root)
    return root


def test_export_then_import_gives_the_same_rows(tmp_path):
    pairs = our_manifest(tmp_path / "pairs")
    files = export_lego(pairs, tmp_path / "lego")
    out = tmp_path / "back"
    assert main(["import", "lego-dataset", "--json", *map(str, files), "--frames", str(pairs), "--out", str(out),
                 "--source", "egosynth"]) == 0
    before = {r["pair_id"]: r for r in read_manifest(pairs)}
    after = {r["pair_id"]: r for r in read_manifest(out)}
    assert set(after) == set(before)
    for pid, r in after.items():
        assert {c: r[c] for c in (*CARRIED, "source")} == {c: before[pid][c] for c in (*CARRIED, "source")}
        for c in ("input_path", "target_path"):  # the frames came along (linked into the new manifest)
            assert resolve(out, r[c]).read_bytes() == resolve(pairs, before[pid][c]).read_bytes()


def release_dataset(root: Path) -> Path:
    """bolinlai/LEGO-Dataset's layout: ego4d_{train,val}.json + EgoGen/ego4d.fho/{train,val,val_gt_for_metric}."""
    frames = root / "EgoGen" / "ego4d.fho"
    docs = {"train": {"clip1": {"act1": ("frame_10.jpg", "frame_25.jpg")}},
            "val": {"clip2": {"act2": ("frame_3.jpg", "frame_9.jpg"), "act3": ("frame_30.jpg", "frame_41.jpg")}}}
    for split, doc in docs.items():
        js = {}
        for clip, actions in doc.items():
            for action, (f0, f1) in actions.items():
                rel0, rel1 = f"{clip}/{action}/{f0}", f"{clip}/{action}/{f1}"
                _jpg(frames / split / rel0, 1)
                _jpg(frames / split / rel1, 2)
                if split == "val":
                    _jpg(frames / "val_gt_for_metric" / rel1, 3, size=(114, 64))
                js.setdefault(clip, {})[action] = {"image_0": rel0, "image_1": rel1, "action": f"#C C opens {action}",
                                                   "llava_forecast_finetune": f"The person opens {action}.",
                                                   "original action": "#C C open"}
        (root / f"ego4d_{split}.json").write_text(json.dumps(js))
    return frames


def test_the_release_layout_becomes_a_manifest(tmp_path):
    frames = release_dataset(tmp_path)
    out = tmp_path / "pairs"
    assert main(["import", "lego-dataset", "--json", str(tmp_path / "ego4d_train.json"),
                 str(tmp_path / "ego4d_val.json"), "--frames", str(frames), "--out", str(out)]) == 0
    rows = {r["pair_id"]: r for r in read_manifest(out)}
    assert {k: (r["split"], r["video_id"], r["source"]) for k, r in rows.items()} == {
        "act1": ("train", "clip1", "ego4d"), "act2": ("test", "clip2", "ego4d"), "act3": ("test", "clip2", "ego4d")}
    r = rows["act2"]
    assert (r["input_path"], r["target_path"]) == ("val/clip2/act2/frame_3.jpg", "val/clip2/act2/frame_9.jpg")
    assert r["target_full_path"] == "val_gt_for_metric/clip2/act2/frame_9.jpg"  # the original aspect ratio
    assert Image.open(resolve(out, r["target_full_path"])).size == (114, 64)
    assert rows["act1"]["target_full_path"] == rows["act1"]["target_path"]  # train has no metric copy
    assert r["label"] == "#C C opens act2" and r["description"] == "The person opens act2."


def test_a_path_outside_the_frames_is_refused(tmp_path, capsys):
    frames = release_dataset(tmp_path)
    doc = json.loads((tmp_path / "ego4d_val.json").read_text())
    doc["clip2"]["act2"]["image_1"] = "../../../../etc/passwd"
    (tmp_path / "ego4d_val.json").write_text(json.dumps(doc))
    assert main(["import", "lego-dataset", "--json", str(tmp_path / "ego4d_val.json"), "--frames", str(frames),
                 "--out", str(tmp_path / "pairs")]) == 2
    err = capsys.readouterr().err
    assert "--json: ego4d_val.json: clip2/act2: image path '../../../../etc/passwd' leads outside --frames" in err
    assert not (tmp_path / "pairs" / "pairs.parquet").exists()


def test_a_missing_frame_and_an_unknown_split_are_named(tmp_path, capsys):
    frames = release_dataset(tmp_path)
    (frames / "val" / "clip2" / "act3" / "frame_41.jpg").unlink()
    assert main(["import", "lego-dataset", "--json", str(tmp_path / "ego4d_val.json"), "--frames", str(frames),
                 "--out", str(tmp_path / "pairs")]) == 2
    assert "--frames: ego4d_val.json: clip2/act3: " in capsys.readouterr().err
    (tmp_path / "ego4d_other.json").write_text("{}")
    assert main(["import", "lego-dataset", "--json", str(tmp_path / "ego4d_other.json"), "--frames", str(frames),
                 "--out", str(tmp_path / "pairs")]) == 2
    assert "cannot tell its split" in capsys.readouterr().err
