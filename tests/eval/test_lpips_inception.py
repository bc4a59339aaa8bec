"""LPIPS (SqueezeNet) and the FID Inception with random weights saved in the official files' layouts."""

import numpy as np
import pytest
import torch

from egolego.eval.inception import FidInception
from egolego.eval.lpips import CHANNELS, LPIPS, SqueezeFeatures


def _lpips_files(tmp_path):
    """Random weights written under the official key names (torchvision SqueezeNet 1.1, LPIPS v0.1 lin)."""
    torch.manual_seed(0)
    net = SqueezeFeatures()
    sq = {k: torch.randn_like(v) * 0.2 for k, v in net.state_dict().items()}
    sq["classifier.1.weight"], sq["classifier.1.bias"] = torch.randn(1000, 512, 1, 1), torch.randn(1000)
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(CHANNELS)}
    torch.save(sq, tmp_path / "sq.pth")
    torch.save(lin, tmp_path / "lin.pth")
    return tmp_path / "sq.pth", tmp_path / "lin.pth", lin


def test_lpips_distance_by_hand(tmp_path):
    sq, lin_file, lin = _lpips_files(tmp_path)
    m = LPIPS.from_files(sq, lin_file)
    g = torch.Generator().manual_seed(1)
    f0 = [torch.randn(2, c, 3, 2, generator=g) for c in CHANNELS]
    f1 = [torch.randn(2, c, 3, 2, generator=g) for c in CHANNELS]
    # by hand, element by element: sum_l mean_hw sum_c w_lc (f0/|f0| - f1/|f1|)^2
    expected = np.zeros(2)
    for layer, (a, b) in enumerate(zip(f0, f1)):
        w = lin[f"lin{layer}.model.1.weight"].flatten().numpy()
        a, b = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
        for n in range(2):
            acc = 0.0
            for y in range(3):
                for x in range(2):
                    na, nb = a[n, :, y, x], b[n, :, y, x]
                    d = na / (np.sqrt((na ** 2).sum()) + 1e-10) - nb / (np.sqrt((nb ** 2).sum()) + 1e-10)
                    acc += (w * d ** 2).sum()
            expected[n] += acc / 6
    got = m.distance_from_features(f0, f1).numpy()
    assert got == pytest.approx(expected, rel=1e-5)


def test_lpips_properties(tmp_path):
    m = LPIPS.from_files(*_lpips_files(tmp_path)[:2])
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    feats = m.net((a * 2 - 1 - m.shift) / m.scale)
    assert [f.shape[1] for f in feats] == list(CHANNELS)
    assert [f.shape[-1] for f in feats] == [31, 15, 7, 3, 3, 3, 3]
    assert torch.allclose(m.from_unit(a, a), torch.zeros(2), atol=1e-6)
    d = m.from_unit(a, b)
    assert (d > 0).all() and torch.allclose(d, m.from_unit(b, a), rtol=1e-5)
    assert torch.allclose(d, m(a * 2 - 1, b * 2 - 1))  # from_unit = LPIPS on [-1, 1]
    assert not torch.allclose(d, m(a, b), rtol=1e-3)  # feeding [0, 1] (the official code) is not the same
    lw = torch.load(tmp_path / "lin.pth")
    lw.pop("lin3.model.1.weight")
    torch.save(lw, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        LPIPS.from_files(tmp_path / "sq.pth", tmp_path / "bad.pth")


def test_fid_inception_layout_and_features(tmp_path):
    m = FidInception()
    sd = m.state_dict()
    # the names and shapes of torchvision's inception_v3 (what pt_inception-2015-12-05 holds)
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["Mixed_5b.branch_pool.conv.weight"].shape == (32, 192, 1, 1)
    assert sd["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert sd["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert sd["fc.weight"].shape == (1008, 2048)
    assert not any("AuxLogits" in k for k in sd)
    torch.manual_seed(0)
    for v in sd.values():
        if v.is_floating_point():
            v.copy_(torch.randn_like(v) * 0.05 if v.ndim > 1 else torch.rand_like(v) + 0.5)
    torch.save({k: v for k, v in sd.items() if "num_batches_tracked" not in k}, tmp_path / "inc.pth")
    m2 = FidInception.from_file(tmp_path / "inc.pth")  # strict: every tensor has its place
    x = torch.rand(2, 3, 64, 64)
    f = m2(x)
    assert f.shape == (2, 2048) and (f >= 0).all()
    assert torch.allclose(f, m2(torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear")), atol=1e-4)


def _inception_by_hand(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """FID's Inception-v3 from the state dict alone, as the TF graph defines it: BN folded into each conv (eps 1e-3),
    "valid" padding on the stem's 1a/2a/4a and every stride-2 conv, "same" elsewhere; average pools that divide by
    the valid positions only (computed as a sum over a count), max pools in B, D and the last E block."""
    import torch.nn.functional as F

    def conv(name, t, stride=1):
        w = sd[f"{name}.conv.weight"]
        scale = sd[f"{name}.bn.weight"] / torch.sqrt(sd[f"{name}.bn.running_var"] + 1e-3)
        valid = stride == 2 or name.split(".")[-1] in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_4a_3x3")
        pad = (0, 0) if valid else (w.shape[2] // 2, w.shape[3] // 2)
        bias = sd[f"{name}.bn.bias"] - sd[f"{name}.bn.running_mean"] * scale
        return torch.relu(F.conv2d(t, w * scale[:, None, None, None], bias, stride, pad))

    def chain(t, block, names, last_stride=1):
        for i, n in enumerate(names):
            t = conv(f"{block}.{n}", t, last_stride if i == len(names) - 1 else 1)
        return t

    def avg_valid(t):
        ones = torch.ones_like(t[:, :1])
        return F.conv2d(t, torch.ones(t.shape[1], 1, 3, 3, dtype=t.dtype), padding=1, groups=t.shape[1]) / \
            F.conv2d(ones, torch.ones(1, 1, 3, 3, dtype=t.dtype), padding=1)

    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    x = conv("Conv2d_2b_3x3", conv("Conv2d_2a_3x3", conv("Conv2d_1a_3x3", x, 2)))
    x = F.max_pool2d(x, 3, 2)
    x = F.max_pool2d(conv("Conv2d_4a_3x3", conv("Conv2d_3b_1x1", x)), 3, 2)
    for b in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        x = torch.cat([chain(x, b, ["branch1x1"]), chain(x, b, ["branch5x5_1", "branch5x5_2"]),
                       chain(x, b, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]),
                       conv(f"{b}.branch_pool", avg_valid(x))], 1)
    x = torch.cat([conv("Mixed_6a.branch3x3", x, 2),
                   chain(x, "Mixed_6a", ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], 2),
                   F.max_pool2d(x, 3, 2)], 1)
    for b in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        x = torch.cat([chain(x, b, ["branch1x1"]), chain(x, b, [f"branch7x7_{i}" for i in (1, 2, 3)]),
                       chain(x, b, [f"branch7x7dbl_{i}" for i in range(1, 6)]),
                       conv(f"{b}.branch_pool", avg_valid(x))], 1)
    x = torch.cat([chain(x, "Mixed_7a", ["branch3x3_1", "branch3x3_2"], 2),
                   chain(x, "Mixed_7a", [f"branch7x7x3_{i}" for i in range(1, 5)], 2), F.max_pool2d(x, 3, 2)], 1)
    for b, pool in (("Mixed_7b", avg_valid), ("Mixed_7c", lambda t: F.max_pool2d(t, 3, 1, 1))):
        b3, d = conv(f"{b}.branch3x3_1", x), chain(x, b, ["branch3x3dbl_1", "branch3x3dbl_2"])
        x = torch.cat([conv(f"{b}.branch1x1", x), conv(f"{b}.branch3x3_2a", b3), conv(f"{b}.branch3x3_2b", b3),
                       conv(f"{b}.branch3x3dbl_3a", d), conv(f"{b}.branch3x3dbl_3b", d),
                       conv(f"{b}.branch_pool", pool(x))], 1)
    return x.mean(dim=(2, 3))  # (B, 2048)


def test_fid_inception_equals_the_graph_computed_by_hand():
    m = FidInception()
    torch.manual_seed(3)
    sd = m.state_dict()
    for v in sd.values():
        if v.is_floating_point():  # weights scaled by fan-in so the activations neither vanish nor explode
            fan = v[0].numel() if v.ndim > 1 else 1
            v.copy_(torch.randn_like(v) * (2.0 / fan) ** 0.5 if v.ndim > 1 else torch.rand_like(v) * 0.5 + 0.75)
    x = torch.rand(2, 3, 64, 80)
    got, want = m(x), _inception_by_hand({k: v.double() for k, v in sd.items()}, x.double()).float()
    assert want.abs().mean() > 1e-3  # the features carry signal
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)
