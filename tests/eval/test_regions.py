"""The region metrics and the blob score (``eval.regions``) on hand-made frames, against direct computations."""

import math

import numpy as np
import pytest
import torch

from egolego.eval.pixels import ssim
from egolego.eval.regions import action_boxes, blob_share, masked_psnr, masked_ssim, region_mask, region_scores


def blur(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 box blur: the soft edges that rendering, resizing and JPEG give real frames."""
    kernel = torch.ones(3, 1, 3, 3) / 9
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)


def scene(h=64, w=64) -> torch.Tensor:
    """(1, 3, H, W): a flat wall, a counter and two flat objects, like an EgoSynth frame before its edges soften."""
    x = torch.zeros(1, 3, h, w)
    x[:, :, : h // 2] = torch.tensor([0.55, 0.75, 0.55])[:, None, None]
    x[:, :, h // 2:] = torch.tensor([0.60, 0.45, 0.40])[:, None, None]
    x[:, :, 20:30, 10:18] = torch.tensor([0.9, 0.8, 0.1])[:, None, None]
    x[:, :, 36:44, 40:52] = torch.tensor([0.1, 0.2, 0.8])[:, None, None]
    return x


def test_region_mask_covers_the_boxes_and_the_margin():
    m = region_mask([[0.25, 0.25, 0.5, 0.5]], 8, 8, margin=0.0)
    assert m.sum() == 4 and m[2:4, 2:4].all()
    grown = region_mask([[0.25, 0.25, 0.5, 0.5], [0.9, 0.9, 1.2, 1.0]], 8, 8, margin=0.125)
    assert grown[1:5, 1:5].all() and grown.sum() == 16 + 4  # one pixel each way; the second box clipped to the frame
    assert not region_mask([], 8, 8).any()


def test_outside_the_action_a_copy_is_perfect_and_inside_it_is_not():
    target = scene()
    fake = target.clone()
    fake[:, :, 20:30, 10:18] = torch.rand(1, 3, 10, 8, generator=torch.Generator().manual_seed(0))  # the action's part
    inside = region_mask([[10 / 64, 20 / 64, 18 / 64, 30 / 64]], 64, 64, margin=0.0)[None]
    r = region_scores(fake, target, inside)
    assert r["psnr_out"].item() == 100.0 and r["ssim_out"].item() == pytest.approx(1.0)
    mse = float(((fake - target)[:, :, 20:30, 10:18] ** 2).mean())
    assert r["psnr_in"].item() == pytest.approx(10 * math.log10(1 / mse), rel=1e-4)
    assert r["ssim_in"].item() < 0.5
    everywhere = torch.ones(1, 64, 64, dtype=torch.bool)
    assert masked_ssim(fake, target, everywhere).item() == pytest.approx(ssim(fake, target).item(), abs=1e-6)
    assert math.isnan(masked_psnr(fake, target, ~everywhere).item())  # an empty region has no score


def test_a_painted_blob_is_caught_and_a_blurred_copy_is_not():
    inp, target = scene(), scene()
    target[:, :, 36:44, 40:52] = torch.tensor([0.3, 0.3, 0.3])[:, None, None]  # the action changed an object
    inp, target = blur(inp), blur(target)
    fake = target.clone()
    fake[:, :, 5:15, 30:40] = torch.tensor([1.0, 0.0, 1.0])[:, None, None]  # a magenta blob on the wall
    share = blob_share(torch.cat([fake, target, inp]), torch.cat([inp] * 3), torch.cat([target] * 3))
    assert share[0].item() == pytest.approx(100 / 4096) and share[1].item() == 0 and share[2].item() == 0
    assert blob_share(blur(target), inp, target).item() < 0.01  # a smeared copy stays near the scene's colours
    wall = target.clone()
    wall[:, :, 40:50, 5:15] = torch.tensor([0.55, 0.75, 0.55])[:, None, None]  # wall colour in the wrong place:
    assert blob_share(wall, inp, target).item() == 0  # not a blob (PSNR outside the boxes sees it, not this score)


def test_blob_share_against_a_brute_force_palette():
    g = torch.Generator().manual_seed(1)
    inp, target, fake = (torch.rand(1, 3, 16, 16, generator=g) for _ in range(3))
    q = lambda x: ((x[0].permute(1, 2, 0).reshape(-1, 3) * 255).round().numpy().astype(int) // 4) * 4 + 1.5  # noqa: E731
    pal = np.concatenate([q(inp), q(target)])
    d = np.sqrt(((q(fake)[:, None] - pal[None]) ** 2).sum(-1)).min(1)
    assert blob_share(fake, inp, target).item() == pytest.approx(float((d > 24).mean()))


def test_action_boxes_take_the_acting_hand_and_objects_from_the_truth():
    boxes = {"input": {"0:cup": [0.1, 0.1, 0.2, 0.2], "1:cup": [0.5, 0.1, 0.6, 0.2], "2:spoon": [0.3, 0.3, 0.4, 0.4],
                       "left hand": [0.2, 0.8, 0.3, 1.0], "right hand": [0.7, 0.8, 0.8, 1.0]},
             "target": {"1:cup": [0.5, 0.0, 0.6, 0.1], "right hand": [0.5, 0.1, 0.6, 0.3]}}
    truth = {"action": {"hand": "right", "target": 1, "second": None},
             "scene": {"objects": [{"kind": "cup"}, {"kind": "cup"}, {"kind": "spoon"}]}, "boxes": boxes}
    assert action_boxes({}, truth) == [[0.5, 0.1, 0.6, 0.2], [0.7, 0.8, 0.8, 1.0], [0.5, 0.0, 0.6, 0.1],
                                       [0.5, 0.1, 0.6, 0.3]]
    assert len(action_boxes(boxes)) == 7  # without truth: every box of the manifest row
    assert action_boxes({"input": {}}) == []


def test_ssim_outside_counts_only_windows_clear_of_the_region():
    target = scene()
    fake = target.clone()
    fake[:, :, 30:34, 30:34] = 0.0
    inside = torch.zeros(1, 64, 64, dtype=torch.bool)
    inside[:, 30:34, 30:34] = True
    clear = masked_ssim(fake, target, ~inside, whole_window=True)
    centred = masked_ssim(fake, target, ~inside)
    assert clear.item() == pytest.approx(1.0) and centred.item() < 1 - 1e-4  # windows near the box see its pixels
