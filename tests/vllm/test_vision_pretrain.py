"""The tiny vision tower's pre-training: it learns, it writes a complete folder, LLaVA loads it, wrong folders fail."""

import json

import pytest
import torch
from transformers import CLIPVisionModel

from egolego.config import TinyLlavaShapes, VisionPretrainConfig
from egolego.synth.patch_labels import scene_patch_labels
from egolego.vllm.model import build_tiny_llava
from egolego.vllm.tiny_shapes import tiny_vision_config
from egolego.vllm.vision_pretrain import (
    CONFIG,
    REPORT,
    WEIGHTS,
    feature_index,
    load_vision_tower,
    only_read_layers,
    pretrain_vision_tower,
)


@pytest.fixture(scope="module")
def tower_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tower")
    pc = VisionPretrainConfig(scenes=384, epochs=4, batch_size=32, held_out=64)
    return out, pc, pretrain_vision_tower(pc, out, scene_patch_labels, progress=False)


def test_it_learns_and_reports(tower_dir):
    out, pc, r = tower_dir
    assert {p.name for p in out.iterdir()} == {WEIGHTS, CONFIG, REPORT}
    assert r["epoch_losses"][-1] < 0.7 * r["epoch_losses"][0]
    assert 0 < r["held_out"]["label_f1"] <= 1 and r["held_out"]["side_accuracy"] > 0.5  # chance is 1/3
    assert json.loads((out / REPORT).read_text())["held_out"] == r["held_out"]


def test_a_complete_folder_is_reused_and_other_settings_are_not(tower_dir, tmp_path):
    out, pc, r = tower_dir
    again = pretrain_vision_tower(pc, out, scene_patch_labels, progress=False)
    assert again.get("reused") and again["held_out"] == r["held_out"]


def test_truncated_layers_give_the_projectors_hidden_state():
    torch.manual_seed(0)
    tower = CLIPVisionModel(tiny_vision_config()).eval()
    px = torch.randn(2, 3, 64, 64)
    full = tower(pixel_values=px, output_hidden_states=True).hidden_states[-2]  # what LLaVA reads
    n = len(tower.encoder.layers)
    with only_read_layers(tower) as index:
        part = tower(pixel_values=px, output_hidden_states=True).hidden_states[index]
    assert index == feature_index(tower) and len(tower.encoder.layers) == n
    torch.testing.assert_close(part, full)


def test_llava_loads_the_tower(tower_dir, vtok):
    out, _, _ = tower_dir
    model, _ = build_tiny_llava(vtok[1], vision_tower=out)
    from safetensors.torch import load_file

    saved = load_file(str(out / WEIGHTS))
    for k, v in model.model.vision_tower.state_dict().items():
        torch.testing.assert_close(v, saved[k])
    fresh, _ = build_tiny_llava(vtok[1])
    assert not torch.equal(fresh.model.vision_tower.state_dict()["embeddings.patch_embedding.weight"],
                           saved["embeddings.patch_embedding.weight"])


def test_wrong_folders_are_one_clear_error(tower_dir, vtok, tmp_path):
    out, _, _ = tower_dir
    with pytest.raises(ValueError, match="no pre-trained vision tower"):
        load_vision_tower(CLIPVisionModel(tiny_vision_config()), tmp_path)
    other = CLIPVisionModel(tiny_vision_config(TinyLlavaShapes(patch_size=16)))
    with pytest.raises(ValueError, match="patch_size 8 vs 16"):
        load_vision_tower(other, out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / CONFIG).write_text((out / CONFIG).read_text())
    (bad / WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not loadable vision tower weights"):
        load_vision_tower(CLIPVisionModel(tiny_vision_config()), bad)


def test_the_tiny_llava_shapes_come_from_the_config(vtok, tmp_path):
    from egolego import config
    from egolego.vllm.model import image_tokens
    from egolego.vllm.tune import build_model

    vtok[1].save_pretrained(tmp_path / "tok")
    cfg = config.from_dict({"vllm": {"tokenizer": str(tmp_path / "tok"), "tiny_llava": {"patch_size": 16, "text_dim": 64}}})
    model, _ = build_model(cfg, tmp_path)
    assert image_tokens(model) == 16 and model.config.text_config.hidden_size == 64
