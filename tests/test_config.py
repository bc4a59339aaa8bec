"""Configs: presets, YAML round trip, strict keys."""

from pathlib import Path

import pytest

from egolego import config

SHIPPED = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))  # the configs the README points to


def _leaves(obj, prefix=""):
    """{dotted key: value} of a config, every section walked (the shape of the two presets is compared through it)."""
    import dataclasses

    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out.update(_leaves(v, f"{prefix}{f.name}.") if dataclasses.is_dataclass(v) else {prefix + f.name: v})
    return out


def _table_keys(table, prefix=""):
    return {k for key, v in table.items()
            for k in (_table_keys(v, f"{prefix}{key}.") if isinstance(v, dict) else {prefix + key})}


def test_presets_differ_in_size_only_in_values():
    """The two presets are the same classes with the same keys; every value that differs is one a preset's table
    sets (``config.PRESET_TABLES``), so no code path can branch on a field only one of them has."""
    tiny, paper = config.preset("tiny"), config.preset("paper")
    t, p = _leaves(tiny), _leaves(paper)
    assert t.keys() == p.keys() and len(t) > 100
    differ = {k for k in t if t[k] != p[k]} - {"preset"}
    tables = _table_keys(config.PRESET_TABLES["tiny"]) | _table_keys(config.PRESET_TABLES["paper"])
    assert differ and differ <= tables, sorted(differ - tables)
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


def test_tuned_vllm_settings_round_trip_with_nested_keys_and_ignore_unknown_ones(tmp_path):
    import yaml

    from egolego.vllm.settings import SETTINGS_FILE, load_settings, save_settings

    v = config.preset("tiny").vllm
    v.vision_pretrain.scenes, v.max_new_tokens = 77, 9
    save_settings(v, tmp_path)
    assert load_settings(tmp_path) == v
    data = yaml.safe_load((tmp_path / SETTINGS_FILE).read_text())
    data["from_a_newer_version"] = 1
    data["vision_pretrain"]["also_newer"] = 2
    (tmp_path / SETTINGS_FILE).write_text(yaml.safe_dump(data))
    assert load_settings(tmp_path) == v


def test_each_preset_is_the_defaults_plus_its_table():
    import dataclasses

    for name, table in config.PRESET_TABLES.items():
        cfg, bare = config.preset(name), config.Config(preset=name)
        for section, values in table.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    assert getattr(getattr(cfg, section), key) == value
            else:
                assert getattr(cfg, section) == values
        changed = {f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(bare, f.name)}
        assert changed == set(table)  # nothing else differs from the bare defaults


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load_and_fit_the_bounds(path):
    """Every file in configs/ is a valid config (known keys, values within the CLI's bounds) that changes its preset."""
    from egolego.cli.bounds import check_config

    cfg = config.load(path)
    assert check_config(cfg, "config") is None
    assert cfg != config.preset(cfg.preset)


def test_no_module_switches_on_the_preset_name():
    """Behaviour follows config keys (ldm.from_base, vllm.from_model, ldm.t2i_steps …), never the preset's name:
    a config that starts from the tiny preset and sets a paper key must get the paper behaviour for that key."""
    import re
    from pathlib import Path

    import egolego

    root = Path(egolego.__file__).parent
    switch = re.compile(r"preset\s*(==|!=)\s*[\"']|preset\s+(not\s+)?in\s*[(\[{]|\[\s*cfg\.preset\s*\]")
    found = [f"{p.relative_to(root)}:{i}: {line.strip()}" for p in sorted(root.rglob("*.py")) if p.name != "config.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if switch.search(line)]
    assert found == []


def test_from_base_and_from_model_say_where_a_model_starts():
    from egolego.errors import InputError
    from egolego.ldm.build import build_components
    from egolego.vllm.tune import build_model

    cfg = config.preset("tiny")
    assert (cfg.ldm.from_base, cfg.vllm.from_model) == (False, False)
    assert (config.preset("paper").ldm.from_base, config.preset("paper").vllm.from_model) == (True, True)
    cfg.ldm.from_base = cfg.vllm.from_model = True
    with pytest.raises(InputError, match=r"ldm.from_base: true"):
        build_components(cfg, vllm_dim=8, image_tokens=4, text_tokens=77)
    with pytest.raises(InputError, match=r"vllm.from_model: true"):
        build_model(cfg, None)
