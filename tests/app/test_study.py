"""The study's trial logic: each rater sees every pair once, in an order of their own; methods are shuffled per trial."""

import pytest

from egolego.app import votes as V
from egolego.app.runs import load_runs
from egolego.app.study import Study

from .conftest import PAIRS_N


def test_methods_shuffled_per_trial_and_each_pair_once(app_runs, tmp_path):
    study = Study(load_runs(app_runs), tmp_path / "v.sqlite")
    names = sorted(study.runs.names)
    orders = {tuple(study.next_trial("ann")["shown"]) for _ in range(60)}
    assert all(sorted(o) == names for o in orders) and len(orders) >= 4  # 6 orders of 3; all 60 alike: p ≈ 0
    assert study.remaining("ann") != study.remaining("bob")  # each rater has an order of their own
    seen = []
    while (t := study.next_trial("ann")) is not None:
        seen.append(t["pair_id"])
        assert study.vote(t, 2) is not None
        assert study.vote(t, 1) is None  # a second click on the same trial is not a second vote
    assert sorted(seen) == sorted(study.runs.pairs.ids)
    rows = V.read_votes(tmp_path / "v.sqlite")
    assert [r["choice"] for r in rows] == [r["shown"][2] for r in rows] and len(rows) == PAIRS_N
    with pytest.raises(ValueError, match="no option"):
        study.vote({"rater": "bob", "pair_id": seen[0], "shown": ["a", "b"]}, 5)


def test_description_study(app_runs, tmp_path):
    study = Study(load_runs(app_runs), tmp_path / "d.sqlite", mode="descriptions")
    t = study.next_trial("cy")
    assert t["shown"] == study.runs.description(t["pair_id"]) and t["shown"].startswith("The person")
    study.vote(t, V.ALIGNED)
    t2 = study.next_trial("cy")
    study.vote(t2, V.NOT_ALIGNED)
    a = V.aligned_rate(V.read_votes(tmp_path / "d.sqlite"))
    assert (a["aligned"], a["n"]) == (1, 2) and t2["pair_id"] != t["pair_id"]
    with pytest.raises(ValueError, match="aligned"):
        study.vote(study.next_trial("cy"), "maybe")


def test_report_user_study_section(app_runs, tmp_path):
    from egolego.eval.report import build_report

    db = V.init_db(tmp_path / "v.sqlite")
    for rater, choice in (("ann", "label"), ("bob", "label"), ("bob", "input copy")):
        V.record_vote(db, "methods", rater, f"p-{choice}", ["input copy", "label", "ground truth"], choice)
    V.record_vote(db, "descriptions", "cy", "p1", "The person ...", V.ALIGNED)
    V.record_vote(db, "descriptions", "cy", "p2", "The person ...", V.NOT_ALIGNED)
    text = build_report(app_runs, tmp_path / "r.html", votes=V.read_votes(db), votes_from=str(db)).read_text()
    text = text[text.index("<h2>User study"):]
    assert "User study" in text and "2/3" in text and "1/3" in text and "0/3" in text  # label, input copy, GT
    assert text.index("<td>label</td>") < text.index("<td>input copy</td>") < text.index("<td>ground truth</td>")
    assert "Descriptions (Fig. 6)" in text and "1/2" in text
    assert "<td>ann</td><td>1</td><td>0</td>" in text and "<td>cy</td><td>0</td><td>2</td>" in text
    assert "User study" not in build_report(app_runs, tmp_path / "r2.html").read_text()
