"""Data files from the internet: ids never leave --out, manifests never point outside their folder, nothing is
overwritten or mixed silently, and malformed annotation shapes are counted skips (issue 12)."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from egolego.cli import main
from egolego.data.build import BuildArgs, build
from egolego.data.manifest import FILE, read_manifest, resolve
from egolego.data.sources import ParseReport, parse_ego4d, parse_epic, read_video_info
from egolego.names import is_safe_name, safe_name
from egolego.synth.pairs import pairs_from_egosynth


@pytest.fixture()
def epic(small_dataset, tmp_path):
    """A copy of the small EPIC folder with JPEG frames only (fast builds)."""
    root = tmp_path / "data" / "epic"
    shutil.copytree(small_dataset / "epic", root, ignore=shutil.ignore_patterns("videos"))
    return root


def _files(path):
    return {p for p in path.rglob("*")}


def test_safe_name_is_one_component_and_injective():
    for bad in ["..", ".", "../../etc/passwd", "/abs", "a/b", "a\\b", "x\x00y", "", "é", "a" * 500, "-rf"]:
        n = safe_name(bad)
        assert "/" not in n and n not in (".", "..") and not n.startswith(".") and len(n) <= 130
    assert safe_name("a/b") != safe_name("a_b") and safe_name("P01_11_12") == "P01_11_12"
    assert not is_safe_name("../x") and is_safe_name("3c0dffd0-e38e-4643-bc48-d513943dc20b")


def test_traversal_video_ids_write_nothing_outside_out(epic, tmp_path):
    csv = epic / "EPIC_100_train.csv"
    lines = csv.read_text().splitlines()
    evil = "../../../escaped_P01"
    lines[1] = lines[1].replace("P01_02", evil, 2).replace(",P01,", ",../../x,", 1)
    lines[2] = lines[2].replace(",P01,", ",../../x,", 1)
    csv.write_text("\n".join(lines) + "\n")
    before = _files(tmp_path)
    s = build(BuildArgs(source="epic", root=epic, out=tmp_path / "data" / "out", frames_from="jpg", size=64), progress=False)
    assert s["dropped"].get("parse: bad video_id") == 1 and s["dropped"].get("parse: bad participant_id") == 1
    new = _files(tmp_path) - before
    out = tmp_path / "data" / "out"
    assert all(p == out or out in p.parents for p in new), [p for p in new if "out" not in str(p)][:3]


def test_ego4d_traversal_uid_and_wrong_shapes_are_counted(tmp_path):
    d = tmp_path / "ego"
    (d / "v2" / "annotations").mkdir(parents=True)
    f = d / "v2" / "annotations" / "fho_main.json"
    good_iv = {"clip_uid": "c", "narrated_actions": [{"junk": 1}]}
    videos = [{"video_uid": "../../../x", "annotated_intervals": [good_iv]}, {"video_uid": 7}, {"video_uid": None},
              "a string", {"video_uid": "v1", "annotated_intervals": {"a": 1}}, {"video_uid": "v2",
              "annotated_intervals": ["x", {"narrated_actions": "s"}, good_iv]},
              {"video_uid": "v3", "video_metadata": "x", "annotated_intervals": [good_iv]}]
    for doc in ([1, 2], {"videos": "abc"}, {"video_data": [1]}, "text", None):
        f.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="not an Ego4D FHO file"):
            parse_ego4d(d, ParseReport())
    f.write_text(json.dumps({"videos": videos}))
    (d / "v2" / "ego4d.json").write_text("[1, 2]")
    rep = ParseReport()
    assert parse_ego4d(d, rep) == []
    assert rep.rows == 2 and sum(rep.dropped.values()) == 2  # the two junk actions of v2 and v3
    assert sum(rep.warnings.values()) >= 6


def test_broken_visor_file_is_counted_and_bom_is_read(epic, tmp_path):
    visor = epic / "visor" / "GroundTruth-SparseAnnotations" / "annotations" / "train"
    files = sorted(visor.glob("*.json"))
    files[0].write_text("{broken")
    files[1].write_text(json.dumps({"video_annotations": [{"image": {"name": 5}, "annotations": [{"segments": [[[1]]]}]}]}))
    info = epic / "EPIC_100_video_info.csv"
    info.write_bytes(b"\xef\xbb\xbf" + info.read_bytes())
    assert read_video_info(info)  # a BOM does not hide the video_id column
    rep = ParseReport()
    recs = parse_epic(epic, rep)
    assert recs and "video not in EPIC_100_video_info.csv" not in rep.dropped
    assert sum(n for k, n in rep.warnings.items() if "VISOR" in k) == 2


def test_manifest_paths_must_stay_inside(small_dataset, tmp_path):
    pairs = tmp_path / "pairs"
    pairs_from_egosynth(small_dataset, pairs)
    assert resolve(pairs, "images/x.jpg") == pairs / "images" / "x.jpg"
    for bad in ["/etc/hostname", "../../../../etc/passwd", "images/../../x", "~/x"]:
        with pytest.raises(ValueError, match="manifest folder"):
            resolve(pairs, bad)
        t = pq.read_table(pairs / FILE).to_pylist()
        t[0]["input_path"] = bad
        pq.write_table(pq.read_table(pairs / FILE).from_pylist(t, schema=pq.read_table(pairs / FILE).schema), pairs / "evil.parquet")
        with pytest.raises(ValueError, match="manifest folder"):
            read_manifest(pairs / "evil.parquet")
    (pairs / "evil.parquet").replace(pairs / FILE)
    assert main(["data", "export", "--pairs", str(pairs), "--format", "ip2p", "--out", str(tmp_path / "x")]) == 2
    assert not list((tmp_path / "x").glob("*.parquet")) if (tmp_path / "x").exists() else True


def test_duplicate_pair_ids_are_refused(small_dataset, tmp_path, capsys):
    pairs = tmp_path / "pairs"
    pairs_from_egosynth(small_dataset, pairs)
    t = pq.read_table(pairs / FILE)
    rows = t.to_pylist()
    rows[1]["pair_id"] = rows[0]["pair_id"]
    pq.write_table(t.from_pylist(rows, schema=t.schema), pairs / FILE)
    with pytest.raises(ValueError, match="more than once"):
        read_manifest(pairs)
    assert main(["eval", "--model", "target", "--pairs", str(pairs), "--out", str(tmp_path / "ev"),
                 "--metrics", "psnr"]) == 2
    assert "more than once" in capsys.readouterr().err


def test_build_and_merge_refuse_to_overwrite_and_resume_checks_arguments(epic, tmp_path, capsys):
    out = tmp_path / "data" / "out"
    base = ["data", "build", "--source", "epic", "--root", str(epic), "--out", str(out), "--frames-from", "jpg",
            "--size", "64"]
    assert main(base) == 0
    stamp = (out / FILE).stat().st_mtime_ns
    assert main(base) == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / FILE).stat().st_mtime_ns == stamp
    assert main(["data", "merge", str(out), "--out", str(out)]) == 2
    assert main(base + ["--overwrite"]) == 0
    # a killed build (its per-video records left behind) resumed with other arguments is refused
    (out / FILE).unlink()
    args = BuildArgs(source="epic", root=epic, out=out, frames_from="jpg", size=64)
    (out / ".videos").mkdir()
    (out / ".videos" / ".args.json").write_text(json.dumps(args.fingerprint()))
    assert main(base[:-1] + ["128"]) == 2 and "other arguments" in capsys.readouterr().err
    assert main(base + ["--sim-range", "0.1", "0.9"]) == 2
    assert main(base) == 0  # the same arguments resume


def test_zero_pairs_kept_is_an_error(epic, tmp_path, capsys):
    shutil.rmtree(epic / "rgb_frames")
    out = tmp_path / "data" / "out"
    assert main(["data", "build", "--source", "epic", "--root", str(epic), "--out", str(out), "--frames-from", "jpg",
                 "--size", "64"]) == 2
    assert "no pair kept" in capsys.readouterr().err and not (out / FILE).exists()


@pytest.mark.parametrize("rng", [["0.9", "0.1"], ["nan", "nan"], ["0.5", "inf"], ["-2", "0.5"]])
def test_sim_range_must_be_ordered_and_finite(epic, tmp_path, rng, capsys):
    assert main(["data", "build", "--source", "epic", "--root", str(epic), "--out", str(tmp_path / "o"),
                 "--sim-range", *rng]) == 2
    assert "--sim-range" in capsys.readouterr().err


def test_interrupted_build_resumes_and_loses_nothing(epic, tmp_path, monkeypatch):
    import egolego.data.build as b

    clean = build(BuildArgs(source="epic", root=epic, out=tmp_path / "clean", frames_from="jpg", size=64), progress=False)
    real, calls = b._video_job, []

    def dies_on_third(job):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between two videos
        calls.append(job[1])
        return real(job)

    monkeypatch.setattr(b, "_video_job", dies_on_third)
    out = tmp_path / "data" / "out"
    with pytest.raises(KeyboardInterrupt):
        build(BuildArgs(source="epic", root=epic, out=out, frames_from="jpg", size=64), progress=False)
    monkeypatch.setattr(b, "_video_job", lambda job: (calls.append(job[1]), real(job))[1])
    s = build(BuildArgs(source="epic", root=epic, out=out, frames_from="jpg", size=64), progress=False)
    assert len(calls) == len(set(calls))  # no video done twice
    assert s["kept"] == clean["kept"] and read_manifest(out) == [
        {**r} for r in read_manifest(tmp_path / "clean")]


def test_a_script_that_reads_a_manifest_exits_cleanly(small_dataset, tmp_path):
    """pyarrow 26 reading a Python file object left the interpreter to abort at exit (rc 134, "terminate called
    without an active exception") about one exit in two: a script or CLI call that read a manifest could fail after
    doing its work. Eight exits in a row all clean."""
    import subprocess
    import sys

    pairs = tmp_path / "pairs"
    pairs_from_egosynth(small_dataset, pairs)
    code = f"from egolego.data.manifest import read_manifest; print(len(read_manifest({str(pairs)!r})))"
    for _ in range(8):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and int(r.stdout) > 0, r.stderr[-500:]
