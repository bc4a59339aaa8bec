"""Configs: presets, YAML round trip, strict keys."""

import pytest

from egolego import config


def test_presets_differ_in_size_only_in_values():
    tiny, paper = config.preset("tiny"), config.preset("paper")
    assert type(tiny) is type(paper)
    assert (tiny.image_size, paper.image_size) == (64, 256)
    assert (tiny.synth.size, paper.synth.size) == (64, 256)


def test_yaml_round_trip(tmp_path):
    cfg = config.preset("tiny")
    cfg.synth.actions = 123
    config.save(cfg, tmp_path / "c.yaml")
    assert config.load(tmp_path / "c.yaml") == cfg


def test_file_overrides_its_preset(tmp_path):
    (tmp_path / "c.yaml").write_text("preset: paper\nsynth:\n  seed: 7\n")
    cfg = config.load(tmp_path / "c.yaml")
    assert cfg.preset == "paper" and cfg.synth.seed == 7 and cfg.synth.size == 256


@pytest.mark.parametrize("text", ["synth:\n  actoins: 3\n", "nope: 1\n", "synth: 3\n", "preset: huge\n"])
def test_bad_files_raise(tmp_path, text):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ValueError):
        config.load(tmp_path / "c.yaml")
