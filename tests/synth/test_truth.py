"""Ground truth, vocabulary coverage and determinism."""

import hashlib

import numpy as np

from egolego.synth.dataset import SynthArgs, generate
from egolego.synth.describe import description
from egolego.synth.knowledge import RULE_BY_NAME
from egolego.synth.timeline import plan_dataset
from egolego.synth.vocab import KINDS, VERBS


def test_vocabulary_is_large_enough():
    assert len(KINDS) >= 12 and len(VERBS) >= 10


def test_plan_covers_vocabulary_hands_and_ambiguity():
    segs = [s for v in plan_dataset(1500, 0) for s in v.segments]
    assert {s.action.verb for s in segs} == set(VERBS)
    kinds = {o.kind for s in segs for o in s.scene.objects}
    assert len(kinds) >= 12
    assert {s.action.hand for s in segs} == {"left", "right"}
    n_obj = [len(s.scene.objects) for s in segs]
    assert min(n_obj) >= 2 and max(n_obj) <= 7
    twins = [s for s in segs if sum(o.kind == s.scene.objects[s.action.target].kind for o in s.scene.objects) > 1]
    assert len(twins) > 0.15 * len(segs)  # the label alone is ambiguous here
    for s in twins[:50]:  # ... and the description tells the two apart
        t = s.action.target
        other = next(i for i, o in enumerate(s.scene.objects) if i != t and o.kind == s.scene.objects[t].kind)
        assert s.scene.objects[t].color != s.scene.objects[other].color
        assert s.scene.objects[t].color in description(s.scene, s.action)


def test_truth_records(small_truth):
    for t in small_truth:
        assert t["description"].startswith("The person ") and f"the {t['hand']} hand" in t["description"]
        named = RULE_BY_NAME[t["rule"]].word if t["rule"] else t["target"]["color"]  # a rule scene: by its state
        assert f" {named} " in t["description"]
        for role in ("input", "target"):
            boxes = t["boxes"][role]
            assert "left hand" in boxes and "right hand" in boxes
            assert all(0 <= v <= 1 for b in boxes.values() for v in b)
        assert t["state"]["before"] != t["state"]["after"]
        assert t["epic"]["input_frame"] < t["epic"]["target_frame"]
        assert t["ego4d"]["input_frame"] < t["ego4d"]["target_frame"]
    # the acting hand moves between input and target; the other one stays
    moved = [np.abs(np.subtract(t["boxes"]["input"][f"{t['hand']} hand"], t["boxes"]["target"][f"{t['hand']} hand"])).max()
             for t in small_truth]
    assert min(moved) > 0.02


def test_blurred_frames_are_recorded(small_truth):
    flags = [len(t["epic"]["blurred_rgb_frames"]) for t in small_truth]
    assert sum(flags) > 0 and min(flags) < 18  # some blurred, never the whole window


def _decoded(path) -> str:
    """A digest of an MP4's decoded frames: what the dataset promises to repeat (the encoder's bytes may vary)."""
    import av

    h = hashlib.sha256()
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            h.update(f.to_ndarray(format="rgb24", threads=1).tobytes())
    return h.hexdigest()


def _digest(root):
    h = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            key = str(p.relative_to(root))
            h[key] = _decoded(p) if p.suffix.lower() == ".mp4" else hashlib.sha256(p.read_bytes()).hexdigest()
    return h


def test_same_seed_same_files_whatever_the_workers(small_dataset, tmp_path):
    """Every file byte for byte, the MP4s frame for frame (lossless x264: identical pixels)."""
    generate(SynthArgs(out=tmp_path, actions=40, size=64, seed=3, workers=2), progress=False)
    a, b = _digest(small_dataset), _digest(tmp_path)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_mp4_frames_are_the_frames_written(tmp_path):
    """Lossless: what a reader decodes is exactly the YUV 4:2:0 frame written (compared in YUV, before any RGB)."""
    import av

    from egolego.synth.media import write_mp4

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 112, 3), dtype=np.uint8) for _ in range(12)]
    write_mp4(tmp_path / "a.mp4", frames, 30, 112, 64)
    with av.open(str(tmp_path / "a.mp4")) as c:
        got = [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
    want = [av.VideoFrame.from_ndarray(x, format="rgb24").reformat(format="yuv420p", threads=1).to_ndarray()
            for x in frames]
    assert len(got) == 12 and all(np.array_equal(g, w) for g, w in zip(got, want))


def test_other_seed_differs(small_dataset, tmp_path):
    generate(SynthArgs(out=tmp_path, actions=40, size=64, seed=4, formats=("epic",), workers=1), progress=False)
    assert (tmp_path / "truth.jsonl").read_bytes() != (small_dataset / "truth.jsonl").read_bytes()
