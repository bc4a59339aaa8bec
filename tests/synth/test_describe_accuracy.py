"""Description accuracy (``desc_acc``): the truth's own description passes; each kind of mistake fails its part."""

from egolego.ldm.data import swap_sides
from egolego.synth.describe import description_accuracy
from egolego.synth.knowledge import RULE_BY_NAME


def test_truth_descriptions_pass_and_mistakes_fail(small_truth):
    for t in small_truth:
        d = t["description"]
        assert description_accuracy(d, t)["all"], d
        wrong_hand = d.replace(f"the {t['hand']} hand", f"the {'left' if t['hand'] == 'right' else 'right'} hand")
        assert not description_accuracy(wrong_hand, t)["hand"]
        assert description_accuracy(wrong_hand, t)["object"]
        colour = t["target"]["color"]
        named = RULE_BY_NAME[t["rule"]].word if t.get("rule") else colour  # a rule scene names the state, not the colour
        wrong_colour = d.replace(f" {named} ", " purple " if colour != "purple" else " orange ", 1)
        assert not description_accuracy(wrong_colour, t)["object"]
        mirrored = swap_sides(d)  # every left <-> right: the hand and the side both go wrong
        r = description_accuracy(mirrored, t)
        assert not r["hand"] and r["object"]
        if t["target"]["side"] in ("on the left", "on the right"):
            assert not r["position"]
        assert not description_accuracy(t["label"], t)["all"]  # "take cup" names neither hand nor colour
