"""EgoSynth's world: scenes, actions and the pose of every entity at any point of an action.

Coordinates are normalised: x in [0, 1] from left to right, y in [0, 1] from top to bottom of the frame.
Sizes of objects are given as fractions of the frame *height*; ``aspect`` (W / H) converts widths.

An action is a pure function of its progress ``p`` in [0, 1]: ``pose(scene, action, p)`` gives where the
hands are and in which state every object is. ``p = 0`` is the before-state (the input frame), ``p = 1``
the after-state (the action frame). The renderer (``render.py`` with ``shapes.py``) turns a pose into pixels; the judge renders
alternative poses to decide what a generated frame shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .vocab import COLORS, KINDS, VERBS

ASPECT = 16 / 9
SCALE = 1.35  # object size multiplier: keeps objects legible at 64 px
COUNTER_TOP = 0.28  # wall above, counter surface below
COUNTER_FRONT = 0.80  # cabinet front below (drawers live there)
ARM_ORIGIN = {"left": (0.16, 1.30), "right": (0.84, 1.30)}
IDLE_TIP = {"left": (0.27, 0.90), "right": (0.73, 0.90)}
LIQUID = (110, 170, 230)
STAIN = (95, 65, 35)


@dataclass
class ObjectSpec:
    """One object instance placed in a scene (its before-state position)."""

    kind: str
    color: str
    x: float  # centre, normalised
    y: float
    cue: str = ""  # a visible state it rests in ("stained", "cut", "open", "empty"; ``CUE_STATES``), "" for none

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLORS[self.color]

    def size(self) -> tuple[float, float]:
        """(w, h) in normalised frame units."""
        w, h = KINDS[self.kind].size
        return SCALE * w / ASPECT, SCALE * h


@dataclass
class Scene:
    """A counter with objects; the textures come from ``texture_seed``."""

    objects: list[ObjectSpec]
    wall: tuple[int, int, int]
    counter: tuple[int, int, int]
    texture_seed: int
    idle: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(IDLE_TIP))
    rule: str = ""  # the knowledge rule (``synth.knowledge``) that decides its target among look-alikes, "" for none

    def to_dict(self) -> dict:
        """The scene as written to ``truth.jsonl``; an empty ``cue`` / ``rule`` is left out, so a world without
        knowledge writes the records it wrote before those fields existed."""
        d = asdict(self)
        for o in d["objects"]:
            if not o["cue"]:
                del o["cue"]
        if not d["rule"]:
            del d["rule"]
        return d

    @staticmethod
    def from_dict(d: dict) -> Scene:
        return Scene(
            objects=[ObjectSpec(**o) for o in d["objects"]],
            wall=tuple(d["wall"]), counter=tuple(d["counter"]), texture_seed=int(d["texture_seed"]),
            idle={k: tuple(v) for k, v in d["idle"].items()}, rule=d.get("rule", ""),
        )


@dataclass(frozen=True)
class Action:
    """(verb, target object index, second object index or None, hand)."""

    verb: str
    target: int
    second: int | None
    hand: str  # "left" | "right"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ObjState:
    """An object as drawn at one instant."""

    kind: str
    color: str
    x: float
    y: float
    open: float = 0.0  # drawer slid out / lid or cap off
    cut: float = 0.0  # gap between the two halves
    fill: float = 0.0  # liquid level
    tilt: float = 0.0  # 0 upright .. 1 pouring (rotated)
    on: float = 0.0  # stove burners lit
    stain: float = 0.0  # dirty patch
    empty: float = 0.0  # bottle / jar: drawn pale, nothing left in it
    contents: float = 0.0  # has two-colour contents (stir targets)
    mixed: float = 0.0  # contents stirred
    held: bool = False  # drawn above the hands
    hidden: bool = False


@dataclass
class HandState:
    tip: tuple[float, float]  # centre of the hand, normalised
    grip: bool = False


@dataclass
class Pose:
    objects: list[ObjState]
    hands: dict[str, HandState]
    stream: tuple[float, float, float, float] | None = None  # liquid from (x0, y0) to (x1, y1)


def smoothstep(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3 - 2 * t)


def reach_and_change(tau: float) -> tuple[float, float]:
    """Map time within the action (tau = (t - t_start) / duration) to (reach, change) in [0, 1].

    The hand reaches during tau in [0, 0.35]; the object changes during [0.28, 0.40]; from 0.40 on the
    after-state holds (so the PNR frame at 0.55 and EPIC's target at 0.6 both show it, with margin for the
    best-of-7 search).
    """
    return smoothstep(tau / 0.35), smoothstep((tau - 0.28) / 0.12)


def side_word(x: float) -> str:
    return "on the left" if x < 0.4 else "on the right" if x > 0.6 else "in the middle"


def _lerp(a, b, t):
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


# What each resting cue sets on a drawn object (``ObjectSpec.cue``): the states a knowledge rule reads
CUE_STATES = {"stained": {"stain": 1.0}, "cut": {"cut": 1.0}, "open": {"open": 1.0}, "empty": {"empty": 1.0}}


def initial_states(scene: Scene, action: Action | None = None) -> list[ObjState]:
    """Objects in their resting state (with their cue); the action's own before-state is patched on its target."""
    out = []
    for o in scene.objects:
        s = ObjState(o.kind, o.color, o.x, o.y, **CUE_STATES.get(o.cue, {}))
        out.append(s)
    if action is not None:
        v, t = action.verb, out[action.target]
        if v == "close":
            t.open = 1.0
        if v == "turn-off":
            t.on = 1.0
        if v == "wipe":
            t.stain = 1.0
        if v == "stir":
            t.contents = 1.0
    return out


def grip_point(o: ObjState) -> tuple[float, float]:
    """Where a hand takes hold of an object (normalised)."""
    w, h = ObjectSpec(o.kind, o.color, o.x, o.y).size()
    if o.kind == "drawer":
        return (o.x, o.y + 0.1 * h)
    if o.kind == "stove":
        return (o.x + 0.35 * w, o.y + 0.55 * h)  # the knob at the front right
    if o.kind in ("box", "pan", "board", "plate"):
        return (o.x, o.y + 0.3 * h)
    if o.kind in ("bottle", "jar"):
        return (o.x, o.y)
    return (o.x, o.y)


def pose(scene: Scene, action: Action, p: float | tuple[float, float]) -> Pose:
    """The pose at progress ``p`` (a float = reach and change together, or a (reach, change) pair)."""
    r, c = (p, p) if isinstance(p, (int, float)) else p
    objs = initial_states(scene, action)
    hands = {h: HandState(scene.idle[h]) for h in ("left", "right")}
    hand = hands[action.hand]
    o = objs[action.target]
    s = objs[action.second] if action.second is not None else None
    stream = None
    v = action.verb
    ox, oy = o.x, o.y
    g = grip_point(o)

    def held_at(obj: ObjState, xy):
        obj.x, obj.y, obj.held = xy[0], xy[1], True

    if v == "take":
        lift = (0.0, -0.14 * c)
        hand.tip = _lerp(scene.idle[action.hand], g, r)
        hand.tip = (hand.tip[0] + lift[0], hand.tip[1] + lift[1])
        if c > 0:
            held_at(o, (ox + lift[0], oy + lift[1]))
    elif v == "put":
        start = (ox, oy - 0.16)
        dest = (s.x, s.y - 0.05)
        hand.tip = _lerp(start, dest, r)
        held_at(o, hand.tip)
        if c >= 0.5:
            o.held = False
    elif v in ("open", "close"):
        a0, a1 = (0.0, 1.0) if v == "open" else (1.0, 0.0)
        o.open = a0 + (a1 - a0) * c
        top = (g[0], oy - 0.5 * ObjectSpec(o.kind, o.color, ox, oy).size()[1])
        if o.kind == "drawer":  # the handle slides towards the camera (down in the image)
            def handle(a):
                return (g[0], g[1] + 0.07 * a)
        elif o.kind == "box":  # the lid flap lifts, held at its right corner so the opening stays visible
            bw = ObjectSpec(o.kind, o.color, ox, oy).size()[0]

            def handle(a):
                return (top[0] + 0.45 * bw, top[1] - 0.05 * a)
        else:  # jar / bottle: the cap comes off into the hand
            def handle(a):
                return (top[0], top[1] - 0.12 * a)
        start = handle(a0)
        reach = _lerp(scene.idle[action.hand], start, r)
        now = handle(o.open)
        hand.tip = (reach[0] + now[0] - start[0], reach[1] + now[1] - start[1])
    elif v == "cut":
        above, down = (ox + 0.01, oy - 0.17), (ox + 0.01, oy - 0.06)
        hand.tip = _lerp(above, down, c)
        held_at(s, hand.tip)
        o.cut = c
    elif v == "pour":
        dest = (s.x + (0.07 if action.hand == "right" else -0.07), s.y - 0.2)
        hand.tip = _lerp(scene.idle[action.hand], g, r) if c <= 0 else _lerp(g, dest, c)
        if c > 0:
            held_at(o, hand.tip)
            o.tilt = c
            s.fill = c
            if c >= 0.5:
                stream = (dest[0] + (-0.05 if action.hand == "right" else 0.05), dest[1] - 0.03, s.x, s.y)
    elif v == "wipe":
        spot = (ox + 0.02, oy - 0.01)
        sg = grip_point(s)
        hand.tip = _lerp(scene.idle[action.hand], sg, r) if c <= 0 else _lerp(sg, spot, c)
        if c > 0:
            held_at(s, hand.tip)
        o.stain = 1 - c
    elif v == "push":
        shift = -0.12 * c
        hand.tip = _lerp(scene.idle[action.hand], g, r)
        hand.tip = (hand.tip[0], hand.tip[1] + shift)
        o.y = oy + shift
    elif v in ("turn-on", "turn-off"):
        hand.tip = _lerp(scene.idle[action.hand], g, r)
        o.on = c if v == "turn-on" else 1 - c
    elif v == "stir":
        sg = grip_point(s)
        spot = (ox + 0.02, oy - 0.03)
        hand.tip = _lerp(scene.idle[action.hand], sg, r) if c <= 0 else _lerp(sg, spot, c)
        if c > 0:
            held_at(s, hand.tip)
        o.mixed = c
    else:  # pragma: no cover - guarded by VERBS
        raise ValueError(f"unknown verb {v!r}")
    hand.grip = r >= 1 or any(x.held for x in objs)
    return Pose(objs, hands, stream)


# ----------------------------------------------------------------------------- sampling


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
    target's kind in another colour, drawn at random: the label alone ("take cup") is ambiguous and nothing in the
    before-frame tells which one is meant. ``synth.knowledge``'s sampler calls this with ``twin_chance`` 0 for the
    actions its rules do not decide.
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
        placed: list[ObjectSpec] = []
        tgt = place(rng, target_kind, color, placed)
        if tgt is None:
            continue
        placed.append(tgt)
        second_idx = None
        if verb.second:
            sk = str(rng.choice(verb.second))
            sec = place(rng, sk, str(rng.choice(KINDS[sk].colors)), placed)
            if sec is None:
                continue
            placed.append(sec)
            second_idx = 1
        if len(k.colors) > 1 and rng.random() < twin_chance:  # ambiguous twin
            twin = place(rng, target_kind, str(rng.choice([c for c in k.colors if c != color])), placed)
            if twin is not None:
                placed.append(twin)
        return finish_scene(rng, placed, second_idx is not None, n_objects, verb.name)
    raise RuntimeError("could not place objects; the scene is too crowded")  # pragma: no cover


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
