"""The progress input, clip files and the timeline's arithmetic (issue 27), without a trained model: each test here
builds what it needs in a second (the trained models' tests are in test_progress.py)."""

import math

import av
import pytest
import torch
from PIL import Image

from egolego import config
from egolego.eval.timeline import background_change, interpolate
from egolego.ldm.clip_file import strip, write_clip
from egolego.ldm.components import add_progress_embedding, progress_labels, tiny_unet


def _unet_inputs(unet, b=2):
    g = torch.Generator().manual_seed(0)
    c = unet.config
    x = torch.randn(b, c.in_channels, c.sample_size, c.sample_size, generator=g)
    ctx = torch.randn(b, 5, c.cross_attention_dim, generator=g)
    return x, torch.tensor([500, 20]), ctx


def test_the_progress_input_starts_silent_and_then_carries_progress():
    torch.manual_seed(0)
    unet = tiny_unet().eval()
    x, t, ctx = _unet_inputs(unet)
    before = unet(x, t, encoder_hidden_states=ctx).sample
    with_p = add_progress_embedding(unet).eval()
    assert with_p.config.class_embed_type == "timestep"
    for p in (0.0, 0.3, 1.0):
        out = with_p(x, t, encoder_hidden_states=ctx, class_labels=progress_labels(with_p, p, 2, "cpu")).sample
        assert torch.equal(out, before)  # a pre-trained UNet starts exactly as it was
    torch.nn.init.normal_(with_p.class_embedding.linear_2.weight, std=0.5)
    a = with_p(x, t, encoder_hidden_states=ctx, class_labels=progress_labels(with_p, 0.25, 2, "cpu")).sample
    b = with_p(x, t, encoder_hidden_states=ctx, class_labels=progress_labels(with_p, 1.0, 2, "cpu")).sample
    assert (a - b).abs().mean() > 1e-3  # once trained, the frame depends on p


def test_progress_is_refused_where_it_cannot_be_drawn():
    unet = tiny_unet()
    assert progress_labels(unet, None, 2, "cpu") is None and progress_labels(unet, 1.0, 2, "cpu") is None
    with pytest.raises(ValueError, match="single frames"):
        progress_labels(unet, [0.5, 1.0], 2, "cpu")
    with_p = add_progress_embedding(unet)
    assert progress_labels(with_p, None, 3, "cpu").tolist() == [1000.0] * 3  # default: the action done
    for bad in (1.5, -0.1, [0.5, 0.5, 0.5]):
        with pytest.raises(ValueError, match="progress must be"):
            progress_labels(with_p, bad, 2, "cpu")


def test_clip_files():
    frames = [Image.new("RGB", (15, 9), c) for c in ("red", "green", "blue")]
    assert strip(frames, gap=2).size == (3 * 15 + 2 * 2, 9)


def test_clip_file_formats(tmp_path):
    frames = [Image.new("RGB", (15, 9), c) for c in ("red", "green", "blue")]
    with Image.open(write_clip(frames, tmp_path / "c.gif")) as g:
        assert g.n_frames == 3
    assert Image.open(write_clip(frames, tmp_path / "c.png")).size == (49, 9)
    with av.open(str(write_clip(frames, tmp_path / "c.mp4", fps=4))) as box:
        got = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert len(got) == 3 and got[0].shape == (10, 16, 3)  # padded to even sides
    assert abs(int(got[0][4, 7, 0]) - 255) < 40 and int(got[2][4, 7, 2]) > 200  # red first, blue last
    with pytest.raises(ValueError, match="clip is written as"):
        write_clip(frames, tmp_path / "c.avi")
    assert not list(tmp_path.glob("*.part"))


def test_background_change_and_interpolation_on_hand_made_clips():
    base = Image.new("RGB", (32, 32), (90, 90, 90))
    moved = base.copy()
    moved.paste((250, 200, 40), (2, 2, 8, 8))  # the action: a patch that changes in the true clip
    true = [base, moved, moved]
    assert background_change(true, true) == (0.0, 0.0)
    blob = moved.copy()
    blob.paste((0, 255, 0), (20, 20, 30, 30))  # a colour blob on the still background
    g, t = background_change([base, blob, moved], true)
    assert g > 0.02 and t == 0.0
    assert interpolate(base, moved, 0.0).tobytes() == base.tobytes()
    assert interpolate(base, moved, 1.0).tobytes() == moved.tobytes()
    assert interpolate(base, moved, 0.5).getpixel((4, 4)) == (170, 145, 65)


def test_the_paper_preset_adds_progress_to_its_base_unet_without_changing_it(tmp_path):
    """SD-1.5 shapes at tiny width: ldm.progress adds the progress input and keeps every weight of the base."""
    from egolego.ldm.build import build_components
    from egolego.ldm.components import load_unet
    from egolego.paper_shapes import write_sd15
    from egolego.tokenizer import train_tokenizer

    tok = train_tokenizer(["take the red cup on the left"] * 10, None, vocab_size=200, model_max_length=77)
    base = write_sd15(tmp_path / "sd15", tok, tiny=True)
    cfg = config.preset("paper")
    cfg.ldm.base, cfg.ldm.progress, cfg.ldm.conditioning = str(base), True, "label"
    unet = build_components(cfg, 64, 4, 77)["unet"].eval()
    ref = load_unet(base).eval()
    assert unet.config.class_embed_type == "timestep" and ref.config.class_embed_type is None
    mine = unet.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in ref.state_dict().items())
    x, t, ctx = _unet_inputs(ref)
    labels = progress_labels(unet, [0.25, 0.75], 2, "cpu")
    assert torch.equal(unet(x, t, encoder_hidden_states=ctx, class_labels=labels).sample,
                       ref(x, t, encoder_hidden_states=ctx).sample)


def test_each_p_is_compared_with_the_end_action_by_action():
    """An action with two frames in one bin (best of 7 moved one across the edge), one with none at p = 1 and a frame
    not judged (NaN): the bin's differences are per action, over the actions judged at both."""
    from egolego.eval.timeline import against_the_end

    rows = [{"pair_id": "a@p0.45", "progress": 0.45}, {"pair_id": "a@p0.55", "progress": 0.55}, {"pair_id": "a"},
            {"pair_id": "b@p0.50", "progress": 0.5}, {"pair_id": "b@p0.25", "progress": 0.25}, {"pair_id": "b"},
            {"pair_id": "c@p0.50", "progress": 0.5}, {"pair_id": "d@p0.50", "progress": 0.5}, {"pair_id": "d"}]
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, math.nan]
    got = against_the_end([{**r, "progress": r.get("progress")} for r in rows], values, bins=4)
    assert got == {0.5: [0.5 - 1.0, 1.0 - 0.0], 0.25: [0.0 - 0.0]}
