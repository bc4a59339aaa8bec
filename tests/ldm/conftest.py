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
