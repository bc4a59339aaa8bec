"""Rendered tuning records: each description names the true hand, object and side, in the curation's words."""

import json

import numpy as np
from PIL import Image

from egolego.data.llava_records import read_json
from egolego.synth.describe import description_accuracy
from egolego.tuning_stills import write_tuning_records


def test_every_record_names_the_true_hand_object_and_side(tmp_path):
    recs = read_json(write_tuning_records(tmp_path, 60, seed=3, size=32))
    assert len(recs) == 60 and len({r["image"] for r in recs}) == 60
    for r in recs:
        desc = r["conversations"][1]["value"]
        assert description_accuracy(desc, r["truth"]) == {"hand": True, "object": True, "position": True, "all": True}, desc
        assert r["label"] in r["conversations"][0]["value"] and r["conversations"][0]["value"].startswith("<image>\n")
        im = Image.open(tmp_path / r["image"])
        assert im.size == (32, 32) and np.asarray(im).std() > 5  # a rendered scene, squashed to a square
    sides = {r["truth"]["target"]["side"] for r in recs}
    assert sides == {"on the left", "in the middle", "on the right"}


def test_worded_as_the_geometric_curation(tmp_path):
    """The curation's sentence shape and nouns: no colours (the curation reads boxes, not pixels)."""
    from egolego.synth.vocab import COLORS

    for r in read_json(write_tuning_records(tmp_path, 40, seed=0, size=32)):
        desc = r["conversations"][1]["value"]
        assert desc.startswith("The person ") and desc.endswith(f"with the {r['truth']['hand']} hand."), desc
        assert not set(desc.lower().rstrip(".").split()) & set(COLORS), desc


def test_reused_when_unchanged_and_redone_when_changed(tmp_path):
    p = write_tuning_records(tmp_path, 8, seed=1, size=32)
    first = p.read_text()
    (tmp_path / "images" / "scene_000000.png").unlink()
    assert write_tuning_records(tmp_path, 8, seed=1, size=32).read_text() == first  # the same arguments: reused
    assert not (tmp_path / "images" / "scene_000000.png").exists()
    other = read_json(write_tuning_records(tmp_path, 8, seed=2, size=32))
    assert [r["label"] for r in other] != [r["label"] for r in json.loads(first)]
    assert (tmp_path / "images" / "scene_000000.png").exists()


def test_in_the_rules_world_a_record_names_the_target_by_its_state(tmp_path):
    """The stills teach the rules: "the clean cup on the left" where look-alikes share the scene."""
    from egolego.synth.knowledge import RULE_BY_NAME

    recs = read_json(write_tuning_records(tmp_path, 60, seed=5, size=32, knowledge="rules"))
    ruled = [r for r in recs if r["truth"]["rule"]]
    assert len(ruled) >= 12
    for r in recs:
        desc = r["conversations"][1]["value"]
        assert description_accuracy(desc, r["truth"])["all"], desc
        word = RULE_BY_NAME[r["truth"]["rule"]].word if r["truth"]["rule"] else None
        if word:
            assert f" the {word} " in desc, desc
    assert json.loads((tmp_path / "records_meta.json").read_text())["knowledge"] == "rules"
