"""The study's trial logic: each rater sees every pair once, in an order of their own; methods are shuffled per trial."""

from pathlib import Path

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


def test_served_frames_are_whole_files_named_by_content(tmp_path):
    from PIL import Image

    from egolego.app.images import served

    a, b = Image.new("RGB", (9, 7), (200, 10, 10)), Image.new("RGB", (9, 7), (10, 200, 10))
    pa = served(a)
    assert served(a.copy()) == pa and served(b) != pa and served(None) is None
    assert Image.open(pa).convert("RGB").tobytes() == a.tobytes()
    assert not [f for f in Path(pa).parent.iterdir() if f.name.startswith(".")]  # no staging file left


def test_raters_voting_at_once_record_every_vote_and_get_whole_pages(app_runs, tmp_path):
    """12 raters through gradio's own client, all at once, each voting on every pair: exactly 12 x PAIRS_N rows,
    and every frame each rater was sent decodes (a frame rewritten while sent arrived cut off)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client
    from PIL import Image

    from egolego.app.launch import launch
    from egolego.app.study import build_study

    from .test_browser import free_port

    study = Study(load_runs(app_runs), tmp_path / "v.sqlite")
    app = launch(build_study(study), port=free_port(), block=False)
    try:
        def rater(i: int) -> int:
            c = Client(app.local_url, verbose=False, download_files=str(tmp_path / f"r{i}"))
            pages = [c.predict(f"rater{i}", api_name="/on_start")]
            for _ in range(PAIRS_N):
                pages.append(c.predict(api_name=f"/on_vote_{i % 3}" if i % 3 else "/on_vote"))
            frames = [p for page in pages for p in page if isinstance(p, str) and p.endswith(".png")]
            for f in frames:
                Image.open(f).load()  # raises on a truncated file
            return len(frames)

        with ThreadPoolExecutor(12) as pool:
            sent = list(pool.map(rater, range(12)))
    finally:
        app.close()
    rows = V.read_votes(tmp_path / "v.sqlite")
    assert len(rows) == 12 * PAIRS_N and len({(r["rater"], r["pair_id"]) for r in rows}) == 12 * PAIRS_N
    assert all(n == PAIRS_N * 4 for n in sent)  # per page: the input frame and the 3 methods' frames
