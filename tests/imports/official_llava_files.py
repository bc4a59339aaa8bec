"""A tiny LLaVA v1.0 folder in the original layout (the LEGO release's VLLM), random weights, and its forward.

The folder is what LLaVA at 898d73f saves: ``config.json`` of ``LlavaLlamaForCausalLM`` (LLaMA's keys + ``mm_*``),
the state dict of ``LlavaLlamaForCausalLM`` in two ``pytorch_model-*.bin`` shards with their index (LLaMA's names,
the linear ``model.mm_projector``, an old checkpoint's ``rotary_emb.inv_freq``; the vision tower named, not stored)
and a LLaMA-like tokenizer without ``<image>`` or a pad token. ``original_forward`` is LLaVA's own forward written
out — CLIP's penultimate layer without CLS, the projector, the image features spliced where ``<image>`` stood, LLaMA
— on modules built from the same tensors, independent of the importer and of transformers' Llava.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

D_TEXT = 48  # the LDM fixture's D_VLLM: the imported LLaVA can drive the imported LDM
D_VISION, IMAGE = 24, 28  # 28 px / 14 px patches -> 4 image tokens
WORDS = ["how", "does", "the", "person", "properly", "open", "drawer", "that", "is", "displayed", "in", "video",
         "frame", "?", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "you", "are", "a", "helpful", "language", "and",
         "vision", "assistant", ".", "able", "to", "understand", "visual", "content", "user", "provides", ",",
         "assist", "with", "variety", "of", "tasks", "using", "natural", "cup", "take", "left", "hand", "right"]


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def clip_vision_folder(out: Path, seed: int = 1) -> Path:
    """A local "openai/clip-vit-large-patch14" at tiny width: a CLIP vision tower and its image processor."""
    torch.manual_seed(seed)
    vc = CLIPVisionConfig(hidden_size=D_VISION, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                          image_size=IMAGE, patch_size=14)
    CLIPVisionModel(vc).save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE}).save_pretrained(out)
    return out


def sentencepiece_tokenizer(out: Path) -> Path:
    """A LLaMA-like SentencePiece tokenizer as LLaVA saves it (``tokenizer.model`` + ``tokenizer_config.json`` with
    LLaMA-2's ``legacy: false``, no ``tokenizer.json``): BPE with byte fallback and the word-start prefix."""
    import sentencepiece as spm

    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(["[INST] <<SYS>> You are a helpful language and vision assistant. <</SYS>>",
                                 "How does the person properly open the drawer that is displayed in the video frame?",
                                 "The person opens the drawer with the right hand. [/INST]"] * 20))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(out / "tokenizer"), vocab_size=400,
                                   model_type="bpe", byte_fallback=True, add_dummy_prefix=True, unk_id=0, bos_id=1,
                                   eos_id=2, pad_id=-1, normalization_rule_name="identity", minloglevel=2,
                                   remove_extra_whitespaces=False, character_coverage=1.0)
    corpus.unlink()
    (out / "tokenizer.vocab").unlink()
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": False,
         "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
         "clean_up_tokenization_spaces": False, "model_max_length": 2048}))
    return out / "tokenizer.model"


def llava_v1_folder(out: Path, seed: int = 0, config_extra: dict | None = None, drop: str | None = None,
                    extra: dict | None = None, sentencepiece: bool = False) -> Path:
    """The original-layout folder; ``drop`` removes a key, ``extra`` adds tensors (for the error tests);
    ``sentencepiece``: LLaMA's kind of tokenizer (``sentencepiece_tokenizer``) instead of a word-level one."""
    out.mkdir(parents=True, exist_ok=True)
    if sentencepiece:
        from transformers import AutoTokenizer

        sentencepiece_tokenizer(out)
        tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    else:
        tok = _tokenizer()
        tok.save_pretrained(out)
    torch.manual_seed(seed)
    lc = LlamaConfig(vocab_size=len(tok), hidden_size=D_TEXT, intermediate_size=96, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                     bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    sd = {k: v.clone() for k, v in LlamaForCausalLM(lc).state_dict().items()}
    sd["model.mm_projector.weight"] = torch.randn(D_TEXT, D_VISION) * 0.2
    sd["model.mm_projector.bias"] = torch.randn(D_TEXT) * 0.1
    sd["model.layers.0.self_attn.rotary_emb.inv_freq"] = 1.0 / 10000 ** (torch.arange(0, 12, 2).float() / 12)
    sd.update(extra or {})
    if drop:
        del sd[drop]
    keys = sorted(sd)
    shards = {"pytorch_model-00001-of-00002.bin": keys[: len(keys) // 2],
              "pytorch_model-00002-of-00002.bin": keys[len(keys) // 2:]}
    for name, ks in shards.items():
        torch.save({k: sd[k] for k in ks}, out / name)
    (out / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: name for name, ks in shards.items() for k in ks}}))
    cfg = {**lc.to_dict(), "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
           "mm_vision_tower": "openai/clip-vit-large-patch14", "mm_hidden_size": D_VISION,
           "mm_vision_select_layer": -2, "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
           "tune_mm_mlp_adapter": False, **(config_extra or {})}
    (out / "config.json").write_text(json.dumps(cfg))
    return out


@torch.no_grad()
def original_forward(src: Path, clip: Path, ids_before: list[int], ids_after: list[int], pixels: torch.Tensor):
    """(logits (1, T, V), the projected image tokens (1, 4, D_TEXT)) as LLaVA v1.0 computes them."""
    sd = {}
    for f in sorted(src.glob("pytorch_model-*.bin")):
        sd.update(torch.load(f, weights_only=True))
    cfg = json.loads((src / "config.json").read_text())
    llama = LlamaForCausalLM(LlamaConfig(**{k: cfg[k] for k in ("vocab_size", "hidden_size", "intermediate_size",
                                                                "num_hidden_layers", "num_attention_heads",
                                                                "num_key_value_heads", "max_position_embeddings")},
                                         tie_word_embeddings=False)).eval()
    llama.load_state_dict({k: v for k, v in sd.items() if "mm_projector" not in k and "inv_freq" not in k})
    tower = CLIPVisionModel.from_pretrained(str(clip)).eval()
    feats = tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]  # (1, 4, D_VISION): CLS dropped
    img = feats @ sd["model.mm_projector.weight"].T + sd["model.mm_projector.bias"]  # (1, 4, D_TEXT)
    emb = llama.model.embed_tokens
    x = torch.cat([emb(torch.tensor([ids_before])), img, emb(torch.tensor([ids_after]))], dim=1)
    return llama(inputs_embeds=x).logits, img
