"""CLIP similarity and the LAION aesthetic scorer, with random weights in local folders (no download)."""

import numpy as np
import pytest
import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from egolego.data.clip_scores import AestheticMLP, ClipScorers


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "vocab_size": 100},
                     vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                     projection_dim=16)
    CLIPModel(cfg).save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    mlp = AestheticMLP(16)
    torch.save(mlp.state_dict(), d / "aesthetic.pth")
    return d


def test_similarity_is_the_cosine_of_image_embeddings(clip_dir):
    s = ClipScorers(str(clip_dir), str(clip_dir / "aesthetic.pth"))
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(2))
    assert s.similarity(a, a) == pytest.approx(1.0, abs=1e-5)
    ea, eb = s.embed(a), s.embed(b)
    assert s.similarity(a, b) == pytest.approx(float(torch.dot(ea, eb) / (ea.norm() * eb.norm())), abs=1e-5)


def test_aesthetic_is_the_mlp_on_normalised_embeddings(clip_dir):
    s = ClipScorers(str(clip_dir), str(clip_dir / "aesthetic.pth"))
    img = np.full((32, 32, 3), 128, np.uint8)
    mlp = AestheticMLP(16)
    mlp.load_state_dict(torch.load(clip_dir / "aesthetic.pth"))
    mlp.eval()
    e = s.embed(img)
    assert abs(float(e.norm()) - 1) < 1e-5
    with torch.no_grad():
        want = float(mlp(e[None])[0, 0])
    assert s.aesthetic(img) == pytest.approx(want, abs=1e-6)


def test_missing_weights_are_clear(tmp_path, clip_dir):
    with pytest.raises(FileNotFoundError, match="is not a local CLIP folder") as e:
        ClipScorers(str(tmp_path))
    assert e.value.flag == "--clip-weights"
    with pytest.raises(FileNotFoundError, match="quality laion needs the improved-aesthetic MLP") as e:
        ClipScorers(str(clip_dir)).aesthetic(np.zeros((8, 8, 3), np.uint8))
    assert e.value.flag == "--quality-weights"
