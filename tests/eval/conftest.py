"""Fixtures for the evaluation tests: oracle pairs, random-weight metric files, a headless Chromium."""

import pytest
import torch

from ..debian import ensure_installed


@pytest.fixture(scope="session")
def eval_pairs(small_dataset, tmp_path_factory):
    from egolego.synth.pairs import pairs_from_egosynth

    d = tmp_path_factory.mktemp("eval_pairs")
    pairs_from_egosynth(small_dataset, d)
    return d


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    """Random weights in the official files' layouts, under the names ``--weights-dir`` expects."""
    from transformers import CLIPConfig, CLIPModel

    from egolego.eval.egovlp import EgoVLP, SpaceTimeTransformer
    from egolego.eval.inception import INCEPTION_FILE, FidInception
    from egolego.eval.lpips import CHANNELS, LPIPS_FILE, SQUEEZENET_FILE, SqueezeFeatures
    from egolego.tokenizer import train_tokenizer

    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save({k: torch.randn_like(v) * 0.2 for k, v in SqueezeFeatures().state_dict().items()}, d / SQUEEZENET_FILE)
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(CHANNELS)}, d / LPIPS_FILE)
    inc = FidInception().state_dict()
    torch.save({k: (torch.randn_like(v) * 0.05 if v.ndim > 1 else torch.rand_like(v) + 0.5) if v.is_floating_point()
                else v for k, v in inc.items()}, d / INCEPTION_FILE)
    clip = d / "clip-vit-large-patch14"
    tok = train_tokenizer(["the person takes the cup with the left hand", "open drawer", "cut carrot"] * 5, clip, 300, 32)
    CLIPModel(CLIPConfig(text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                      "num_attention_heads": 4, "vocab_size": len(tok), "max_position_embeddings": 32},
                         vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                        "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
                         projection_dim=16)).save_pretrained(clip)
    ego = EgoVLP(SpaceTimeTransformer(image_size=32, patch=16, dim=24, depth=1, heads=12, frames=4), proj_dim=8)
    for p in ego.parameters():
        p.data.normal_(0, 0.3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in ego.state_dict().items()}}, d / "egovlp.pth")
    _tiny_blip(d / "blip-image-captioning-base")  # BLIP-L stays missing: its skip line is tested
    return d


def _tiny_blip(folder):
    from transformers import BlipConfig, BlipForConditionalGeneration

    from egolego.tokenizer import train_tokenizer

    tok = train_tokenizer(["a picture of a hand taking a cup", "the person opens the drawer"] * 5, folder, 300, 40)
    cfg = BlipConfig(text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
                                  "num_hidden_layers": 1, "num_attention_heads": 4, "encoder_hidden_size": 32,
                                  "bos_token_id": tok.convert_tokens_to_ids("<s>"),
                                  "sep_token_id": tok.convert_tokens_to_ids("</s>"), "pad_token_id": tok.pad_token_id,
                                  "max_position_embeddings": 40},
                     vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                    "num_attention_heads": 4, "image_size": 32, "patch_size": 8})
    BlipForConditionalGeneration(cfg).save_pretrained(folder)


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium; installed here when missing (root + apt), else the test fails with why."""
    return ensure_installed({"chromium": "chromium"}, "the report test")["chromium"]
