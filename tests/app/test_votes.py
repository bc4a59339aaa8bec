"""Votes in SQLite: WAL, one row per vote, once per rater and pair, safe with concurrent writers; win rates."""

import multiprocessing as mp
import sqlite3

import pytest

from egolego.app import votes as V


def _writer(db, rater, n):
    for i in range(n):
        V.record_vote(db, "methods", rater, f"pair{i}", ["a", "b", "c"], "abc"[i % 3])


def test_concurrent_raters_all_votes_land(tmp_path):
    db = V.init_db(tmp_path / "votes.sqlite")
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(db), f"rater{k}", 30)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    rows = V.read_votes(db)
    assert len(rows) == 120 and len({r["id"] for r in rows}) == 120
    assert V.rater_counts(rows) == {f"rater{k}": {"methods": 30} for k in range(4)}
    w = V.win_rates(rows)
    assert {m: w[m]["wins"] for m in w} == {"a": 40, "b": 40, "c": 40} and all(w[m]["n"] == 120 for m in w)
    assert w["a"]["lo"] < 1 / 3 < w["a"]["hi"]


def test_one_vote_per_rater_and_pair_and_checks(tmp_path):
    db = V.init_db(tmp_path / "v.sqlite")
    assert V.record_vote(db, "methods", " ann ", "p1", ["x", "y"], "y") is not None
    assert V.record_vote(db, "methods", "ann", "p1", ["y", "x"], "x") is None  # a double click: the first counts
    assert V.record_vote(db, "descriptions", "ann", "p1", "a sentence", V.ALIGNED) is not None
    with pytest.raises(ValueError, match="not among"):
        V.record_vote(db, "methods", "ann", "p2", ["x", "y"], "z")
    with pytest.raises(ValueError, match="rater id"):
        V.record_vote(db, "methods", "   ", "p2", ["x", "y"], "x")
    rows = V.read_votes(db)
    assert [(r["rater"], r["choice"], r["shown"]) for r in rows] == [("ann", "y", ["x", "y"]),
                                                                     ("ann", V.ALIGNED, "a sentence")]
    assert V.aligned_rate(rows)["rate"] == 1.0 and V.win_rates(rows)["y"]["rate"] == 1.0


def test_wilson_interval():
    assert V.wilson(0, 10)[0] == 0 and 0 < V.wilson(0, 10)[1] < 0.35
    lo, hi = V.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)  # textbook values


def test_loopback_names():
    from egolego.app.launch import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
