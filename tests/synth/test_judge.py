"""The action-accuracy judge's sanity figures on >= 200 EgoSynth actions (issue: foundation)."""

import numpy as np
import pytest
from PIL import Image

from egolego.synth.contact_sheet import pair_frames
from egolego.synth.dataset import load_truth
from egolego.synth.judge import accuracy, judge, other_action
from egolego.synth.render import render_frame
from egolego.synth.world import Action, Scene, pose


@pytest.fixture(scope="module")
def figures(judge_dataset):
    truth = load_truth(judge_dataset)
    assert len(truth) >= 200
    rng = np.random.default_rng(0)
    out = {k: [] for k in ("target", "target_square", "input", "noise", "other")}
    for t in truth:
        inp, tgt = pair_frames(judge_dataset, t)
        out["target"].append(judge(np.asarray(tgt), t))
        out["target_square"].append(judge(tgt.resize((64, 64), Image.BICUBIC), t))  # as a generated frame is
        out["input"].append(judge(np.asarray(inp), t))
        out["noise"].append(judge(rng.integers(0, 256, (64, 112, 3), dtype=np.uint8), t))
        scene, action = Scene.from_dict(t["scene"]), Action(**t["action"])
        alt = other_action(scene, action, rng)
        out["other"].append(judge(render_frame(scene, pose(scene, alt, 1.0), 64), t))
    return {k: accuracy(v) for k, v in out.items()}


def test_true_targets_pass(figures):
    assert figures["target"]["all"] >= 0.95
    assert figures["target_square"]["all"] >= 0.95


def test_input_frames_fail(figures):
    assert figures["input"]["all"] <= 0.20
    assert figures["input"]["hand"] <= 0.20  # the hand has not reached yet


def test_noise_fails(figures):
    assert figures["noise"]["all"] <= 0.02


def test_other_action_of_same_scene_fails(figures):
    assert figures["other"]["all"] <= 0.20


def test_separate_rates_are_reported(figures):
    assert set(figures["target"]) == {"hand", "object", "state", "all"}
    # a wrong object or hand is caught by its own test, not only by "all"
    assert figures["other"]["object"] < 0.5
