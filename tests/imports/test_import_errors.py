"""A checkpoint that is not the release's layout fails in one line naming the key; nothing is written."""

import pytest
import torch

from egolego.cli import main

from .official_files import SIZE, schedule_buffers, write_ckpt


def _import(release, tmp_path, capsys, sd=None, *extra) -> tuple[int, str]:
    ckpt = release["ckpt"] if sd is None else write_ckpt(tmp_path / "bad.ckpt", sd)
    rc = main(["import", "lego", "--ldm", str(ckpt), "--out", str(tmp_path / "model"), "--size", str(SIZE), *extra])
    err = capsys.readouterr().err
    assert not (tmp_path / "model").exists()
    return rc, err


def _edit(release, drop=(), add=None, rename=None) -> dict:
    sd = {k: v for k, v in release["sd"].items() if k not in drop}
    for old, new in (rename or {}).items():
        sd[new] = sd.pop(old)
    sd.update(add or {})
    return sd


CASES = {
    "renamed UNet key": (dict(rename={"model.diffusion_model.input_blocks.1.0.in_layers.0.weight":
                                      "model.diffusion_model.input_blocks.1.0.in_layers.0.weigth"}),
                         ["missing key model.diffusion_model.input_blocks.1.0.in_layers.0.weight",
                          "unexpected key model.diffusion_model.input_blocks.1.0.in_layers.0.weigth"]),
    "missing EMA key": (dict(drop=["model_ema.diffusion_modelmiddle_block1transformer_blocks0attn2to_kweight"]),
                        ["missing key model_ema.diffusion_modelmiddle_block1transformer_blocks0attn2to_kweight"]),
    "missing mixer key": (dict(drop=["self_attn_mix.layers.1.linear2.bias"]),
                          ["missing key self_attn_mix.layers.1.linear2.bias"]),
    "missing VAE key": (dict(drop=["first_stage_model.decoder.mid.attn_1.k.weight"]),
                        ["missing key first_stage_model.decoder.mid.attn_1.k.weight"]),
    "missing CLIP key": (dict(drop=["cond_stage_model.transformer.text_model.final_layer_norm.bias"]),
                         ["missing key cond_stage_model.transformer.text_model.final_layer_norm.bias"]),
    "mis-shaped projection": (dict(add={"projection_txt.weight": torch.zeros(32, 49)}),
                              ["mis-shaped key projection_txt.weight (32, 49) (expected (32, 48))"]),
    "mis-shaped VAE conv": (dict(add={"first_stage_model.decoder.up.0.block.0.conv1.weight": torch.zeros(32, 32, 1, 1)}),
                            ["mis-shaped key first_stage_model.decoder.up.0.block.0.conv1.weight (32, 32, 1, 1)"]),
    "unexpected key": (dict(add={"first_stage_model.loss.logvar": torch.zeros(())}),
                       ["unexpected key first_stage_model.loss.logvar"]),
    "architecture key missing": (dict(drop=["model.diffusion_model.input_blocks.0.0.weight"]),
                                 ["missing key model.diffusion_model.input_blocks.0.0.weight"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_key_that_does_not_fit_is_named(case, release, tmp_path, capsys):
    edit, expected = CASES[case]
    rc, err = _import(release, tmp_path, capsys, _edit(release, **edit), "--clip-text", str(release["clip"]))
    assert rc == 2 and err.count("\n") == 1 and err.startswith("egolego import: error: --ldm: bad.ckpt: "), err
    for piece in expected:
        assert piece in err, err


def test_another_noise_schedule_is_refused(release, tmp_path, capsys):
    sd = _edit(release, add=schedule_buffers(start=0.0001, end=0.02))  # DDPM's own linear betas, not SD's
    rc, err = _import(release, tmp_path, capsys, sd, "--clip-text", str(release["clip"]))
    assert rc == 2 and "betas are not SD's scaled-linear 0.00085-0.012 schedule" in err and err.count("\n") == 1


def test_the_tokenizer_must_come_from_clip_text(release, tmp_path, capsys):
    rc, err = _import(release, tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1
    assert "--clip-text: the checkpoint holds the CLIP text encoder's weights but not its tokenizer" in err
    assert "openai/clip-vit-large-patch14" in err


def test_a_folder_without_tokenizer_is_named(release, tmp_path, capsys):
    empty = tmp_path / "noclip"
    empty.mkdir()
    rc, err = _import(release, tmp_path, capsys, None, "--clip-text", str(empty))
    assert rc == 2 and f"--clip-text: {empty} holds no tokenizer" in err and err.count("\n") == 1


def test_an_existing_model_is_kept_without_overwrite(imported, release, capsys):
    before = (imported / "lego_import.json").stat().st_mtime_ns
    rc = main(["import", "lego", "--ldm", str(release["ckpt"]), "--out", str(imported), "--clip-text",
               str(release["clip"]), "--size", str(SIZE)])
    err = capsys.readouterr().err
    assert rc == 2 and f"--out: {imported} already holds a model; pass --overwrite" in err and err.count("\n") == 1
    assert (imported / "lego_import.json").stat().st_mtime_ns == before


def test_a_folder_that_is_not_a_model_is_never_replaced(release, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    rc = main(["import", "lego", "--ldm", str(release["ckpt"]), "--out", str(mine), "--clip-text",
               str(release["clip"]), "--size", str(SIZE), "--overwrite"])
    assert rc == 2 and "is a non-empty folder that holds no LEGO model" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_shapes_that_make_no_model_are_one_line(release, tmp_path, capsys):
    """A crafted file whose architecture keys are absurd (0 channels) is refused, not a traceback."""
    sd = _edit(release, add={"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(0, 8, 3, 3)})
    rc, err = _import(release, tmp_path, capsys, sd, "--clip-text", str(release["clip"]))
    assert rc == 2 and err.count("\n") == 1 and "bad.ckpt: " in err, err


def test_a_tokenizer_of_another_model_is_refused(release, tmp_path, capsys):
    from transformers import CLIPConfig

    from egolego.tokenizer import train_tokenizer

    only_config = tmp_path / "config_only"  # transformers would build an empty CLIP tokenizer from this
    CLIPConfig().save_pretrained(only_config)
    rc, err = _import(release, tmp_path, capsys, None, "--clip-text", str(only_config))
    assert rc == 2 and "holds no tokenizer" in err
    other = tmp_path / "other"
    train_tokenizer(["a different corpus of words entirely"], other, vocab_size=280)
    rc, err = _import(release, tmp_path, capsys, None, "--clip-text", str(other))
    assert rc == 2 and err.count("\n") == 1 and "tokens, the checkpoint's CLIP text embedding 300 rows" in err, err
