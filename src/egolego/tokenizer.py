"""Train a byte-level BPE tokenizer and save it as a ``PreTrainedTokenizerFast`` folder.

No tokenizer can be downloaded here, so the tiny preset's text models (CLIP text encoder, tiny Llama)
use one trained on the project's own corpus (EgoSynth labels and descriptions). ``model_max_length`` is
always set: without it diffusers' InstructPix2Pix prompt encoding overflows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
IMAGE_TOKEN = "<image>"


def train_tokenizer(corpus: Iterable[str], out_dir: str | Path | None = None, vocab_size: int = 512,
                    model_max_length: int = 77, min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Train on ``corpus`` (an iterable of texts); save to ``out_dir`` when given.

    Special tokens: ``<pad> <unk> <s> </s>`` plus ``<image>`` (an additional special token, for LLaVA).
    No BOS/EOS are added automatically; models that want them add them explicitly.
    """
    texts = [t for t in corpus if t and t.strip()]
    if not texts:
        raise ValueError("the tokenizer corpus is empty")
    specials = list(SPECIAL_TOKENS.values()) + [IMAGE_TOKEN]
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length,
                                   additional_special_tokens=[IMAGE_TOKEN], **SPECIAL_TOKENS)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(out_dir))
    return fast


def corpus_from_truth(truth: list[dict]) -> list[str]:
    """Texts of an EgoSynth dataset: labels, Ego4D narrations and descriptions."""
    out = []
    for t in truth:
        out += [t["label"], t["narration"], t["description"]]
    return out
