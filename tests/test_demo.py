"""The demo runs the whole pipeline end to end (tiny budget) and reuses what it built."""

import json
from html import escape

from PIL import Image

from egolego import config
from egolego.data.manifest import read_manifest
from egolego.demo import run_demo


def test_demo_end_to_end_and_reuse(tmp_path, capsys):
    cfg = config.preset("tiny")
    cfg.synth.actions, cfg.synth.workers = 40, 1
    before = config.to_dict(cfg)
    # 400 stills, scaled by the 0.1-minute budget to 20 rendered tuning scenes
    s = run_demo(cfg, tmp_path, minutes=0.1, test_pairs=4, baseline=True, stills=400)
    assert config.to_dict(cfg) == before  # the stages' effective values (scaled epochs, folders) stay in the run
    res = s["results"]
    assert {"label", "lego", "input copy", "ground truth"} <= set(res)
    assert res["ground truth"]["action_all"] >= 0.75  # the judge accepts the real action frames
    assert res["ground truth"]["psnr"] == 100.0 and {"psnr", "ssim", "action_all"} <= set(res["lego"])
    assert Image.open(s["figure"]).size[0] > 500
    assert json.loads((tmp_path / "results.json").read_text()) == res
    html = (tmp_path / "report.html").read_text()
    assert "New actions" in html and "Ablation: conditioning" in html and html.count("data:image/png;base64,") > 4 * 4
    assert len(list((tmp_path / "eval" / "lego" / "new_actions").glob("*.png"))) == 6
    assert (tmp_path / "ldm_lego" / "model" / "vllm" / "config.json").is_file()
    assert "World: synth.knowledge = rules" in html
    assert "The action as a clip" in html and html.count("<td>progress</td>") >= 4  # judge, hand, PSNR, SSIM rows
    tl = json.loads((tmp_path / "eval" / "timeline" / "timeline.json").read_text())
    assert tl["actions"] == 4 and tl["single"] == str(tmp_path / "ldm_lego" / "model")
    assert config.load(tmp_path / "ldm_lego_clips" / "config.yaml").ldm.progress
    descs = {escape(r["description"]) for r in read_manifest(tmp_path / "pairs") if r["split"] == "test"}
    assert any(f"VLLM: {d}" in html for d in descs if d.strip())  # the VLLM's descriptions under the samples
    # the clock ended lego's training (0.1 minutes); label trained exactly the steps lego reached
    lego_steps = config.load(tmp_path / "ldm_lego" / "config.yaml").ldm.max_steps
    assert 1 <= lego_steps < 100 and config.load(tmp_path / "ldm_label" / "config.yaml").ldm.max_steps == lego_steps
    merged = json.loads((tmp_path / "tuning_with_scenes.json").read_text())  # curated + rendered, paths from the run
    assert sum(r["id"].startswith("scene_") for r in merged) == 20 < len(merged)
    assert all((tmp_path / r["image"]).is_file() for r in merged)
    out = capsys.readouterr().out
    assert out.count(f"[demo] warning: the clock stopped `lego` after {lego_steps} of its") == 2  # after training, at the end
    assert "egolego demo --fixed-steps" in out and "--fixed-steps" in html
    assert f"report: {tmp_path / 'report.html'}" in out and out.count("[demo]      lego: psnr") + out.count("lego: psnr") >= 1
    run_demo(cfg, tmp_path, minutes=0.1, test_pairs=4, baseline=True, stills=400)
    assert capsys.readouterr().out.count("reused") >= 9


def test_too_few_steps_says_why_and_what_to_run():
    """The demo warns when its LDM trained too few steps to draw an action: cut by the clock (with the time all the
    steps would take at this box's pace) or given too small a budget; enough steps, no warning."""
    from egolego.demo import MIN_DRAWING_STEPS, too_few_steps

    cut = too_few_steps(221, 1800, 155.0)  # the 2026-12-07 slow box: 1.43 steps/s
    assert "after 221 of its 1800 steps" in cut and "--fixed-steps trains all 1800 (about 21 min" in cut.replace("`", "")
    assert "min of LDM" not in too_few_steps(221, 1800, 0.0)  # a reused model: no pace to tell
    assert "--minutes" in too_few_steps(900, 900, 200.0)  # the budget itself is short
    assert too_few_steps(MIN_DRAWING_STEPS, 1800, 300.0) is None and too_few_steps(2000, 2000, 400.0) is None
