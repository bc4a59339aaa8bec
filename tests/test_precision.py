"""Mixed precision: ``auto`` follows the device, and stages with different precisions share one process."""

import pytest
import torch

from egolego import precision


def test_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve("auto") == "bf16"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve("auto") == "no"
    assert precision.resolve("fp16") == "fp16" and precision.resolve("no") == "no"
    with pytest.raises(ValueError, match="auto"):
        precision.resolve("bf15")


def test_stages_with_other_precisions_in_one_process():
    """The demo tunes the VLLM in fp32 and then trains the LDM in bf16: accelerate alone refuses that."""
    a = precision.accelerator("no", 1)
    assert a.mixed_precision == "no"
    b = precision.accelerator("bf16", 1)
    assert b.mixed_precision == "bf16"
    with b.autocast():
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16
    assert precision.accelerator("no", 1).mixed_precision == "no"
