"""The LLaVA record format: the conversation JSON the LLaVA repository reads, written by curation and read by tuning.

A record: ``{"id", "image": <path relative to the images root>, "label", "conversations": [{"from": "human",
"value": "<image>\\n<question>"}, {"from": "gpt", "value": "<description>"}]}``. It lives with the data (below
``curate``, which writes it, and ``vllm``, which reads it), so neither has to import the other for a file format.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_json as atomic_write_json
from ..errors import InputError, MissingInput
from .llava_text import QUESTION_TEMPLATES, question
from .manifest import action_rows


def make_record(pair_id: str, image: str, label: str, description: str, template: str) -> dict:
    return {"id": pair_id, "image": image, "label": label,
            "conversations": [{"from": "human", "value": "<image>\n" + question(template, label)},
                              {"from": "gpt", "value": description}]}


def records_from_manifest(rows: list[dict], seed: int = 0, templates: list[str] = QUESTION_TEMPLATES) -> list[dict]:
    """One record per training pair with a description; a template drawn at random per sample."""
    rng = np.random.default_rng(seed)
    return [make_record(r["pair_id"], r["input_path"], r["label"], r["description"],
                        templates[int(rng.integers(len(templates)))])
            for r in action_rows(rows) if r["split"] == "train" and r["description"]]


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
