"""LLaVA conversation JSON (the format the LLaVA repository reads) and exact answer-only loss masks.

A record: ``{"id", "image": <path relative to the images root>, "conversations": [{"from": "human",
"value": "<image>\\n<question>"}, {"from": "gpt", "value": "<description>"}]}``.

The token sequence is built as prompt ids + answer ids + EOS, so the mask (-100 on the prompt) is exact by
construction; and the joint tokenization of the whole text must equal that concatenation, else the sample
raises — LLaVA's silent "tokenization mismatch -> loss 0" becomes a loud error here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_json as atomic_write_json
from ..config import VllmConfig
from ..errors import InputError, MissingInput
from .templates import QUESTION_TEMPLATES, answer_text, prompt_text, question

IGNORE = -100


class MaskError(ValueError):
    """The prompt / answer boundary cannot be tokenized consistently."""


def make_record(pair_id: str, image: str, label: str, description: str, template: str) -> dict:
    return {"id": pair_id, "image": image, "label": label,
            "conversations": [{"from": "human", "value": "<image>\n" + question(template, label)},
                              {"from": "gpt", "value": description}]}


def records_from_manifest(rows: list[dict], seed: int = 0, templates: list[str] = QUESTION_TEMPLATES) -> list[dict]:
    """One record per training pair with a description; a template drawn at random per sample."""
    rng = np.random.default_rng(seed)
    return [make_record(r["pair_id"], r["input_path"], r["label"], r["description"],
                        templates[int(rng.integers(len(templates)))])
            for r in rows if r["split"] == "train" and r["description"]]


def write_json(records: list[dict], path: str | Path) -> None:
    atomic_write_json(path, records, indent=1)


def read_json(data: str | Path) -> list[dict]:
    p = Path(data)
    if not p.is_file():
        raise MissingInput("data", f"{p} does not exist")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError("data", f"{p} is not JSON ({e})") from None
    if not isinstance(data, list):
        raise ValueError(f"{p}: LLaVA data must be a JSON list of records")
    for i, r in enumerate(data):
        conv = r.get("conversations") if isinstance(r, dict) else None
        if (not conv or len(conv) < 2 or conv[0].get("from") != "human" or conv[1].get("from") != "gpt"
                or "<image>" not in conv[0].get("value", "") or "image" not in r):
            raise ValueError(f"{p}: record {i} is not a LLaVA image conversation (human turn with <image>, gpt turn)")
    return data


def split_turn(record: dict) -> tuple[str, str]:
    """(question without the image placeholder, answer) of a record's first exchange."""
    q = record["conversations"][0]["value"].replace("<image>", "").strip()
    return q, record["conversations"][1]["value"]


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
