"""One tiny official-layout release per session: a CLIP folder, the modules, their checkpoint, its import."""

from pathlib import Path

import pytest

from .official_files import SIZE, clip_folder, official_parts, official_state_dict, write_ckpt


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> dict:
    """{"dir", "clip", "parts", "sd", "ckpt"}: the modules and the checkpoint written from them."""
    d = tmp_path_factory.mktemp("lego_release")
    clip = clip_folder(d / "clip")
    parts = official_parts(clip)
    sd = official_state_dict(parts)
    return {"dir": d, "clip": clip, "parts": parts, "sd": sd, "ckpt": write_ckpt(d / "lego.ckpt", sd)}


@pytest.fixture(scope="session")
def imported(release) -> Path:
    """The checkpoint imported through the command line."""
    from egolego.cli import main

    out = release["dir"] / "model"
    assert main(["import", "lego", "--ldm", str(release["ckpt"]), "--out", str(out), "--clip-text",
                 str(release["clip"]), "--size", str(SIZE)]) == 0
    return out
