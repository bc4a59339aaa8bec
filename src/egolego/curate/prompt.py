"""The in-context prompt of the paper's Fig. 9: system requirements, 12 examples, then the query.

Each example is an action label, the normalised boxes of hands and objects ([x1, y1, x2, y2], origin at the
top-left), and a manual description; the query has the label and boxes only. Examples live in a YAML file per
dataset (``label``, ``boxes``, ``description``); for EgoSynth they are drawn from ``truth.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import InputError, MissingInput

SYSTEM = (
    "You are an AI assistant that provides a description of an image based on the action and object context. "
    "The action consists of a verb and nouns. Each object location is represented by a bounding box. For each "
    "bounding box, four numbers are provided in brackets – they are [x-coordinate of top-left, y-coordinate of "
    "top-left, x-coordinate of bottom-right, y-coordinate of bottom-right]. The origin is at the top-left of each "
    "frame. The x-axis is on the top and the y-axis is on the left. All coordinates are normalized to the range "
    "from 0 to 1. This information can be used to infer the spatial relation of hands and objects. Note that the "
    "detailed narration is in a natural and holistic style. Please add more details in the action. For example, "
    "try to describe which hand is used in each action like “with right hand” or “using left hand”. Try to "
    "describe the spatial relation of these objects like “on the right”, “on the left”, “from ... to ...” or use "
    "some spatial words like “in”, “on”, “out”, “front”, “back”, etc. Describe the image in only one sentence. "
    "Do not describe objects or actions that are not presented in action or objects locations context. Many "
    "examples are provided for learning and an additional example is provided for inference."
)
N_EXAMPLES = 12


def format_boxes(boxes: dict[str, list[float]]) -> str:
    return "; ".join(f"{name}: [{', '.join(f'{v:.2f}' for v in b)}]" for name, b in sorted(boxes.items()))


def format_example(label: str, boxes: dict, description: str | None = None) -> str:
    text = f'Action Label: "{label}"\nBounding Boxes: {format_boxes(boxes)}'
    if description is not None:
        text += f'\nAction Descriptions: "{description}"'
    return text


def build_messages(examples: list[dict], label: str, boxes: dict) -> list[dict]:
    """Chat messages: system, the 12 examples, the inference example."""
    if len(examples) < N_EXAMPLES:
        raise ValueError(f"the prompt needs {N_EXAMPLES} in-context examples, got {len(examples)}")
    shots = " ".join(f"({i + 1}) {format_example(e['label'], e['boxes'], e['description'])}"
                     for i, e in enumerate(examples[:N_EXAMPLES]))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Examples for learning: {shots}"},
            {"role": "user", "content": f"Example for inference: {format_example(label, boxes)}"}]


def load_examples(examples: str | Path) -> list[dict]:
    p = Path(examples)
    if not p.is_file():
        raise MissingInput("examples", f"{p} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        raise InputError("examples", f"{p} is not readable YAML{at}: {getattr(e, 'problem', None) or e}") from None
    ex = data.get("examples") if isinstance(data, dict) else data
    if not isinstance(ex, list) or not all(isinstance(e, dict) and {"label", "boxes", "description"} <= set(e) for e in ex):
        raise ValueError(f"{p}: expected a list of examples with label, boxes and description")
    return ex


def examples_from_truth(truth: list[dict], n: int = N_EXAMPLES, seed: int = 0) -> list[dict]:
    """Diverse EgoSynth examples: one per verb first (in a seeded order), then the rest, however few verbs there are."""
    import numpy as np
    order = [int(i) for i in np.random.default_rng(seed).permutation(len(truth))]
    first, seen = [], set()
    for i in order:
        if truth[i]["verb"] not in seen:
            first.append(i)
            seen.add(truth[i]["verb"])
    chosen = set(first)
    picked = [truth[i] for i in (first + [i for i in order if i not in chosen])[:n]]
    return [{"label": t["label"], "boxes": t["boxes"]["target"], "description": t["description"]} for t in picked]


def write_examples(examples: list[dict], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump({"examples": json.loads(json.dumps(examples))}, sort_keys=False))
