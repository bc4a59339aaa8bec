"""``synth.actions_per_scene``: several different actions on one scene, so only the request tells them apart."""

from collections import Counter

import pytest

from egolego.errors import InputError
from egolego.synth.dataset import SynthArgs
from egolego.synth.sampling import possible_actions
from egolego.synth.timeline import plan_dataset
from egolego.synth.vocab import VERBS


def test_one_action_per_scene_draws_the_plan_of_before_the_option():
    a, b = plan_dataset(300, 5), plan_dataset(300, 5, actions_per_scene=1)
    assert [s for v in a for s in v.segments] == [s for v in b for s in v.segments]
    assert len({id(s.scene) for v in a for s in v.segments}) == 300


def test_scenes_are_shared_by_different_valid_actions_within_a_video():
    videos = plan_dataset(400, 2, actions_per_scene=3)
    segs = [s for v in videos for s in v.segments]
    assert len(segs) == 400
    uses = Counter(id(s.scene) for s in segs)
    assert max(uses.values()) == 3 and sum(n == 3 for n in uses.values()) > 0.5 * len(uses)
    for v in videos:  # a scene never crosses a video, so the train / validation split stays clean
        for other in videos:
            if other is not v:
                assert not {id(s.scene) for s in v.segments} & {id(s.scene) for s in other.segments}
        by_scene: dict[int, list] = {}
        for s in v.segments:
            by_scene.setdefault(id(s.scene), []).append(s.action)
        for actions in by_scene.values():
            keys = [(a.verb, a.target, a.second) for a in actions]
            assert len(set(keys)) == len(keys)  # different actions on the same scene
    for s in segs:
        verb, objs, a = VERBS[s.action.verb], s.scene.objects, s.action
        assert objs[a.target].kind in verb.targets
        assert (a.second is None) == (not verb.second)
        assert a.second is None or (objs[a.second].kind in verb.second and a.second != a.target)
        assert a.hand in ("left", "right")


def test_possible_actions_lists_every_verb_the_objects_allow():
    seg = plan_dataset(30, 4)[0].segments[0]
    options = possible_actions(seg.scene)
    assert (seg.action.verb, seg.action.target, seg.action.second) in options
    kinds = [o.kind for o in seg.scene.objects]
    for verb, t, second in options:
        assert kinds[t] in VERBS[verb].targets
        assert second is None or (kinds[second] in VERBS[verb].second and second != t)
    expected_take = sum(k in VERBS["take"].targets for k in kinds)
    assert sum(v == "take" for v, _, _ in options) == expected_take


def test_the_setting_is_checked_and_fingerprinted(tmp_path):
    with pytest.raises(InputError, match="must be >= 1") as e:
        SynthArgs(out=tmp_path, actions_per_scene=0).validate()
    assert e.value.arg == "actions_per_scene"
    assert "actions_per_scene" not in SynthArgs(out=tmp_path).fingerprint()  # older datasets stay reusable
    assert SynthArgs(out=tmp_path, actions_per_scene=2).fingerprint()["actions_per_scene"] == 2
