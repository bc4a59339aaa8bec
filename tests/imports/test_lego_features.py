"""``egolego import lego-features``: the release's ``.npy`` trees into an embedding store, rows as the official
dataset reads them (cut / zero-padded to 77, the legacy 3-D H_t's last row)."""

from pathlib import Path

import numpy as np
import pytest

from egolego.cli import main
from egolego.vllm.store import EmbeddingStore

from .official_files import D_VLLM, M

# action -> (clip, frame, generated tokens T, legacy 3-D H_t)
ACTIONS = {"a1": ("clipA", "frame_0001", 5, False), "a2": ("clipA", "frame_0040", 90, False),
           "b1": ("clipB", "frame_0007", 12, True)}


def write_features(root: Path, actions=ACTIONS, seed: int = 0) -> tuple[Path, Path, dict]:
    """<root>/{image,text}/val/<clip>/<action>/<frame>.npy in fp16, as the release's zips unpack."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for action, (clip, frame, t, legacy) in actions.items():
        h_img = rng.standard_normal((M, D_VLLM)).astype(np.float16)
        h_txt = rng.standard_normal((t, 3, D_VLLM) if legacy else (t, D_VLLM)).astype(np.float16)
        for kind, a in (("image", h_img), ("text", h_txt)):
            f = root / kind / "val" / clip / action / f"{frame}.npy"
            f.parent.mkdir(parents=True, exist_ok=True)
            np.save(f, a)
        arrays[action] = (h_img, h_txt[:, -1, :] if legacy else h_txt)
    return root / "image" / "val", root / "text" / "val", arrays


def _run(img, txt, out, *extra) -> int:
    return main(["import", "lego-features", "--image-features", str(img), "--text-features", str(txt),
                 "--out", str(out), *extra])


@pytest.mark.parametrize("lengths", ["official", "true"])
def test_features_become_the_store_rows(tmp_path, lengths):
    img, txt, arrays = write_features(tmp_path)
    assert _run(img, txt, tmp_path / "store", "--lengths", lengths) == 0
    store = EmbeddingStore(tmp_path / "store")
    assert len(store) == 3 and store.image_shape == (M, D_VLLM) and store.text_shape == (77, D_VLLM)
    for action, (h_img, h_txt) in arrays.items():
        e = store.get(action)
        n = min(len(h_txt), 77)
        np.testing.assert_array_equal(e.h_img.numpy(), h_img)
        np.testing.assert_array_equal(e.h_txt[:n].numpy(), h_txt[:n])  # the first 77 rows, as egogen_dataset.py
        assert not e.h_txt[n:].any()  # zero padding
        assert e.length == (77 if lengths == "official" else n)


def test_a_rerun_resumes_and_keeps_its_length_rule(tmp_path, capsys):
    img, txt, _ = write_features(tmp_path)
    assert _run(img, txt, tmp_path / "store") == 0
    assert _run(img, txt, tmp_path / "store") == 0
    assert "0 pairs added, 3 already stored" in capsys.readouterr().out
    assert _run(img, txt, tmp_path / "store", "--lengths", "true") == 2
    assert "--lengths: " in capsys.readouterr().err


def test_a_missing_text_feature_fails_before_reading(tmp_path, capsys):
    img, txt, _ = write_features(tmp_path)
    (txt / "clipB" / "b1" / "frame_0007.npy").unlink()
    assert _run(img, txt, tmp_path / "store") == 2
    err = capsys.readouterr().err
    assert "--text-features: no feature for action b1 (frame_0007.npy" in err and err.count("\n") == 1
    assert not list((tmp_path / "store").glob("shard-*"))


def test_a_repeated_action_id_is_refused(tmp_path, capsys):
    img, txt, _ = write_features(tmp_path, {**ACTIONS})
    write_features(tmp_path, {"a1": ("clipC", "frame_0002", 4, False)})
    assert _run(img, txt, tmp_path / "store") == 2
    assert "action id 'a1' appears twice" in capsys.readouterr().err


def test_a_pickled_npy_runs_nothing(tmp_path, capsys):
    img, txt, _ = write_features(tmp_path)
    np.save(img / "clipA" / "a1" / "frame_0001.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    assert _run(img, txt, tmp_path / "store") == 2
    err = capsys.readouterr().err
    assert "--image-features: " in err and "not a readable .npy array" in err and err.count("\n") == 1
