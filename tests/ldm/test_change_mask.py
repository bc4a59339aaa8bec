"""The learnt change mask: its target, its composite, that it learns to tell an action from paint, and that a model
folder carries it (``train-mask``, saved sampling, ``--no-change-mask``)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from egolego.cli import main
from egolego.data.manifest import read_manifest, resolve
from egolego.ldm.change_mask import ChangeMaskNet, composite, fit_change_mask, true_change
from egolego.ldm.generate import FrameGenerator
from egolego.ldm.pipeline import LegoPipeline

from .conftest import make_components


def test_true_change_thresholds_and_dilates():
    image = torch.zeros(1, 3, 8, 8)
    target = image.clone()
    target[0, 1, 3, 4] = 0.5  # a change of 0.25 in [0, 1] units, on one channel
    target[0, 0, 6, 6] = 0.1  # 0.05: below the threshold
    m = true_change(image, target, threshold=0.1, dilate=0)
    assert m.shape == (1, 1, 8, 8) and m.sum() == 1 and m[0, 0, 3, 4] == 1
    grown = true_change(image, target, threshold=0.1, dilate=1)
    assert grown.sum() == 9 and grown[0, 0, 2:5, 3:6].sum() == 9


def test_composite_keeps_the_input_where_the_mask_is_zero():
    image, frame = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1.0
    mask[..., 2, :] = 0.25
    out = composite(frame, image, mask)
    assert torch.equal(out[..., :2, :], frame[..., :2, :]) and torch.equal(out[..., 3:, :], image[..., 3:, :])
    assert torch.allclose(out[..., 2, :], torch.full((1, 3, 4), 0.25))


def _scenes(n, seed=0):
    """Flat backgrounds; the true frame adds a bar from the bottom edge (an "arm"); the generated frame draws that
    bar and, elsewhere, a saturated square of paint that no true frame has."""
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 3, 1, 1, generator=g) * 0.6 - 0.3).expand(n, 3, 32, 32).clone()
    targets, frames = images.clone(), images.clone()
    for i in range(n):
        x = int(torch.randint(4, 26, (), generator=g))
        targets[i, :, 12:, x:x + 4] = torch.tensor([0.8, 0.4, 0.2]).view(3, 1, 1)
        frames[i] = targets[i]
        y, bx = int(torch.randint(0, 8, (), generator=g)), (x + 14) % 24
        frames[i, :, y:y + 6, bx:bx + 6] = torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1)
    return images, frames, targets


def test_fit_learns_to_keep_the_arm_and_drop_the_paint():
    images, frames, targets = _scenes(48)
    net, q = fit_change_mask(images, frames, targets, steps=120, batch_size=16, lr=3e-3, width=8, holdout=0.25)
    assert q["heldout_pairs"] == 12 and q["iou"] > 0.6 and q["recall"] > 0.8, q
    x, y, t = _scenes(8, seed=1)
    out = composite(y, x, net.mask(x, y))
    arm = true_change(x, t, 0.1, 0).bool().expand_as(out)
    paint = ((y - t).abs().amax(1, keepdim=True) > 0).expand_as(out)
    err_paint_raw = float((y - x)[paint].abs().mean())
    err_paint = float((out - x)[paint].abs().mean())
    assert err_paint < 0.25 * err_paint_raw  # the paint is mostly gone ...
    assert float((out - t)[arm].abs().mean()) < 0.2  # ... the arm is still drawn


def test_fit_refuses_mismatched_triplets():
    with pytest.raises(ValueError, match="as many"):
        fit_change_mask(torch.zeros(4, 3, 8, 8), torch.zeros(3, 3, 8, 8), torch.zeros(4, 3, 8, 8))


@torch.no_grad()
def test_pipeline_composites_by_its_change_mask(tokenizer, tmp_path):
    """Sampling with the component equals the frame without it composited here by the net's own mask; a pipeline
    without one refuses ``change_mask=True``; the component survives save / load."""
    comps = make_components(tokenizer, mode="label")
    pipe = LegoPipeline(**comps)
    pipe.set_progress_bar_config(disable=True)
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    kw = {"num_inference_steps": 2, "output_type": "pt", "keep_input": 0.0}
    with pytest.raises(ValueError, match="no learnt change mask"):
        pipe(im, "open drawer", change_mask=True, **kw)
    torch.manual_seed(0)
    pipe.register_modules(change_mask=ChangeMaskNet(width=8).eval())
    raw = pipe(im, "open drawer", generator=torch.Generator().manual_seed(1), change_mask=False, **kw).images
    masked = pipe(im, "open drawer", generator=torch.Generator().manual_seed(1), change_mask=True, **kw).images
    x = pipe.image_processor.preprocess(im)  # (1, 3, 64, 64) in [-1, 1]
    y = raw * 2 - 1
    want = (composite(y, x, pipe.change_mask.mask(x, y)) + 1) / 2
    torch.testing.assert_close(masked, want.clamp(0, 1), atol=2e-6, rtol=0)
    assert not torch.allclose(masked, raw)
    pipe.save_pretrained(str(tmp_path / "m"))
    back = LegoPipeline.from_pretrained(str(tmp_path / "m"))
    assert isinstance(back.change_mask, ChangeMaskNet)
    torch.testing.assert_close(back.change_mask.out.weight, pipe.change_mask.out.weight)


def test_train_mask_adds_the_component_and_generate_uses_it(pairs8, tmp_path):
    """``egolego train`` then ``egolego train-mask``: the folder gains the component and its report, saved sampling
    turns it on, and ``--no-change-mask`` gives back the raw frame; a second run resumes from the cached frames."""
    run = tmp_path / "run"
    assert main(["train", "--pairs", str(pairs8), "--conditioning", "label", "--out", str(run), "--max-steps", "2",
                 "--batch-size", "4"]) == 0
    model = run / "model"
    assert main(["train-mask", "--model", str(model), "--pairs", str(pairs8), "--steps", "3"]) == 0
    index = json.loads((model / "model_index.json").read_text())
    assert index["change_mask"] == ["egolego.ldm.change_mask", "ChangeMaskNet"] and index["sampling"]["change_mask"]
    report = json.loads((model / "change_mask.json").read_text())
    n_train = sum(r["split"] == "train" for r in read_manifest(pairs8))
    assert report["train_pairs"] + report["heldout_pairs"] == n_train and 0 <= report["iou"] <= 1
    frames = sorted((run / "model.change_mask_frames").glob("*.png"))
    assert len(frames) == n_train
    stamp = [f.stat().st_mtime_ns for f in frames]
    assert main(["train-mask", "--model", str(model), "--pairs", str(pairs8), "--steps", "2"]) == 0
    assert [f.stat().st_mtime_ns for f in frames] == stamp  # the second run reuses the cached frames
    assert json.loads((model / "change_mask.json").read_text())["steps"] == 2

    row = read_manifest(pairs8)[0]
    src = Image.open(resolve(pairs8, row["input_path"])).convert("RGB")
    assert FrameGenerator(model).sampling.change_mask  # the saved sampling turns it on
    on = FrameGenerator(model, keep_input=0.0)  # (the tiny preset's keep_input composites after the mask)
    assert on.pipe.change_mask is not None
    off = FrameGenerator(model, keep_input=0.0, change_mask=False)
    a, _ = on(src, row["label"], row["description"], seed=3)
    b, _ = off(src, row["label"], row["description"], seed=3)
    x = on.pipe.image_processor.preprocess(src)
    y = off.pipe.image_processor.preprocess(b)
    want = composite(y, x, on.pipe.change_mask.mask(x, y))
    got = on.pipe.image_processor.preprocess(a)
    assert float((got - want).abs().max()) <= 2 / 255 + 1e-6  # one 8-bit rounding on each side


def test_train_learns_the_mask_itself_when_the_config_asks(pairs8, tmp_path):
    """``ldm.change_mask: true``: ``egolego train`` ends with the mask in the folder, turned on."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: tiny\nldm: {change_mask: true, change_mask_steps: 2, change_mask_width: 8}\n")
    assert main(["train", "--pairs", str(pairs8), "--conditioning", "label", "--out", str(tmp_path / "run"),
                 "--max-steps", "2", "--batch-size", "4", "--config", str(cfg)]) == 0
    model = tmp_path / "run" / "model"
    assert json.loads((model / "model_index.json").read_text())["sampling"]["change_mask"]
    assert FrameGenerator(model).pipe.change_mask.config.width == 8
