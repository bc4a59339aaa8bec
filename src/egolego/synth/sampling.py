"""Drawing EgoSynth's scenes and actions at random: where objects go, which action a scene affords.

Split from ``world.py`` (which says what a scene and an action *are* and how an action unfolds). The order of the
random draws is the dataset's identity — a world without knowledge rules (``synth.knowledge: none``) must draw the
same scenes as before (``tests/synth``' golden digest) — so change these functions only with that test.
"""

from __future__ import annotations

import numpy as np

from .vocab import KINDS, VERBS
from .world import COUNTER_FRONT, IDLE_TIP, Action, ObjectSpec, Scene


def _overlaps(a: ObjectSpec, b: ObjectSpec, pad: float = 0.02) -> bool:
    aw, ah = a.size()
    bw, bh = b.size()
    return abs(a.x - b.x) < (aw + bw) / 2 + pad and abs(a.y - b.y) < (ah + bh) / 2 + pad


def place(rng: np.random.Generator, kind: str, color: str, placed: list[ObjectSpec],
          x_range: tuple[float, float] | None = None) -> ObjectSpec | None:
    """A spot for a new object that overlaps none of ``placed`` (None after 60 tries); ``x_range`` narrows where its
    centre may fall (None when the object cannot fit there)."""
    w, h = ObjectSpec(kind, color, 0, 0).size()
    lo, hi = (0.12 + w / 2, 0.88 - w / 2) if kind == "drawer" else (0.06 + w / 2, 0.94 - w / 2)
    if x_range is not None:
        lo, hi = max(lo, x_range[0]), min(hi, x_range[1])
        if lo > hi:
            return None
    for _ in range(60):
        if kind == "drawer":
            x, y = rng.uniform(lo, hi), COUNTER_FRONT + 0.09
        else:
            x = rng.uniform(lo, hi)
            y = rng.uniform(0.46 + h / 2 * 0.3, 0.74 - h / 2)
        cand = ObjectSpec(kind, color, float(x), float(y))
        if not any(_overlaps(cand, q) for q in placed):
            return cand
    return None


def sample_scene_and_action(rng: np.random.Generator, n_objects: tuple[int, int] = (2, 6),
                            twin_chance: float = 0.35) -> tuple[Scene, Action]:
    """Draw a scene with 2-6 objects and one action in it: the world without knowledge (``synth.knowledge: none``).

    About one scene in three (``twin_chance`` where the kind comes in several colours) holds a second object of the
    target's kind in another colour, drawn at random: the label alone ("take cup") is ambiguous, and for most verbs
    nothing in the before-frame tells which one is meant. Not for all: a verb whose precondition the world draws on the
    target alone (``world.initial_states``: the drawer to close is open, the plate to wipe stained, the bowl to stir
    full) shows it (RESULTS.md, 2026-12-08 control world, test seed 2). ``synth.knowledge``'s sampler calls this with
    ``twin_chance`` 0 for the actions its rules do not decide.
    """
    verb = VERBS[str(rng.choice(sorted(VERBS)))]
    target_kind = str(rng.choice(verb.targets))
    return scene_for(rng, verb.name, target_kind, n_objects, twin_chance)


def scene_for(rng: np.random.Generator, verb_name: str, target_kind: str, n_objects: tuple[int, int] = (2, 6),
              twin_chance: float = 0.35) -> tuple[Scene, Action]:
    """A scene for an action whose verb and target kind are drawn already (``sample_scene_and_action``)."""
    verb = VERBS[verb_name]
    k = KINDS[target_kind]
    color = str(rng.choice(k.colors))
    for _attempt in range(50):
        placed = place_target_and_second(rng, target_kind, color, verb)
        if placed is None:
            continue
        if len(k.colors) > 1 and rng.random() < twin_chance:  # ambiguous twin
            twin = place(rng, target_kind, str(rng.choice([c for c in k.colors if c != color])), placed)
            if twin is not None:
                placed.append(twin)
        return finish_scene(rng, placed, bool(verb.second), n_objects, verb.name)
    raise RuntimeError("could not place objects; the scene is too crowded")  # pragma: no cover


def place_target_and_second(rng: np.random.Generator, kind: str, color: str, verb,
                            x_range: tuple[float, float] | None = None) -> list[ObjectSpec] | None:
    """``[target]``, or ``[target, second]`` for a verb with a second object (a kind drawn from ``verb.second``), the
    target's centre within ``x_range`` when given; None when either does not fit (the caller draws anew)."""
    target = place(rng, kind, color, [], x_range)
    if target is None:
        return None
    placed = [target]
    if verb.second:
        sk = str(rng.choice(verb.second))
        second = place(rng, sk, str(rng.choice(KINDS[sk].colors)), placed)
        if second is None:
            return None
        placed.append(second)
    return placed


def finish_scene(rng: np.random.Generator, placed: list[ObjectSpec], has_second: bool, n_objects: tuple[int, int],
                 verb: str | None = None, rule: str = "") -> tuple[Scene, Action]:
    """Distractors around the placed target (``placed[0]``) and second object (``placed[1]`` when ``has_second``),
    then the object order shuffled, the room's colours, the idle hands and the acting hand drawn."""
    target_kind = placed[0].kind
    n_total = int(rng.integers(n_objects[0], n_objects[1] + 1))
    used = {q.kind for q in placed}
    pool = [n for n in sorted(KINDS) if n not in used and n != "stove"] + ["stove"] * (target_kind != "stove")
    while len(placed) < n_total and pool:
        kind = str(rng.choice(pool))
        pool.remove(kind)
        d = place(rng, kind, str(rng.choice(KINDS[kind].colors)), placed)
        if d is not None:
            placed.append(d)
    # shuffle object order so that the target is not always index 0
    order = rng.permutation(len(placed))
    objects = [placed[i] for i in order]
    inv = {int(old): new for new, old in enumerate(order)}
    wall = tuple(int(v) for v in rng.integers(150, 230, size=3))
    counter = tuple(int(v) for v in rng.integers(90, 190, size=3))
    idle = {h: (IDLE_TIP[h][0] + float(rng.uniform(-0.03, 0.03)), IDLE_TIP[h][1] + float(rng.uniform(-0.02, 0.02)))
            for h in IDLE_TIP}
    scene = Scene(objects, wall, counter, int(rng.integers(0, 2**31 - 1)), idle, rule)
    action = Action(verb, inv[0], inv[1] if has_second else None, _choose_hand(rng, placed[0].x))
    return scene, action


def _choose_hand(rng: np.random.Generator, x: float) -> str:
    """The hand nearest the target (either one in the middle third); about one time in seven the other one."""
    hand = "left" if x < 0.35 else "right" if x > 0.65 else str(rng.choice(["left", "right"]))
    if rng.random() < 0.15:  # people sometimes cross over
        hand = "right" if hand == "left" else "left"
    return hand


def possible_actions(scene: Scene) -> list[tuple[str, int, int | None]]:
    """Every (verb, target index, second index or None) the scene's objects allow."""
    out = []
    for name in sorted(VERBS):
        verb = VERBS[name]
        for i, o in enumerate(scene.objects):
            if o.kind not in verb.targets:
                continue
            if not verb.second:
                out.append((name, i, None))
            out.extend((name, i, j) for j, q in enumerate(scene.objects) if j != i and q.kind in verb.second)
    return out


def sample_action_in(rng: np.random.Generator, scene: Scene, exclude: set[tuple[str, int, int | None]] = frozenset()
                     ) -> Action | None:
    """Another action in an existing scene (``synth.actions_per_scene``): uniform over what its objects allow,
    minus ``exclude``; None when nothing is left. One view then precedes several actions and only the request
    tells them apart, as in a real kitchen, where one view affords many actions."""
    options = [a for a in possible_actions(scene) if a not in exclude]
    if not options:
        return None
    verb, target, second = options[int(rng.integers(len(options)))]
    return Action(verb, target, second, _choose_hand(rng, scene.objects[target].x))
