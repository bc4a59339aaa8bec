"""Every loader of a downloadable .pth refuses a crafted pickle with one ValueError and runs none of its code."""

import os

import pytest
import torch

from egolego.eval.inception import FidInception
from egolego.eval.lpips import LPIPS


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _evil(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(1), "payload": _Exploit(marker)}, f)
    return f, marker


def test_lpips_refuses_crafted_files(tmp_path):
    f, marker = _evil(tmp_path)
    with pytest.raises(ValueError, match="evil.pth"):
        LPIPS.from_files(f, f)
    assert not marker.exists()


def test_inception_refuses_crafted_file(tmp_path):
    f, marker = _evil(tmp_path)
    with pytest.raises(ValueError, match="evil.pth"):
        FidInception.from_file(f)
    assert not marker.exists()


def test_wrong_but_harmless_file_is_one_error(tmp_path):
    f = tmp_path / "other.pth"
    torch.save({"something": torch.zeros(2)}, f)
    with pytest.raises(ValueError, match="other.pth"):
        LPIPS.from_files(f, f)
    with pytest.raises(ValueError, match="other.pth"):
        FidInception.from_file(f)
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="junk.pth"):
        FidInception.from_file(tmp_path / "junk.pth")
