"""EgoSynth's knowledge world: rules decide the target among look-alikes by a visible state, and the control world
stays the world without knowledge."""

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from egolego.synth import knowledge
from egolego.synth.describe import description, description_accuracy, label
from egolego.synth.judge import judge
from egolego.synth.render import render_canvas, square_frame
from egolego.synth.shapes import entities
from egolego.synth.world import Action, ObjectSpec, Scene, pose, side_word


def _rule_scenes(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    drawn = [knowledge.sample(rng, "rules") for _ in range(n)]
    return drawn, [(s, a) for s, a in drawn if s.rule]


def test_the_control_world_is_the_world_without_knowledge():
    """``none`` draws exactly the scenes the world drew before knowledge existed (digest taken from that code)."""
    rng = np.random.default_rng(7)
    h = hashlib.sha256()
    for _ in range(300):
        s, a = knowledge.sample(rng, "none")
        h.update(json.dumps([s.to_dict(), a.to_dict()], sort_keys=True).encode())
    assert h.hexdigest()[:16] == "0296520ff185e3b3"


def test_rule_scenes_hold_look_alikes_that_only_a_visible_state_tells_apart():
    drawn, rules = _rule_scenes(1500)
    assert 0.3 < len(rules) / len(drawn) < 0.5
    assert {s.rule for s, _ in rules} == {r.name for r in knowledge.RULES}
    for s, a in rules:
        rule = knowledge.RULE_BY_NAME[s.rule]
        t = s.objects[a.target]
        assert a.verb == rule.verb and t.kind in rule.kinds and t.cue == ""
        alike = [o for i, o in enumerate(s.objects) if o.kind == t.kind and i != a.target]
        assert 1 <= len(alike) <= 2
        assert all(o.color == t.color and o.cue == rule.decoy_cue for o in alike)  # colour never tells them apart
        sides = [side_word(o.x) for o in [t, *alike]]
        assert len(set(sides)) == len(sides)  # each on its own side: "the clean cup on the left" names one
        for o in [t, *alike]:  # clear of side_word's borders
            assert min(abs(o.x - 0.4), abs(o.x - 0.6)) >= 0.05 - 1e-9
    plain = [(s, a) for s, a in drawn if not s.rule]  # no rule: no look-alike at all in this world
    assert all(sum(o.kind == s.objects[a.target].kind for o in s.objects) == 1 for s, a in plain)


def test_the_label_does_not_say_which_and_the_description_does():
    _, rules = _rule_scenes(400, seed=1)
    for s, a in rules[:80]:
        word = knowledge.RULE_BY_NAME[s.rule].word
        lab = label(s, a)
        assert word not in lab.split(), lab
        d = description(s, a)
        t = s.objects[a.target]
        truth = {"hand": a.hand, "target": {"kind": t.kind, "color": t.color, "side": side_word(t.x)}}
        assert f" {word} " in d and description_accuracy(d, truth)["all"], d
        # the same sentence with a look-alike's side is wrong on position
        other = next(o for i, o in enumerate(s.objects) if o.kind == t.kind and i != a.target)
        wrong = d.replace(side_word(t.x), side_word(other.x), 1)
        assert not description_accuracy(wrong, truth)["position"]


@pytest.mark.parametrize("cue,kind", [("stained", "cup"), ("stained", "bowl"), ("stained", "plate"), ("empty", "bottle"),
                                      ("empty", "jar"), ("cut", "tomato"), ("open", "drawer"), ("open", "box")])
def test_every_decoy_cue_reads_at_64_px(cue, kind):
    """The cue changes the object's own pixels in the 64-px square frame the models see."""
    def frame(c):
        s = Scene([ObjectSpec(kind, knowledge.KINDS[kind].colors[0], 0.5, 0.62, c)], (200, 200, 200), (130, 120, 110), 3)
        return np.asarray(square_frame(s, pose(s, Action("push", 0, None, "left"), 0.0), 64)).astype(int)

    diff = np.abs(frame(cue) - frame("")).sum(-1) > 60
    assert diff.sum() >= 4, f"{cue} {kind}: {diff.sum()} pixels change"


def test_the_judge_tells_the_target_from_its_look_alike():
    """Unchanged judge: the truth frame passes; the same action done on the look-alike fails on the object."""
    _, rules = _rule_scenes(300, seed=2)
    fails = Counter()
    for s, a in rules[:40]:
        truth = {"scene": s.to_dict(), "action": a.to_dict()}
        w, h = 112, 64
        assert judge(render_canvas(s, pose(s, a, 1.0), w, h, 0), truth).all
        other = next(i for i, o in enumerate(s.objects) if o.kind == s.objects[a.target].kind and i != a.target)
        v = judge(render_canvas(s, pose(s, Action(a.verb, other, a.second, a.hand), 1.0), w, h, 0), truth)
        fails[v.object] += 1
    assert fails[False] == 40


def test_truth_records_name_the_rule(tmp_path):
    from egolego.synth.dataset import SynthArgs, generate, load_truth

    generate(SynthArgs(out=tmp_path / "r", actions=30, size=64, seed=4, formats=("epic",), workers=1,
                       knowledge="rules"), progress=False)
    truth = load_truth(tmp_path / "r")
    ruled = [t for t in truth if t["rule"]]
    assert ruled and all(t["rule"] in knowledge.RULE_BY_NAME and t["scene"]["rule"] == t["rule"] for t in ruled)
    assert all(f" {knowledge.RULE_BY_NAME[t['rule']].word} " in t["description"] for t in ruled)
    assert json.loads((tmp_path / "r" / "egosynth.json").read_text())["knowledge"] == "rules"


def test_a_world_without_knowledge_keeps_its_fingerprint_and_scenes_cannot_be_shared_under_rules(tmp_path):
    from egolego.errors import InputError
    from egolego.synth.dataset import SynthArgs

    assert "knowledge" not in SynthArgs(out=tmp_path, knowledge="none").fingerprint()
    with pytest.raises(InputError, match="must be 1 in a world with knowledge"):
        SynthArgs(out=tmp_path, knowledge="rules", actions_per_scene=2).validate()
    with pytest.raises(InputError, match="must be one of rules, none"):
        SynthArgs(out=tmp_path, knowledge="magic").validate()


def test_hands_are_drawn_last_so_a_cue_never_hides_them():
    """A decoy's cue is part of the object: the entities keep their draw order (objects, arms, held objects)."""
    s = Scene([ObjectSpec("cup", "red", 0.2, 0.6, "stained"), ObjectSpec("cup", "red", 0.8, 0.6)], (200,) * 3,
              (120,) * 3, 1)
    layers = [e.layer for e in entities(s, pose(s, Action("take", 1, None, "right"), 0.5))]
    assert layers == sorted(layers)
