"""PSNR/SSIM against known values and torchmetrics; Fréchet distance and KID against closed forms."""

import math

import numpy as np
import pytest
import torch

from egolego.eval.fid import fid, frechet_distance, kid
from egolego.eval.pixels import psnr, ssim
from egolego.eval.stats import bootstrap_ci, equal_count_bins


def test_psnr_known_values():
    a = torch.full((2, 3, 16, 16), 0.5)
    b = a.clone()
    b[0] += 0.1  # MSE 0.01 -> 20 dB
    b[1] += 0.01  # MSE 1e-4 -> 40 dB
    assert psnr(a, b).tolist() == pytest.approx([20.0, 40.0], abs=1e-4)
    assert psnr(a, a).tolist() == pytest.approx([100.0, 100.0])  # identical: capped, not inf


def test_ssim_identity_and_torchmetrics():
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 32, 40, generator=g)
    b = (a + 0.15 * torch.randn(3, 3, 32, 40, generator=g)).clamp(0, 1)
    assert ssim(a, a).tolist() == pytest.approx([1.0] * 3, abs=1e-6)
    ours = ssim(a, b)
    # torchmetrics' SSIM map, cropped to the valid positions (it averages the padded border too)
    full = tm_ssim(a.double(), b.double(), data_range=1.0, reduction="none", return_full_image=True)[1]
    ref = full[..., 5:-5, 5:-5].flatten(1).mean(1)
    assert torch.allclose(ours, ref.float(), atol=1e-5)
    assert (ours < 0.9).all()
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_frechet_distance_closed_form_for_gaussians():
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # a rotated (non-diagonal) pair: FD is invariant to rotating both Gaussians
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    assert frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T) == pytest.approx(expected, rel=1e-8)


def test_fid_and_kid_match_torchmetrics_with_any_features():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    class Identity(torch.nn.Module):  # the "images" are the features themselves
        num_features = 8

        def forward(self, x):
            return x.flatten(1)

    g = torch.Generator().manual_seed(1)
    a = torch.randn(40, 8, 1, 1, generator=g).double()
    b = (torch.randn(40, 8, 1, 1, generator=g) * 1.3 + 0.2).double()
    tm_fid = FrechetInceptionDistance(feature=Identity(), normalize=False)
    tm_fid.update(a, real=True)
    tm_fid.update(b, real=False)
    assert fid(a.flatten(1).numpy(), b.flatten(1).numpy()) == pytest.approx(float(tm_fid.compute()), rel=1e-8)
    # one subset of the whole sets: any permutation gives the same unbiased MMD^2
    tm_kid = KernelInceptionDistance(feature=Identity(), subsets=2, subset_size=40, normalize=False)
    tm_kid.update(a, real=True)
    tm_kid.update(b, real=False)
    assert kid(a.flatten(1).numpy(), b.flatten(1).numpy(), subsets=2, subset_size=40)[0] == pytest.approx(
        float(tm_kid.compute()[0]), rel=1e-8)


def test_fid_separates_distributions():
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(500, 4)), rng.normal(size=(500, 4)), rng.normal(1.0, 1.0, size=(500, 4))
    assert fid(x, y) < 0.2 < 3.5 < fid(x, z)  # FD(N(0,I), N(1,I)) = 4
    assert abs(kid(x, y, subsets=20, subset_size=200)[0]) < kid(x, z, subsets=20, subset_size=200)[0]


def test_bootstrap_and_bins():
    v = np.r_[np.arange(100, dtype=float), np.nan]
    ci = bootstrap_ci(v, n_boot=2000)
    assert ci["n"] == 100 and ci["mean"] == pytest.approx(49.5)
    assert ci["lo"] < 49.5 < ci["hi"] and ci["hi"] - ci["lo"] == pytest.approx(2 * 1.96 * 29.0 / 10, rel=0.15)
    assert math.isnan(bootstrap_ci([math.nan])["mean"])
    idx, edges = equal_count_bins(np.random.default_rng(0).exponential(size=101), 4)
    assert len(edges) == 5 and max(np.bincount(idx)) - min(np.bincount(idx)) <= 1
