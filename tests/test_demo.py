"""The demo runs end to end on a small EgoSynth and reuses what it built."""

from PIL import Image

from egolego import config
from egolego.demo import run_demo


def test_demo_runs_and_reuses(tmp_path, capsys):
    cfg = config.preset("tiny")
    cfg.synth.actions, cfg.synth.workers = 16, 1
    s = run_demo(cfg, tmp_path)
    assert Image.open(s["contact_sheet"]).size[0] > 400
    assert s["actions"] == 16
    capsys.readouterr()
    run_demo(cfg, tmp_path)
    assert capsys.readouterr().out.count("reused") == 2
