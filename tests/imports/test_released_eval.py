"""The three imports together: `egolego eval` scores the imported model on the imported test split with the
imported features; `generate` on a new image names what it still lacks (the released VLLM) in one line."""

import json

from egolego.cli import main

from .test_lego_dataset import release_dataset
from .test_lego_features import write_features


def test_eval_runs_on_the_imported_release(imported, tmp_path, capsys):
    frames = release_dataset(tmp_path / "data")
    pairs, store = tmp_path / "pairs", tmp_path / "store"
    assert main(["import", "lego-dataset", "--json", str(tmp_path / "data" / "ego4d_val.json"), "--frames",
                 str(frames), "--out", str(pairs)]) == 0
    img, txt, _ = write_features(tmp_path / "feat", {"act2": ("clip2", "frame_3", 6, False),
                                                      "act3": ("clip2", "frame_30", 80, False)})
    assert main(["import", "lego-features", "--image-features", str(img), "--text-features", str(txt),
                 "--out", str(store)]) == 0
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(imported), "--pairs", str(pairs), "--store", str(store), "--out", str(out),
                 "--metrics", "psnr,ssim", "--steps", "2", "--new-actions", "0", "--quiet"]) == 0, capsys.readouterr().err
    r = json.loads((out / "eval.json").read_text())
    assert r["mode"] == "lego" and r["n"] == 2 and set(r["metrics"]) >= {"psnr", "ssim"}
    assert sorted(p.name for p in (out / "images").glob("*.png")) == ["act2.png", "act3.png"]


def test_generate_names_the_missing_vllm(imported, tmp_path, capsys):
    frames = release_dataset(tmp_path)
    rc = main(["generate", "--model", str(imported), "--image", str(frames / "val/clip2/act2/frame_3.jpg"),
               "--action", "open the drawer", "--out", str(tmp_path / "o.png"), "--steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "needs the model's tuned VLLM" in err
