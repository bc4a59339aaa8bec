"""Extra visual-instruction-tuning records rendered from EgoSynth scenes, worded as the curation words them.

The tiny LLaVA learns where things are slowly from the few hundred curated records of a demo-sized dataset, and
those records were noisy while the geometric curation read the *action* frame's boxes, where the object may have
moved (position right ~74 %; RESULTS.md; it reads the input frame's since 2026-12-07). EgoSynth can render any
number of scenes, and they teach what no curation of the pairs can: the world's knowledge rules. Each record here is
the before-frame of a fresh (scene, action), its label, and a description that names the target's true side and the
acting hand, written by ``curate.geometric.describe`` from the exact target position so that both kinds of record
speak alike. Scenes come from their own stream (``SeedSequence([seed, SALT])``), not from a
dataset's ``default_rng(seed)``, so no test scene is ever rendered here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .atomic import write_json as atomic_json
from .curate.geometric import describe
from .data.llava_records import make_record
from .data.llava_text import QUESTION_TEMPLATES
from .synth.describe import label
from .synth.knowledge import rule_word, sample
from .synth.render import square_frame
from .synth.vocab import KINDS
from .synth.world import pose, side_word

SALT = 0x7A5C5  # separates this stream from every dataset's and from the vision pre-training's (patch_labels.SALT)
RECORDS, META = "records.json", "records_meta.json"


def scene_record(rng: np.random.Generator, index: int, size: int, images: Path, knowledge: str = "none") -> dict:
    """Render one before-frame of the world ``knowledge`` names into ``images`` and return its LLaVA record (image
    path relative to ``images``' parent folder). Where a rule decides the target among look-alikes, the description
    names it by the state the rule reads ("the clean cup on the left"): the knowledge the stills teach."""
    scene, action = sample(rng, knowledge)
    name = f"scene_{index:06d}.png"
    with atomic_path(images / name) as tmp:
        square_frame(scene, pose(scene, action, 0.0), size).save(tmp, format="PNG")
    target = scene.objects[action.target]
    box = [target.x - 0.01, target.y - 0.01, target.x + 0.01, target.y + 0.01]  # the exact centre
    text = label(scene, action)
    noun = KINDS[target.kind].phrase
    desc = describe(text, {noun: box, f"{action.hand} hand": box})
    word = rule_word(scene)
    if word:
        desc = desc.replace(f" the {noun} ", f" the {word} {noun} ", 1)
    template = QUESTION_TEMPLATES[int(rng.integers(len(QUESTION_TEMPLATES)))]
    record = make_record(f"scene_{index}", f"{images.name}/{name}", text, desc, template)
    # what the description should say, in truth.jsonl's words (the tuner reads only image, label, conversations)
    record["truth"] = {"hand": action.hand, "rule": scene.rule or None,
                       "target": {"kind": target.kind, "color": target.color, "side": side_word(target.x)}}
    return record


def write_tuning_records(out: str | Path, n: int, seed: int, size: int, knowledge: str = "none") -> Path:
    """``n`` records under ``out`` (``images/`` and ``records.json``); returns the JSON's path.

    Reused when ``out`` already holds the same ``n``, ``seed`` and ``size``; the JSON is written last and
    atomically, so a killed run renders again rather than trains on a partial set."""
    out = Path(out)
    meta = {"n": n, "seed": seed, "size": size, "salt": SALT, "knowledge": knowledge}
    if (out / META).is_file() and (out / RECORDS).is_file() and json.loads((out / META).read_text()) == meta:
        return out / RECORDS
    (out / META).unlink(missing_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, SALT]))
    (out / "images").mkdir(parents=True, exist_ok=True)
    records = [scene_record(rng, i, size, out / "images", knowledge) for i in range(n)]
    atomic_json(out / RECORDS, records, indent=1)
    atomic_json(out / META, meta)
    return out / RECORDS
