"""Words for an action: the short label (EPIC narration), the Ego4D narration, and the exact description."""

from __future__ import annotations

import re

from .knowledge import rule_word
from .vocab import COLORS, KINDS, VERBS
from .world import Action, Scene, side_word


def noun_phrase(scene: Scene, index: int, with_side: bool = True, word: str | None = None) -> str:
    """"the red cup on the left"; ``word`` replaces the colour ("the clean cup on the left": among look-alikes of one
    colour, the state a rule reads is what names it)."""
    o = scene.objects[index]
    words = f"the {word or o.color} {KINDS[o.kind].phrase}"
    return f"{words} {side_word(o.x)}" if with_side else words


def label(scene: Scene, action: Action) -> str:
    """The EPIC-style narration: "take cup", "put cup on chopping board", "pour bottle into pan"."""
    v = VERBS[action.verb]
    noun = KINDS[scene.objects[action.target].kind].phrase
    if action.verb == "turn-on":
        base = f"turn on {noun}"
    elif action.verb == "turn-off":
        base = f"turn off {noun}"
    else:
        base = f"{action.verb} {noun}"
    if action.second is not None:
        base += f" {v.second_role} {KINDS[scene.objects[action.second].kind].phrase}"
    return base


def ego4d_narration(scene: Scene, action: Action) -> str:
    """Ego4D's narration style: "#C C takes the cup", "#C C turns on the hob"."""
    v = VERBS[action.verb]
    noun = KINDS[scene.objects[action.target].kind].phrase
    text = f"#C C {v.third_person} the {noun}"
    if action.second is not None:
        text += f" {v.second_role} the {KINDS[scene.objects[action.second].kind].phrase}"
    return text


def description(scene: Scene, action: Action) -> str:
    """The exact enriched description, e.g. "The person takes the red cup on the left with the left hand.", or in a
    scene a knowledge rule decides, "The person takes the clean cup on the left with the left hand."."""
    v = VERBS[action.verb]
    target = noun_phrase(scene, action.target, word=rule_word(scene))
    hand = f"the {action.hand} hand"
    if action.second is None:
        return f"The person {v.third_person} {target} with {hand}."
    if v.second_role == "with":  # the tool ends up held, so where it lay does not matter
        return f"The person {v.third_person} {target} with {noun_phrase(scene, action.second, False)} held in {hand}."
    second = noun_phrase(scene, action.second)
    return f"The person {v.third_person} {target} {v.second_role} {second} with {hand}."


def state_words(action: Action) -> tuple[str, str]:
    """(before, after) state of the target object in words."""
    return {
        "take": ("on the counter", "lifted in the hand"),
        "put": ("held in the hand", "placed on the second object"),
        "open": ("closed", "open"),
        "close": ("open", "closed"),
        "cut": ("whole", "cut in two"),
        "pour": ("upright on the counter", "tilted, pouring into the second object"),
        "wipe": ("stained", "clean"),
        "push": ("in place", "pushed away"),
        "turn-on": ("off", "on"),
        "turn-off": ("on", "off"),
        "stir": ("unmixed", "stirred"),
    }[action.verb]


def description_accuracy(text: str, truth: dict) -> dict[str, bool]:
    """Does a description name the truth's hand, target object and its position?

    ``truth`` is a ``truth.jsonl`` record. Checked on the words EgoSynth's descriptions use: the hand is "the left
    hand" (and not the other one); the object is the target's kind ("cup") — with its colour when the text gives
    one ("the red cup"; "the blue cup" is wrong); the position is the side right after it ("cup on the left").
    A description curated from labels and boxes alone (``curate --backend geometric``) has no colours: it can still
    be right on all three.
    """
    t = " ".join(text.lower().replace(".", " ").replace(",", " ").split())
    tg = truth["target"]
    kind, colour, side = KINDS[tg["kind"]].phrase, tg["color"], tg["side"]
    other = "left" if truth["hand"] == "right" else "right"
    hand = f"{truth['hand']} hand" in t and f"{other} hand" not in t
    named = [m for m in re.finditer(rf"\bthe (?:(\w+) )?{re.escape(kind)}\b", t)]
    right_colour = [m for m in named if m.group(1) in (None, colour) or m.group(1) not in COLORS]
    obj = bool(right_colour)
    position = any(t[m.end():].startswith(f" {side}") for m in right_colour)
    return {"hand": hand, "object": obj, "position": position, "all": hand and obj and position}
