"""EgoSynth's world knowledge (``synth.knowledge``): rules a person knows that decide which of two or three look-alike
objects an action is for.

Why: LEGO's claim is that a visual LLM brings knowledge the diffusion model cannot get from its own pairs. In the
paper that knowledge comes from far more data than the action pairs (LLaVA's and CLIP's image-text pre-training,
GPT's curation): pairs cut from annotated video are scarce, captioned images are plentiful. A world without such
knowledge cannot tell a working LEGO from a broken one (without it, the twin's colour is drawn at random and no
description can know which twin is meant). In the ``rules`` world, when the target's kind appears more than once,
a *visible state* in the before-frame decides, by one of the rules below: you take the clean cup, not the stained
one; you wipe the stained plate; you close the open drawer. The label ("take cup") never says which. The rules are
learnable from examples: the VLLM sees them in many rendered, exactly described stills (``vllm.synthetic_records``),
the diffusion model only in its own, scarce pairs.

The look-alikes share the target's kind *and colour*, and each stands on another side of the frame (left / middle
/ right, away from the borders of ``world.side_word``), so that a description naming the target by its state and
position ("the clean cup on the left") tells it apart, and colour does not. ``none`` is the world without knowledge,
kept as the control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sampling import finish_scene, place, place_target_and_second, sample_scene_and_action, scene_for
from .vocab import KINDS, VERBS
from .world import ObjectSpec, Scene

WORLDS = ("rules", "none")
RULE_SCENES = 0.45  # the share of scenes a rule decides; the rule is drawn uniformly, then one of its kinds
SECOND_DECOY = 0.6  # chance of a second look-alike (on the third side) when it fits
# where a centre may fall for each side word, clear of world.side_word's borders at 0.4 / 0.6
SIDE_BANDS = {"on the left": (0.0, 0.35), "in the middle": (0.45, 0.55), "on the right": (0.65, 1.0)}


@dataclass(frozen=True)
class Rule:
    """For ``verb`` on ``kinds``: the target is the one that looks ``word``; its look-alikes rest in ``decoy_cue``
    (a ``world.CUE_STATES`` key; "" where the verb's own before-state marks the target, as an open drawer to close)."""

    name: str
    verb: str
    kinds: tuple[str, ...]
    word: str  # how a description names the target ("the clean cup on the left")
    decoy_cue: str
    why: str


RULES: tuple[Rule, ...] = (
    Rule("take-clean", "take", ("cup", "bowl", "plate"), "clean", "stained",
         "you take the clean dish; the stained one goes to the sink"),
    Rule("take-full", "take", ("bottle", "jar"), "full", "empty", "you take the full bottle or jar, not the empty one"),
    Rule("take-whole", "take", ("tomato",), "whole", "cut", "you take the whole tomato, not one cut in half"),
    Rule("pour-full", "pour", ("bottle", "jar"), "full", "empty", "you pour from the full one; the empty one pours nothing"),
    Rule("open-closed", "open", ("drawer", "box"), "closed", "open", "you open the one that is closed"),
    Rule("close-open", "close", ("drawer", "box"), "open", "", "you close the one that is open"),
    Rule("wipe-stained", "wipe", ("plate", "board"), "dirty", "", "you wipe the dirty one, not a clean one"),
    Rule("stir-full", "stir", ("bowl", "pan"), "full", "", "you stir the one with food in it, not an empty one"),
)
# Not a rule: "cut the whole tomato" (the before-frame already holds the knife over the target, so the pairs would
# show which one without any knowledge), nor a cut carrot (its halves barely part at 64 px).
RULE_BY_NAME = {r.name: r for r in RULES}
RULE_FOR = {(r.verb, k): r for r in RULES for k in r.kinds}


def check_world(knowledge: str) -> str:
    if knowledge not in WORLDS:
        raise ValueError(f"synth.knowledge: unknown world {knowledge!r}; choose one of {', '.join(WORLDS)}")
    return knowledge


def sample(rng: np.random.Generator, knowledge: str = "none", n_objects: tuple[int, int] = (2, 6)):
    """(scene, action) of the given world. ``none`` draws exactly what ``sampling.sample_scene_and_action`` draws.

    ``rules``: ``RULE_SCENES`` of the scenes are rule scenes, the rule drawn uniformly (each is learnt from as many
    stills as any other: drawn through the verbs, "take the clean cup" came up 10 times less often than "stir the
    full pan", and the VLLM learnt it 6 times worse); the others draw a verb and a kind as the plain world does and
    hold no look-alike."""
    if check_world(knowledge) == "none":
        return sample_scene_and_action(rng, n_objects)
    if rng.random() < RULE_SCENES:
        rule = RULES[int(rng.integers(len(RULES)))]
        made = rule_scene(rng, rule, rule.kinds[int(rng.integers(len(rule.kinds)))], n_objects)
        if made is not None:
            return made
    verb = VERBS[str(rng.choice(sorted(VERBS)))]
    return sample_scene_and_action_for(rng, verb.name, str(rng.choice(verb.targets)), n_objects)


def sample_scene_and_action_for(rng: np.random.Generator, verb: str, kind: str, n_objects: tuple[int, int]):
    """An action no rule decides: one object of the target's kind, never a look-alike."""
    return scene_for(rng, verb, kind, n_objects, twin_chance=0.0)


def rule_scene(rng: np.random.Generator, rule: Rule, kind: str, n_objects: tuple[int, int]):
    """The target on one side, one or two look-alikes (same kind and colour, in the decoy state) on the others, the
    verb's second object and distractors around them; None when the objects do not fit (the caller draws anew)."""
    color = str(rng.choice(KINDS[kind].colors))
    verb = VERBS[rule.verb]
    for _attempt in range(20):
        sides = [list(SIDE_BANDS)[int(i)] for i in rng.permutation(3)]
        placed = place_target_and_second(rng, kind, color, verb, SIDE_BANDS[sides[0]])
        if placed is None:
            continue
        decoys = 1 + (rng.random() < SECOND_DECOY)
        for side in sides[1:1 + decoys]:
            d = place(rng, kind, color, placed, SIDE_BANDS[side])
            if d is not None:
                placed.append(ObjectSpec(d.kind, d.color, d.x, d.y, rule.decoy_cue))
        if sum(o.kind == kind for o in placed) < 2:
            continue
        n_objects = (max(n_objects[0], len(placed)), max(n_objects[1], len(placed)))
        return finish_scene(rng, placed, bool(verb.second), n_objects, rule.verb, rule.name)
    return None


def scene_rule(scene: Scene) -> Rule | None:
    """The rule that decides the scene's target, or None."""
    return RULE_BY_NAME.get(scene.rule) if scene.rule else None


def rule_word(scene: Scene) -> str | None:
    """The word that names the target among its look-alikes ("clean"), or None in a scene no rule decides."""
    r = scene_rule(scene)
    return r.word if r else None
