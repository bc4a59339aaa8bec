"""The text-to-image model (`train --conditioning t2i`) and `eval --baseline sdedit|proxnpi` end to end."""

import json

import pytest
import torch
import yaml

from egolego import config
from egolego.baselines import check_model_kind
from egolego.baselines.t2i import t2i_config
from egolego.cli import main


@pytest.fixture(scope="session")
def t2i_pairs(small_dataset, tmp_path_factory):
    """4 train and 2 test EgoSynth pairs."""
    from egolego.data.manifest import read_manifest, write_manifest
    from egolego.synth.pairs import pairs_from_egosynth

    d = tmp_path_factory.mktemp("t2i_pairs")
    pairs_from_egosynth(small_dataset, d)
    rows = read_manifest(d)
    write_manifest([r for r in rows if r["split"] == "train"][:4] + [r for r in rows if r["split"] == "test"][:2], d)
    return d


@pytest.fixture(scope="session")
def t2i_run(t2i_pairs, tmp_path_factory):
    """`egolego train --conditioning t2i` for 2 steps of a 2-level UNet (the CLI path, the tokenizer from the labels)."""
    run = tmp_path_factory.mktemp("t2i_run")
    cfg = run / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"preset": "tiny", "ldm": {"unet_channels": [16, 32], "unet_attention": [True, False], "checkpoint_every": 1,
                                                             "steps": 3}}))
    assert main(["train", "--pairs", str(t2i_pairs), "--conditioning", "t2i", "--out", str(run / "out"),
                 "--max-steps", "2", "--batch-size", "2", "--config", str(cfg)]) == 0
    return run / "out"


def test_t2i_run_is_a_stable_diffusion_folder_with_the_t2i_recipe(t2i_run):
    from diffusers import StableDiffusionPipeline

    index = json.loads((t2i_run / "model" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and index["scheduler"][1] == "DDIMScheduler"
    saved = yaml.safe_load((t2i_run / "model" / "lego_config.yaml").read_text())["ldm"]
    assert (saved["conditioning"], saved["objective"], saved["prediction"], saved["residual"], saved["scheduler"]) == \
        ("t2i", "ddpm", "epsilon", False, "ddim")
    pipe = StableDiffusionPipeline.from_pretrained(str(t2i_run / "model"), local_files_only=True)
    assert pipe.unet.config.in_channels == pipe.unet.config.out_channels == 48  # unshuffled 64 px: 16 x 16 x 48
    assert pipe.vae_scale_factor == 4
    # the diffusers pipeline generates with it as is
    im = pipe("take cup", num_inference_steps=2, height=64, width=64, output_type="pt",
              generator=torch.Generator().manual_seed(0)).images
    assert im.shape == (1, 3, 64, 64)
    assert sorted(p.name for p in (t2i_run / "checkpoints").iterdir())  # checkpoints written, so --resume works


def test_t2i_recipe_refuses_what_cannot_work():
    cfg = t2i_config(config.preset("tiny"))  # the tiny editing recipe's keys become the t2i recipe
    assert (cfg.ldm.objective, cfg.ldm.residual, cfg.ldm.loss_weighting, cfg.ldm.steps) == ("ddpm", False, "none", 20)
    for key, value, words in (("residual", True, "ldm.residual"), ("loss_weighting", "change", "ldm.loss_weighting"),
                              ("scheduler", "dpm++", "ldm.scheduler"), ("objective", "flow", "ldm.objective")):
        paper = config.preset("paper")
        setattr(paper.ldm, key, value)
        if key == "objective":
            paper.ldm.prediction, paper.ldm.scheduler = "velocity", "flow_euler"
        with pytest.raises(ValueError, match=words):
            t2i_config(paper)


def test_eval_baselines_and_report_order(t2i_run, t2i_pairs, tmp_path, capsys):
    model = str(t2i_run / "model")
    common = ["--pairs", str(t2i_pairs), "--metrics", "psnr,ssim", "--new-actions", "2", "--quiet", "--draws", "2"]
    assert main(["eval", "--model", model, "--baseline", "sdedit", "--out", str(tmp_path / "sd"), "--strength",
                 "0.5", *common]) == 0
    assert main(["eval", "--model", model, "--baseline", "proxnpi", "--out", str(tmp_path / "px"), "--steps", "2",
                 *common]) == 0
    sd, px = (json.loads((tmp_path / d / "eval.json").read_text()) for d in ("sd", "px"))
    assert (sd["name"], sd["mode"], px["name"], px["mode"]) == ("SDEdit", "sdedit", "ProxNPI", "proxnpi")
    assert sd["generated"]["sampling"]["strength"] == 0.5 and px["generated"]["sampling"]["steps"] == 2
    assert len(list((tmp_path / "sd" / "images").glob("*.png"))) == 2 and "psnr" in px["metrics"]
    # --draws 2: SDEdit's noise differs per draw; ProxNPI starts from the input's inversion, so it is drawn once
    assert sd["generated"]["draws"] == 2 and len(list((tmp_path / "sd" / "draws" / "1" / "images").glob("*.png"))) == 2
    assert "draws" not in px["generated"] and not (tmp_path / "px" / "draws").exists()
    assert len(sd["new_actions"]["items"]) == 2
    assert main(["eval", "--model", "input", "--out", str(tmp_path / "in"), *common]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "in"), str(tmp_path / "sd"), str(tmp_path / "px"), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.index("<td>input</td>") < page.index("<td>ProxNPI</td>") < page.index("<td>SDEdit</td>")


def test_baseline_errors_name_the_flag(t2i_run, t2i_pairs, tmp_path, capsys):
    lego = tmp_path / "lego"
    lego.mkdir()
    (lego / "model_index.json").write_text(json.dumps({"_class_name": "LegoPipeline"}))
    with pytest.raises(ValueError, match="baseline sdedit.*LegoPipeline") as e:
        check_model_kind(lego, "sdedit")
    assert e.value.arg == "model"
    with pytest.raises(ValueError, match="through a baseline, proxnpi or sdedit") as e:
        check_model_kind(t2i_run / "model", None)
    assert e.value.arg == "model"
    check_model_kind(t2i_run / "model", "proxnpi")
    common = ["--pairs", str(t2i_pairs), "--metrics", "psnr", "--quiet", "--out", str(tmp_path / "e")]
    assert main(["eval", "--model", str(lego), "--baseline", "sdedit", *common]) == 2
    assert main(["eval", "--model", str(t2i_run / "model"), "--baseline", "sdedit", "--strength", "1.5", *common]) == 2
    assert main(["eval", "--model", str(t2i_run / "model"), "--baseline", "proxnpi", "--image-guidance", "2",
                 *common]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert "error: --model: baseline sdedit needs a text-to-image model" in err[0] and "LegoPipeline" in err[0]
    assert "error: --strength: must be in (0, 1], got 1.5" in err[1]
    assert "error: --image-guidance: SDEdit and ProxNPI have no image guidance" in err[2]
