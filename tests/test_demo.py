"""The demo runs the whole pipeline end to end (tiny budget) and reuses what it built."""

import json

from PIL import Image

from egolego import config
from egolego.demo import run_demo


def test_demo_end_to_end_and_reuse(tmp_path, capsys):
    cfg = config.preset("tiny")
    cfg.synth.actions, cfg.synth.workers = 40, 1
    s = run_demo(cfg, tmp_path, minutes=0.1, test_pairs=4)
    res = s["results"]
    assert {"label", "lego", "input frame (copy)", "ground truth"} <= set(res)
    assert res["ground truth"]["acc_all"] >= 0.75  # the judge accepts the real action frames
    assert Image.open(s["figure"]).size[0] > 500
    assert json.loads((tmp_path / "results.json").read_text()) == res
    assert (tmp_path / "ldm_lego" / "model" / "vllm" / "config.json").is_file()
    capsys.readouterr()
    run_demo(cfg, tmp_path, minutes=0.1, test_pairs=4)
    assert capsys.readouterr().out.count("reused") >= 6
