"""Exact answer-only loss masks for LLaVA records (their format: ``data.llava_records``).

The token sequence is built as prompt ids + answer ids + EOS, so the mask (-100 on the prompt) is exact by
construction; and the joint tokenization of the whole text must equal that concatenation, else the sample
raises — LLaVA's silent "tokenization mismatch -> loss 0" becomes a loud error here.
"""

from __future__ import annotations

from ..config import VllmConfig
from ..data.llava_records import split_turn
from ..data.llava_text import answer_text, prompt_text

IGNORE = -100


class MaskError(ValueError):
    """The prompt / answer boundary cannot be tokenized consistently."""


def build_ids(tokenizer, expanded_prompt_ids: list[int], prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one sample; labels are -100 except on the answer tokens and EOS.

    ``expanded_prompt_ids`` are the processor's ids of ``prompt`` (``<image>`` expanded to M tokens).
    Raises ``MaskError`` if tokenizing prompt + answer jointly differs from the concatenation.
    """
    ans = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if not ans:
        raise MaskError(f"empty answer for prompt {prompt!r}")
    joint = tokenizer(prompt + answer, add_special_tokens=False)["input_ids"]
    alone = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if joint != alone + ans:
        raise MaskError(f"tokenization mismatch at the prompt/answer boundary: {prompt[-20:]!r} + {answer[:20]!r} "
                        "tokenizes differently together; fix the template (end it on a word boundary)")
    ids = list(expanded_prompt_ids) + ans + [tokenizer.eos_token_id]
    labels = [IGNORE] * len(expanded_prompt_ids) + ans + [tokenizer.eos_token_id]
    return ids, labels


def sample_texts(record: dict, conversation: str = VllmConfig.conversation) -> tuple[str, str]:
    """(prompt text, answer text) for a record, in the model's conversation format."""
    q, a = split_turn(record)
    return prompt_text(q, conversation), answer_text(a)
