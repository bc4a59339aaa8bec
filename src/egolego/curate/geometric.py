"""The offline describer: a description from the label and the boxes alone (no language model).

Which hand: the one that moved between the input and the action frame when both frames show both hands, else the
hand whose box overlaps or lies nearest the object of the action in the action frame. Where the object is: left /
middle / right from its box centre in the *input* frame when the pair has its boxes (the frame the VLLM and the
diffusion model see, where the person reaches), else in the action frame. The action frame alone misplaces what the
action moves: a poured bottle is lifted over the pan, a put cup sits on the plate, so on the validation seed's pour
scenes the action-frame side was right on .16 of the pairs, now .97 (RESULTS.md, 2026-12-07 curation study).
Second objects ("on the plate", "with the knife") keep the label's preposition.
"""

from __future__ import annotations

import re

from ..data.llava_text import normalise_label

_PREP = re.compile(r"\b(on|into|in|with|from|onto|to)\b")
_THIRD = {"go": "goes", "do": "does", "have": "has", "be": "is"}


def third_person(verb: str) -> str:
    if verb in _THIRD:
        return _THIRD[verb]
    if re.search(r"(s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def _centre(b):
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


def _gap(a, b) -> float:
    """0 when boxes overlap, else the distance between their closest edges."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return (dx * dx + dy * dy) ** 0.5


def side(x: float) -> str:
    return "on the left" if x < 0.4 else "on the right" if x > 0.6 else "in the middle"


def acting_hand(boxes: dict[str, list[float]], obj_box: list[float] | None) -> str | None:
    hands = {h: boxes[h] for h in ("left hand", "right hand") if h in boxes}
    if not hands:
        return None
    if obj_box is None or len(hands) == 1:
        return min(hands, key=lambda h: hands[h][1])  # the one reaching furthest up
    return min(hands, key=lambda h: (_gap(hands[h], obj_box), abs(_centre(hands[h])[0] - _centre(obj_box)[0])))


def find_box(boxes: dict[str, list[float]], noun: str, hand: str | None = None) -> list[float] | None:
    """The box of the object the label names; among several of that noun (two cups), the one nearest a hand (``hand``
    if known): in the action frame the boxes come from, the hand is at the object it acts on."""
    hands = [b for n, b in boxes.items() if n in ((hand,) if hand in boxes else ("left hand", "right hand"))]
    named = _named(boxes, noun)
    if len(named) > 1 and hands:
        return min(named, key=lambda b: min(_gap(h, b) for h in hands))
    if named:
        return named[0]
    others = [b for n, b in boxes.items() if n not in ("left hand", "right hand")]
    return others[0] if others else None


def _shift(a, b) -> float:
    """How far box ``a`` lies from box ``b`` (the sum of the four coordinates' differences)."""
    return sum(abs(x - y) for x, y in zip(a, b))


def _named(boxes: dict[str, list[float]], noun: str) -> list[list[float]]:
    noun = noun.split(":")[0].split()[-1] if noun else ""
    return [b for name, b in boxes.items()
            if name not in ("left hand", "right hand") and noun and noun in name.replace(":", " ").split()]


def moved_hand(before: dict[str, list[float]], after: dict[str, list[float]]) -> str | None:
    """The hand that moved between the input and the action frame, when both frames show both hands and one moved
    clearly (the other rests where it was): the acting hand. Nearness alone errs where resting hands lie over the
    drawers at the bottom of the frame."""
    hands = ("left hand", "right hand")
    if not all(h in before and h in after for h in hands):
        return None
    shift = {h: _shift(before[h], after[h]) for h in hands}
    best = max(hands, key=shift.get)
    return best if shift[best] > 0.05 else None


def box_before(before: dict[str, list[float]], after: dict[str, list[float]], noun: str,
               acted: list[float] | None) -> list[float] | None:
    """The input-frame box of the object the action is for, found by elimination: box names need not follow an
    object from frame to frame (VISOR numbers look-alikes per frame), but the look-alikes the action leaves alone stay
    where they were, so the target is the input box that no other action-frame box of its noun accounts for."""
    named = _named(before, noun)
    if len(named) <= 1:
        return named[0] if named else None
    rest = [b for b in _named(after, noun) if b is not acted]
    if rest:
        return max(named, key=lambda b: min(_shift(b, r) for r in rest))
    return min(named, key=lambda b: _shift(b, acted)) if acted is not None else None


def describe(label: str, boxes: dict[str, list[float]], before: dict[str, list[float]] | None = None) -> str:
    """One sentence, e.g. "The person takes the cup on the left with the left hand.". ``boxes`` are the action
    frame's (they say which hand acts), ``before`` the input frame's (they say where the object is), if known."""
    words = normalise_label(label).split()
    if not words:
        return ""
    verb, rest = words[0], " ".join(words[1:])
    if words[:2] in (["turn", "on"], ["turn", "off"]):
        verb, rest = f"{words[0]} {words[1]}", " ".join(words[2:])
    m = _PREP.search(rest)
    first, tail = (rest[:m.start()].strip(), rest[m.start():].strip()) if m else (rest.strip(), "")
    first = re.sub(r"^(the|a|an)\s+", "", first)
    moved = moved_hand(before or {}, boxes)
    obj = find_box(boxes, first, moved)
    hand = moved or acting_hand(boxes, obj)
    if before and first:
        obj = box_before(before, boxes, first, obj) or obj
    v = " ".join([third_person(verb.split()[0])] + verb.split()[1:])
    text = f"The person {v} the {first}" if first else f"The person {v}"
    if obj is not None and first:
        text += f" {side(_centre(obj)[0])}"
    if tail:
        prep, noun = tail.split(" ", 1) if " " in tail else (tail, "")
        noun = re.sub(r"^(the|a|an)\s+", "", noun)
        text += f" {prep} the {noun}" if noun else f" {prep}"
    if hand:
        text += f" with the {hand}"
    return text + "."
