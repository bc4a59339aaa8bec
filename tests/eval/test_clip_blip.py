"""CLIP image/text similarity and BLIP captioning with tiny random models saved as local folders."""

import numpy as np
import pytest
import torch
from PIL import Image

from egolego.eval.caption import BlipCaptioner, strip_prompt
from egolego.eval.clip_similarity import CLIP_MEAN, CLIP_STD, ClipSimilarity
from egolego.tokenizer import train_tokenizer

TEXTS = ["a picture of a hand taking a cup", "the person opens the drawer with the left hand",
         "cut the carrot", "a kitchen counter with a bowl"] * 4


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    d = tmp_path_factory.mktemp("clip")
    tok = train_tokenizer(TEXTS, d, vocab_size=300, model_max_length=32)
    cfg = CLIPConfig(text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                  "num_attention_heads": 4, "vocab_size": len(tok), "max_position_embeddings": 32,
                                  "eos_token_id": tok.convert_tokens_to_ids("</s>")},
                     vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
                     projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(d)
    return d


def test_clip_preprocessing_and_embeddings_match_the_model(clip_dir):
    from transformers import CLIPModel

    sim = ClipSimilarity(clip_dir)
    ims = [Image.effect_noise((48, 30), 50).convert("RGB"), Image.new("RGB", (20, 20), (200, 30, 10))]
    px = sim.pixel_values(ims)
    by_hand = (np.asarray(ims[0].resize((32, 32), Image.BICUBIC), np.float32) / 255 - CLIP_MEAN) / CLIP_STD
    assert np.allclose(px[0].permute(1, 2, 0).numpy(), by_hand, atol=1e-5)  # squashed, not cropped
    model = CLIPModel.from_pretrained(clip_dir).eval()
    tok = sim._tok_cls.from_pretrained(clip_dir)
    ids = tok(["cut the carrot"] * 2, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"], pixel_values=px)
    ref_img = out.image_embeds / out.image_embeds.norm(dim=-1, keepdim=True)
    assert torch.allclose(sim.image_embeddings(ims), ref_img, atol=1e-5)
    ref_txt = out.text_embeds / out.text_embeds.norm(dim=-1, keepdim=True)
    assert torch.allclose(sim.text_embeddings(["cut the carrot"] * 2), ref_txt, atol=1e-5)
    ii = sim.image_image(ims, ims[::-1])
    assert torch.allclose(ii, (ref_img[0] * ref_img[1]).sum().expand(2), atol=1e-5)
    assert torch.allclose(sim.image_image(ims, ims), torch.ones(2), atol=1e-5)
    assert sim.text_text(["cut the carrot"], ["cut the carrot"]).item() == pytest.approx(1.0, abs=1e-5)


def test_blip_captions_from_a_local_folder(tmp_path):
    from transformers import BlipConfig, BlipForConditionalGeneration

    tok = train_tokenizer(TEXTS, tmp_path, vocab_size=300, model_max_length=40)
    bos = tok.convert_tokens_to_ids("<s>")
    cfg = BlipConfig(text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
                                  "num_hidden_layers": 2, "num_attention_heads": 4, "encoder_hidden_size": 32,
                                  "bos_token_id": bos, "sep_token_id": tok.convert_tokens_to_ids("</s>"),
                                  "pad_token_id": tok.pad_token_id, "max_position_embeddings": 40},
                     vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 4, "image_size": 32, "patch_size": 8})
    torch.manual_seed(0)
    BlipForConditionalGeneration(cfg).save_pretrained(tmp_path)
    cap = BlipCaptioner(tmp_path, num_beams=2, min_length=3, max_length=8)
    ims = [Image.effect_noise((40, 40), 50).convert("RGB") for _ in range(2)]
    caps = cap(ims)
    assert len(caps) == 2 and all(isinstance(c, str) for c in caps)
    assert caps == cap(ims)  # beam search is deterministic
    # independently: transformers' own BLIP image processor (bicubic, CLIP statistics) + generate with the prompt
    from transformers import BlipImageProcessor

    from egolego.eval.clip_similarity import CLIP_MEAN, CLIP_STD

    proc = BlipImageProcessor(size={"height": 32, "width": 32}, image_mean=CLIP_MEAN, image_std=CLIP_STD,
                              resample=Image.BICUBIC)
    model = BlipForConditionalGeneration.from_pretrained(tmp_path).eval()
    prompt = tok(["a picture of"] * 2, return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(pixel_values=proc(ims, return_tensors="pt")["pixel_values"], input_ids=prompt["input_ids"],
                             attention_mask=prompt["attention_mask"], num_beams=2, min_length=3, max_length=8)
    want = [strip_prompt(t) for t in tok.batch_decode(ids, skip_special_tokens=True)]
    assert caps == want and any(caps)
    seen = {}
    real = cap.model.generate
    cap.model.generate = lambda **kw: seen.update(kw) or real(**kw)
    cap(ims)  # the pixels the captioner hands BLIP are the image processor's, to float precision
    torch.testing.assert_close(seen["pixel_values"], proc(ims, return_tensors="pt")["pixel_values"], atol=1e-5, rtol=0)
    assert strip_prompt("a picture of a cup on a table") == "a cup on a table"
    assert strip_prompt("  A picture of X") == "X"
    assert strip_prompt("something else") == "something else"
