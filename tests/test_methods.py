"""The method registry: one table the CLI, stages, eval and reproduce look up."""

import pytest

from egolego import config
from egolego.errors import InputError
from egolego.methods import KINDS, METHODS, REFERENCES, TRAINED, for_model, method


def test_every_method_has_a_kind_and_the_trained_ones_a_trainer():
    from egolego.baselines.t2i import TextToImageTrainer
    from egolego.ldm.train import Trainer

    assert all(m.kind in KINDS for m in METHODS.values())
    assert TRAINED == ("label", "desc", "desc+img", "desc+txt", "lego", "t2i")
    assert {method(n).trainer() for n in TRAINED} == {Trainer, TextToImageTrainer}
    assert method("t2i").trainer() is TextToImageTrainer and method("lego").trainer() is Trainer
    for name, why in (("sdedit", "train `--conditioning t2i`"), ("input", "a reference")):
        with pytest.raises(InputError, match=why):
            method(name).trainer()
    with pytest.raises(InputError, match="unknown method 'ip2p'; known: label"):
        method("ip2p")


def test_recipes_are_the_ones_the_trainers_use():
    cfg = config.preset("tiny")
    t2i = method("t2i").recipe(cfg)
    assert (t2i.objective, t2i.scheduler, t2i.steps, t2i.conditioning) == ("ddpm", "ddim", cfg.ldm.t2i_steps, "t2i")
    assert method("lego").recipe(cfg) is cfg.ldm and cfg.ldm.objective == "flow"  # unchanged


def test_eval_finds_the_method_of_a_model_and_a_baseline(tmp_path):
    assert REFERENCES == ("input", "target")
    assert for_model("input").generator("input") is None
    assert for_model(tmp_path, "proxnpi").display == "ProxNPI" and for_model(tmp_path, "sdedit").kind == "baseline"
    assert for_model(tmp_path).kind == "lego"
    with pytest.raises(InputError, match="through a baseline"):
        method("t2i").generator(tmp_path)


def test_the_train_command_offers_what_the_registry_trains():
    import argparse

    from egolego.cli.ldm import train_parser

    p = argparse.ArgumentParser()
    train_parser(p.add_subparsers())
    action = next(a for a in p._subparsers._group_actions[0].choices["train"]._actions if a.dest == "conditioning")
    assert tuple(action.choices) == TRAINED
