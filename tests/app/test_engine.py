"""The app's loaded-once engine gives the frame `egolego generate` gives; uploads are decoded defensively."""

import numpy as np
import pytest
import torch
from PIL import Image

from egolego.app.engine import Engine
from egolego.app.images import BadImage, decode_upload
from egolego.ldm.generate import generate_one


@pytest.mark.parametrize("which", ["label_model", "lego_model"])
def test_engine_equals_generate_one(which, request, app_pairs, tmp_path):
    model = request.getfixturevalue(which)
    src = next(app_pairs.glob("**/*.jpg"))
    want, want_text = generate_one(model, src, "take cup", steps=3, seed=5, condition_guidance=3.0, image_guidance=1.2)
    eng = Engine(model)
    im = Image.open(src).convert("RGB")
    got, text = eng.generate(im, "take cup", None, steps=3, seed=5, condition_guidance=3.0, image_guidance=1.2)
    assert text == want_text and got.size == want.size == im.size
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    own, _ = generate_one(model, src, "take cup", seed=5)  # the model's own sampling settings on both sides
    np.testing.assert_array_equal(np.asarray(eng.generate(im, "take cup", None, seed=5)[0]), np.asarray(own))
    if which == "lego_model":
        assert eng.vllm is not None and want_text != "take cup"  # the VLLM's own description, as generate_one's
        edited, text = eng.generate(im, "take cup", "The person takes the red cup.", steps=3, seed=5)
        assert text == "The person takes the red cup." and not np.array_equal(np.asarray(edited), np.asarray(got))


def test_bad_uploads_give_messages(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    with pytest.raises(BadImage, match="not a readable"):
        decode_upload(tmp_path / "junk.png")
    Image.new("RGB", (5000, 4000)).save(tmp_path / "huge.png")
    with pytest.raises(BadImage, match="5000×4000"):
        decode_upload(tmp_path / "huge.png")
    Image.new("RGB", (16, 16)).save(tmp_path / "a.gif")
    with pytest.raises(BadImage, match="GIF images are not accepted"):
        decode_upload(tmp_path / "a.gif")
    (tmp_path / "big.jpg").write_bytes(b"\xff" * (9 * 1024 * 1024))
    with pytest.raises(BadImage, match="the limit is 8 MB"):
        decode_upload(tmp_path / "big.jpg")
    Image.new("RGB", (30, 20), "red").save(tmp_path / "ok.jpg")
    assert decode_upload(tmp_path / "ok.jpg").size == (30, 20)


def test_engine_describes_with_the_models_own_template_and_budget(lego_model, app_pairs, tmp_path):
    """A VLLM folder with settings unlike the module's defaults (as a `paper` model's 256-token budget is): the app's
    description and frame are `egolego generate`'s, because both read the folder's `vllm_config.yaml`."""
    import shutil

    from egolego import config
    from egolego.vllm.settings import save_settings

    model = tmp_path / "model"
    shutil.copytree(lego_model, model)
    v = config.preset("paper").vllm
    v.max_new_tokens, v.inference_template = 3, "What must the person do to {action} in this frame?"
    save_settings(v, model / "vllm")
    src = next(app_pairs.glob("**/*.jpg"))
    want, want_text = generate_one(model, src, "take cup", seed=5)
    eng = Engine(model)
    got, text = eng.generate(Image.open(src).convert("RGB"), "take cup", None, seed=5)
    assert text == want_text and len(eng.pipe.tokenizer(text).input_ids) <= 3 + 2  # the 3-token budget, + BOS/EOS
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    default = Engine(lego_model).describe(Image.open(src), "take cup")
    assert default != text  # the budget and template changed the description: the test can tell them apart


def test_the_app_refuses_a_vllm_other_than_the_recorded_one(lego_model, tmp_path):
    import json
    import shutil

    from egolego.errors import InputError
    from egolego.vllm.model import folder_fingerprint

    model = tmp_path / "model"
    shutil.copytree(lego_model, model)
    (model / "vllm.json").write_text(json.dumps({"vllm": str(model / "vllm"), "vllm_files": "0123456789abcdef"}))
    with pytest.raises(InputError, match="not the one that wrote"):
        Engine(model)
    (model / "vllm.json").write_text(json.dumps({"vllm": str(model / "vllm"),
                                                 "vllm_files": folder_fingerprint(model / "vllm")}))
    assert Engine(model).vllm is not None


def test_a_lego_clip_shares_the_vllm_embeddings_across_its_frames(lego_model, app_pairs, tmp_path):
    """``generate --frames`` on a `lego` model: the VLLM describes and embeds the frame once, every frame of the clip
    is conditioned on those embeddings, and the clip's last frame is `generate`'s frame; the app's strip agrees."""
    import shutil

    from egolego.ldm.components import add_progress_embedding
    from egolego.ldm.generate import generate_clip, load_pipeline

    model = tmp_path / "model"
    pipe = load_pipeline(lego_model)
    pipe.unet = add_progress_embedding(pipe.unet)
    torch.nn.init.normal_(pipe.unet.class_embedding.linear_2.weight, std=0.2)  # as if trained: p changes the frame
    pipe.save_pretrained(model)
    shutil.copytree(lego_model / "vllm", model / "vllm")
    src = next(app_pairs.glob("**/*.jpg"))
    frames, text = generate_clip(model, src, "take cup", 3, seed=5)
    one, one_text = generate_one(model, src, "take cup", seed=5)
    assert text == one_text and len(frames) == 3
    # the clip's last frame is the single frame, drawn in a batch of 3 instead of 1: equal up to the batch's rounding,
    # which with one torch thread (a `make test` worker) may move a pixel by one grey level
    assert np.abs(np.asarray(frames[-1], np.int16) - np.asarray(one, np.int16)).max() <= 1
    assert frames[0].tobytes() != frames[-1].tobytes()  # p = 1/3 is drawn differently from p = 1
    shown, _ = Engine(model).generate(Image.open(src).convert("RGB"), "take cup", None, seed=5, frames=3)
    w, h = one.size
    assert shown.crop((3 * (w + 2), 0, 4 * w + 6, h)).tobytes() == frames[-1].tobytes()  # the same batch of 3
