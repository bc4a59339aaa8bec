"""The strict EPIC-100 schema check: the real files pass it, EgoSynth's files pass it, mangled rows fail it."""

import csv
import shutil
from pathlib import Path

import pytest

from egolego.data.epic_schema import check_csv, format_timestamp, frame_of, parse_timestamp

from ..conftest import REAL_EPIC

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "epic_real"


def test_real_excerpts_pass():
    for name in ("EPIC_100_validation_excerpt.csv", "EPIC_100_uda_target_val_excerpt.csv"):
        rep = check_csv(FIXTURES / name)
        assert rep.rows > 0 and rep.ok, rep.errors[:5]


@pytest.mark.skipif(not (REAL_EPIC / "EPIC_100_validation.csv").exists(), reason="shared/real-samples not present")
def test_full_real_validation_csv_passes():
    rep = check_csv(REAL_EPIC / "EPIC_100_validation.csv")
    assert rep.rows == 9668 and rep.ok, rep.errors[:5]


def test_egosynth_csvs_pass(small_dataset):
    total = 0
    for split in ("train", "validation"):
        rep = check_csv(small_dataset / "epic" / f"EPIC_100_{split}.csv")
        assert rep.ok, rep.errors[:5]
        total += rep.rows
    assert total == 40


def test_both_frame_bases_and_empty_narration_occur(tmp_path):
    """The quirks real EPIC files have occur in a 400-action plan, and the strict check passes the rows that carry
    them. From the plan and the writer's rows, not rendered videos: the files of a rendered dataset are checked above."""
    from egolego.synth.epic_writer import COLUMNS, _csv_text, action_row
    from egolego.synth.timeline import plan_dataset

    rows = [action_row(v, i, seg) for v in plan_dataset(400, 5) for i, seg in enumerate(v.segments)]
    assert len(rows) == 400
    assert {len(r["video_id"].split("_")[1]) for r in rows} == {2, 3}  # 60- and 50-base videos
    assert any(r["narration_timestamp"] == "" for r in rows)
    assert any(r["all_nouns"].startswith("['") and "," in r["all_nouns"] for r in rows)
    (tmp_path / "EPIC_100_train.csv").write_text(_csv_text(COLUMNS, sorted(rows, key=lambda r: r["narration_id"])))  # as write_epic
    rep = check_csv(tmp_path / "EPIC_100_train.csv")
    assert rep.ok and rep.rows == 400, rep.errors[:5]


@pytest.mark.parametrize("column,value", [
    ("start_frame", "999999"), ("start_timestamp", "0:00:01.5"), ("narration_timestamp", "00:00:01.50"),
    ("all_nouns", '["plate"'), ("video_id", "P01-11"),
])
def test_mangled_rows_fail(tmp_path, column, value):
    src = FIXTURES / "EPIC_100_validation_excerpt.csv"
    rows = list(csv.DictReader(open(src)))
    rows[3][column] = value
    dst = tmp_path / "bad.csv"
    with open(dst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    rep = check_csv(dst)
    assert not rep.ok and "bad.csv:5" in rep.errors[0]


def test_missing_column_fails(tmp_path):
    src = FIXTURES / "EPIC_100_validation_excerpt.csv"
    text = src.read_text().replace(",all_noun_classes", "", 1)
    (tmp_path / "x.csv").write_text(text)
    assert not check_csv(tmp_path / "x.csv").ok
    shutil.rmtree(tmp_path)


def test_timestamp_helpers():
    assert format_timestamp(49.15) == "00:00:49.15"
    assert format_timestamp(3725.5, 3) == "01:02:05.500"
    assert parse_timestamp("01:02:05.50") == pytest.approx(3725.5)
    assert frame_of(49.15, "P01_11") == 2949  # the real row P01_11_10
    assert frame_of(5.35, "P03_101") == 267  # the real extension row P03_101_2
    assert frame_of(0.0, "P01_11") == 1
