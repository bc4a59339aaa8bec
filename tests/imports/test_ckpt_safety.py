"""A ``.ckpt`` is a pickle from the internet: one that carries code is refused and runs nothing; the one class
name a real Lightning 1.4 checkpoint holds loads as an inert stand-in."""

import os
import sys
import types

import pytest
import torch

from egolego.cli import main
from egolego.errors import InputError
from egolego.imports.lightning_ckpt import LightningName, load_lightning

from .official_files import SIZE, write_ckpt


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_a_checkpoint_carrying_code_runs_nothing(release, tmp_path, capsys, zipfile):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.ckpt"
    torch.save({"state_dict": dict(release["sd"]), "payload": _Exploit(marker)}, f,
               _use_new_zipfile_serialization=zipfile)
    rc = main(["import", "lego", "--ldm", str(f), "--out", str(tmp_path / "m"), "--clip-text", str(release["clip"]),
               "--size", str(SIZE)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "--ldm: " in err and "evil.ckpt: refused by torch's safe loader" in err and "GLOBAL" in err
    assert not marker.exists() and not (tmp_path / "m").exists()


def test_calling_the_allowed_lightning_name_builds_only_the_stand_in(tmp_path, monkeypatch):
    """A crafted file that "calls" ModelCheckpoint (REDUCE) with a command gets an inert LightningName."""
    marker = tmp_path / "pwned"
    mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")

    class ModelCheckpoint:  # at save time only; what the loader resolves the name to is ours
        __module__ = mod.__name__

        def __init__(self, cmd):
            os.system(cmd)

        def __reduce__(self):
            return ModelCheckpoint, (f"touch {marker}",)

    ModelCheckpoint.__qualname__ = "ModelCheckpoint"  # pickle records module + qualified name only
    mod.ModelCheckpoint = ModelCheckpoint
    for name in ("pytorch_lightning", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    inst = object.__new__(ModelCheckpoint)
    torch.save({"state_dict": {"x": torch.zeros(1)}, "callbacks": {ModelCheckpoint: {"dirpath": "/x"}}, "cb": inst},
               tmp_path / "c.ckpt")
    monkeypatch.delitem(sys.modules, mod.__name__)
    obj = load_lightning(tmp_path / "c.ckpt")
    assert isinstance(obj["cb"], LightningName) and list(obj["callbacks"]) == [LightningName]
    assert not marker.exists()


def test_the_release_bookkeeping_loads(release):
    obj = load_lightning(release["ckpt"])
    assert obj["global_step"] == 9999 and list(obj["callbacks"]) == [LightningName]


def test_not_a_checkpoint_is_one_error(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="junk.ckpt: refused by torch's safe loader"):
        load_lightning(tmp_path / "junk.ckpt")
    torch.save([torch.zeros(1)], tmp_path / "list.ckpt")
    with pytest.raises(InputError, match="not a Lightning checkpoint"):
        load_lightning(tmp_path / "list.ckpt")


def test_a_non_tensor_entry_is_named(release, tmp_path, capsys):
    sd = dict(release["sd"])
    sd["projection_img.weight"] = [1.0, 2.0]
    f = write_ckpt(tmp_path / "odd.ckpt", sd)
    rc = main(["import", "lego", "--ldm", str(f), "--out", str(tmp_path / "m"), "--clip-text", str(release["clip"]),
               "--size", str(SIZE)])
    err = capsys.readouterr().err
    assert rc == 2 and "state_dict entry 'projection_img.weight' is a list, not a tensor" in err
