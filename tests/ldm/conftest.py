"""Tiny LDM components (random weights) shared by the LDM tests."""

import pytest
import torch
from diffusers import EulerAncestralDiscreteScheduler

from egolego.ldm.components import TinyShapes, tiny_text_encoder, tiny_unet, tiny_vae
from egolego.ldm.conditioner import LegoConditioner
from egolego.tokenizer import train_tokenizer

WORDS = ["take the red cup", "open the drawer", "The person takes the red cup on the left with the left hand.",
         "The person opens the brown drawer in the middle with the right hand.", "cut tomato with knife"]


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    return train_tokenizer(WORDS * 10, tmp_path_factory.mktemp("tok"), vocab_size=320)


def make_components(tokenizer, mode="lego", vllm_dim=48, image_tokens=16, seed=0):
    torch.manual_seed(seed)
    s = TinyShapes()
    sched = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                            num_train_timesteps=1000)
    return {"vae": tiny_vae(s).eval(), "text_encoder": tiny_text_encoder(tokenizer, s).eval(), "tokenizer": tokenizer,
            "unet": tiny_unet(s).eval(), "scheduler": sched,
            "conditioner": LegoConditioner(vllm_dim=vllm_dim, cross_attention_dim=s.text_dim, num_heads=4, ffn_dim=128,
                                           mode=mode, image_tokens=image_tokens, text_tokens=77).eval()}


@pytest.fixture
def components(tokenizer):
    return make_components(tokenizer)


def fill_store(manifest, store_dir, tokenizer, shard_size=8):
    """Embeddings of every pair from a tiny random LLaVA (until a tuned one is used)."""
    from PIL import Image

    from egolego.config import VllmConfig
    from egolego.data.manifest import read_manifest, resolve
    from egolego.vllm.embed import teacher_forced_states
    from egolego.vllm.model import build_tiny_llava, fingerprint, image_tokens
    from egolego.vllm.store import StoreWriter

    model, proc = build_tiny_llava(tokenizer)
    model.eval()
    rows = read_manifest(manifest)
    w = StoreWriter(store_dir, "0", (image_tokens(model), model.config.text_config.hidden_size),
                    (77, model.config.text_config.hidden_size), fingerprint(model), shard_size=shard_size)
    for i in range(0, len(rows), 8):
        chunk = rows[i:i + 8]
        imgs = [Image.open(resolve(manifest, r["input_path"])).convert("RGB") for r in chunk]
        from egolego.data.llava_text import answer_text, prompt_text
        h_img, h_txt, lens = teacher_forced_states(model, proc, imgs, [prompt_text(f"How do I {r['label']}?") for r in chunk],
                                                   [answer_text(r["description"]) for r in chunk], VllmConfig().text_rows)
        for r, a, b, n in zip(chunk, h_img, h_txt, lens):
            w.add(r["pair_id"], a, b[:n], int(n))
    w.close()
    return store_dir


@pytest.fixture(scope="session")
def pairs8(small_dataset, tmp_path_factory):
    """A manifest of EgoSynth pairs (8 train) and an embedding store for them."""
    from egolego.data.manifest import read_manifest, write_manifest
    from egolego.synth.pairs import pairs_from_egosynth

    d = tmp_path_factory.mktemp("pairs8")
    pairs_from_egosynth(small_dataset, d)
    rows = read_manifest(d)
    train = [r for r in rows if r["split"] == "train"][:8]
    write_manifest(train, d)
    return d


@pytest.fixture(scope="session")
def store8(pairs8, tmp_path_factory):
    from egolego.data.manifest import read_manifest
    from egolego.tokenizer import train_tokenizer
    texts = [t for r in read_manifest(pairs8) for t in (r["label"], r["description"], f"How do I {r['label']}?")]
    tok = train_tokenizer(texts * 3, tmp_path_factory.mktemp("vtok"), vocab_size=400, model_max_length=256)
    return fill_store(pairs8, tmp_path_factory.mktemp("store8"), tok)
