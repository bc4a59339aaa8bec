"""EgoSynth's world: scenes, actions and the pose of every entity at any point of an action.

Coordinates are normalised: x in [0, 1] from left to right, y in [0, 1] from top to bottom of the frame.
Sizes of objects are given as fractions of the frame *height*; ``aspect`` (W / H) converts widths.

An action is a pure function of its progress ``p`` in [0, 1]: ``pose(scene, action, p)`` gives where the
hands are and in which state every object is. ``p = 0`` is the before-state (the input frame), ``p = 1``
the after-state (the action frame). The renderer (``render.py`` with ``shapes.py``) turns a pose into pixels; the judge renders
alternative poses to decide what a generated frame shows. Drawing scenes and actions at random is ``sampling.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .vocab import COLORS, KINDS

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
