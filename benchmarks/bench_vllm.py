"""VLLM throughput: tuning samples/s, enrichment pairs/s and generated tokens/s; ours beside a plain HF loop.

Tiny preset on CPU always; LLaVA-1.5-7B shapes with random weights on a GPU when present (reference on an
H200: plain HF generate at batch 16 gives 353 new tokens/s = 7.35 images/s; a prefill pass with hidden states
50 images/s). "Ours" = batched generation keeping H_i / H_t by hooks (what `egolego vllm enrich` does per
batch; until 2026-11-29 it was generation + a second teacher-forced pass); "plain" = HF generate with output_hidden_states=True, the official way to collect H_t.
Prints one JSON line.
"""

import json
import os
import platform
import time

import numpy as np
import torch
from PIL import Image

from egolego.data.llava_text import QUESTION_TEMPLATES, answer_text, prompt_text, question
from egolego.tokenizer import train_tokenizer
from egolego.vllm.embed import encode_samples
from egolego.vllm.enrich import generate_with_states
from egolego.vllm.model import build_tiny_llava

TEXT = "The person takes the red cup on the left with the left hand."


def run(model, proc, batch: int, new_tokens: int) -> dict:
    side = model.config.vision_config.image_size
    imgs = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (side, side, 3), dtype=np.uint8)) for i in range(batch)]
    labels = ["take cup"] * batch
    prompts = [prompt_text(question(QUESTION_TEMPLATES[0], a)) for a in labels]
    tok = proc.tokenizer

    def ours():  # what `egolego vllm enrich` does per batch: H_i / H_t kept from the generation itself
        generate_with_states(model, proc, imgs, labels, max_new_tokens=new_tokens)

    def plain():
        tok.padding_side = "left"
        enc = proc(images=imgs, text=prompts, return_tensors="pt", padding=True).to(model.device)
        enc["pixel_values"] = enc["pixel_values"].to(model.dtype)
        with torch.no_grad():
            model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, output_hidden_states=True,
                           return_dict_in_generate=True, pad_token_id=tok.pad_token_id, eos_token_id=None)
        tok.padding_side = "right"

    res = {}
    for name, fn in (("ours", ours), ("plain_hf", plain)):
        fn()
        t0 = time.perf_counter()
        fn()
        res[name] = time.perf_counter() - t0
    return {"batch": batch, "ours_pairs_per_s": round(batch / res["ours"], 2),
            "plain_pairs_per_s": round(batch / res["plain_hf"], 2), "ratio": round(res["plain_hf"] / res["ours"], 3)}


def tuning(model, proc, batch: int) -> dict:
    imgs = [Image.new("RGB", (64, 64))] * batch
    ids, mask, labels, pix, _ = encode_samples(proc, imgs, [prompt_text("How do I take cup?")] * batch,
                                               [answer_text(TEXT)] * batch)
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    model.train()

    def step():
        model(input_ids=ids, attention_mask=mask, labels=labels, pixel_values=pix).loss.backward()
        opt.step()
        opt.zero_grad()

    step()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    model.eval()
    return {"batch": batch, "seq_len": ids.shape[1], "samples_per_s": round(5 * batch / (time.perf_counter() - t0), 1)}


def gpu_llava_7b(tok):
    """LLaVA-1.5-7B shapes (CLIP ViT-L/14-336 + Llama-7B), random bf16 weights on the GPU."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    vc = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                          image_size=336, patch_size=14, projection_dim=768)
    tc = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                     num_attention_heads=32, max_position_embeddings=4096, pad_token_id=tok.pad_token_id,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_id=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_layer=-2, vision_feature_select_strategy="default")
    with torch.device("cuda"):
        model = LlavaForConditionalGeneration(cfg).to(torch.bfloat16).eval()
    ip = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1)
    return model, proc


def main():
    tok = train_tokenizer([TEXT, *QUESTION_TEMPLATES] * 10, vocab_size=400, model_max_length=512)
    model, proc = build_tiny_llava(tok)
    model.eval()
    out = {"bench": "vllm", "machine": platform.machine(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
           "cpu_tiny_enrich": run(model, proc, 16, 24), "cpu_tiny_tuning": tuning(model, proc, 16),
           "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    if torch.cuda.is_available():
        model, proc = gpu_llava_7b(tok)
        out["gpu_llava7b_enrich_b16"] = run(model, proc, 16, 48)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
