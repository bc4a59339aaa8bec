"""Per-patch labels for the tiny vision tower's pre-training: coverage arithmetic, consistency, seeding."""

import numpy as np
import pytest

from egolego.synth.patch_labels import SIDES, STATES, patch_cover, scene_patch_labels, side_index
from egolego.synth.vocab import COLORS, KINDS


def test_patch_cover_is_the_covered_share_of_each_patch():
    c = patch_cover((0.0, 0.0, 0.5, 0.25), 4)  # the top-left 2 x 1 patches, exactly
    want = np.zeros((4, 4))
    want[0, :2] = 1.0
    np.testing.assert_allclose(c, want, atol=1e-12)
    half = patch_cover((0.125, 0.5, 0.25, 0.75), 4)  # half of patch (row 2, col 0) in x, all of it in y
    assert half[2, 0] == pytest.approx(0.5) and half.sum() == pytest.approx(0.5)


def test_side_index_uses_the_descriptions_thresholds():
    from egolego.synth.world import side_word

    for x in (0.05, 0.39, 0.41, 0.5, 0.59, 0.61, 0.95):
        assert side_word(x).endswith(SIDES[side_index(x)])


def test_labels_are_consistent_and_seeded():
    a = scene_patch_labels(6, seed=3, size=64, grid=8)
    assert a.images.shape == (6, 64, 64, 3) and a.images.dtype == np.uint8
    assert a.kinds.shape == (6, 64, len(KINDS)) and a.colors.shape == (6, 64, len(COLORS)) and a.side.shape == (6, 64)
    shown = a.side >= 0
    assert shown.any() and (~shown).any()  # objects cover some patches, not all
    np.testing.assert_array_equal(a.kinds.sum(-1) > 0, shown)  # a side exactly where some object is
    np.testing.assert_array_equal(a.colors.sum(-1) > 0, shown)
    b = scene_patch_labels(6, seed=3, size=64, grid=8)
    np.testing.assert_array_equal(a.images, b.images)
    c = scene_patch_labels(6, seed=4, size=64, grid=8)
    assert not np.array_equal(a.images, c.images)


def test_an_objects_patches_carry_its_kind(monkeypatch):
    """One scene drawn by hand: the labels name the objects where they stand, and nothing elsewhere."""
    import egolego.synth.patch_labels as pl
    from egolego.synth.world import Action, ObjectSpec, Scene

    scene = Scene([ObjectSpec("cup", "red", 0.15, 0.5), ObjectSpec("pan", "blue", 0.8, 0.5)],
                  (200, 200, 200), (120, 120, 120), 1)
    monkeypatch.setattr(pl, "sample", lambda rng, knowledge: (scene, Action("take", 0, None, "left")))
    lab = pl.scene_patch_labels(3, seed=0, size=64, grid=8)
    kinds = sorted(KINDS)
    cup, pan = lab.kinds[..., kinds.index("cup")] > 0, lab.kinds[..., kinds.index("pan")] > 0  # (3, 64)
    cols = np.arange(64) % 8  # patches are row-major
    assert cup.any(axis=1).all() and pan.any(axis=1).all()
    for f in range(3):  # the pan is not touched: right in every frame; nothing else is labelled "pan"
        assert cols[pan[f]].min() >= 5
        assert (lab.side[f][pan[f] & ~cup[f]] == SIDES.index("right")).all()
    assert lab.kinds[..., [kinds.index(k) for k in kinds if k not in ("cup", "pan")]].sum() == 0


def test_states_label_the_patches_of_objects_drawn_in_them(monkeypatch):
    """A stained cup on the left, a clean one on the right, an empty bottle: "stained" only on the left cup's patches,
    "empty" only on the bottle's; the rules world's scenes carry states at all."""
    import egolego.synth.patch_labels as pl
    from egolego.synth.world import Action, ObjectSpec, Scene

    scene = Scene([ObjectSpec("cup", "red", 0.15, 0.6, "stained"), ObjectSpec("cup", "red", 0.85, 0.6),
                   ObjectSpec("bottle", "green", 0.5, 0.55, "empty")], (200, 200, 200), (120, 120, 120), 1)
    monkeypatch.setattr(pl, "sample", lambda rng, knowledge: (scene, Action("take", 1, None, "right")))
    lab = pl.scene_patch_labels(3, seed=0, size=64, grid=8)
    cols = np.arange(64) % 8
    stained, empty = lab.states[..., STATES.index("stained")] > 0, lab.states[..., STATES.index("empty")] > 0
    assert stained.any(axis=1).all() and empty.any(axis=1).all()
    assert cols[stained.any(axis=0)].max() <= 3  # the left cup only, never the clean one on the right
    clean = lab.states[..., STATES.index("clean")] > 0
    assert clean.any(axis=1).all() and cols[clean.any(axis=0)].min() >= 4  # the other side of the pair: the right cup
    assert set(cols[empty.any(axis=0)]) <= {2, 3, 4, 5}
    assert lab.states[..., STATES.index("full")].sum() == 0  # the bottle is empty, nothing is full
    closed = lab.states[..., STATES.index("closed")] > 0
    assert set(cols[closed.any(axis=0)]) <= {2, 3, 4, 5}  # a bottle is open or closed: closed here
    monkeypatch.undo()
    rules = scene_patch_labels(40, seed=1, size=64, grid=8, knowledge="rules")
    assert rules.states.sum() > 0
