"""Polygons for every entity of a pose: objects in their state, forearms and hands.

One source of geometry serves three consumers: the renderer fills the polygons, the annotation writers
turn them into VISOR segments and Ego4D / EPIC boxes, and the judge compares rendered alternatives.
All points are normalised (x, y) in frame units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .vocab import COLORS, SKIN, SLEEVE
from .world import ARM_ORIGIN, ASPECT, LIQUID, STAIN, ObjectSpec, ObjState, Pose, Scene

Poly = list[tuple[float, float]]
RGB = tuple[int, int, int]

CONTENT_A, CONTENT_B = (200, 60, 40), (245, 225, 120)
GLOW, BURNER = (250, 120, 30), (90, 90, 95)


@dataclass
class Entity:
    """A drawable thing: hands are named "left hand" / "right hand", objects by their index."""

    name: str  # "left hand", "right hand" or the object's kind
    index: int  # object index in the scene, -1 for hands
    parts: list[tuple[Poly, RGB]]
    layer: int  # draw order: 0 resting objects, 1 arms, 2 held objects

    def points(self) -> Poly:
        return [p for poly, _ in self.parts for p in poly]

    def box(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2), normalised, not clipped."""
        xs = [p[0] for p in self.points()]
        ys = [p[1] for p in self.points()]
        return min(xs), min(ys), max(xs), max(ys)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16, a0: float = 0.0, a1: float = 2 * math.pi) -> Poly:
    """Ellipse (or arc when a0/a1 given) with rx in height units (converted by the aspect ratio)."""
    full = abs(a1 - a0) >= 2 * math.pi - 1e-9
    k = n if full else n + 1
    return [(cx + rx / ASPECT * math.cos(a0 + (a1 - a0) * i / (n if full else n)),
             cy + ry * math.sin(a0 + (a1 - a0) * i / (n if full else n))) for i in range(k)]


def rect(cx: float, cy: float, w: float, h: float) -> Poly:
    """Axis-aligned rectangle; w and h are already in frame units."""
    return [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2), (cx - w / 2, cy + h / 2)]


def rotate(poly: Poly, pivot: tuple[float, float], angle: float) -> Poly:
    """Rotate in isotropic (height) units so shapes keep their proportions."""
    ca, sa = math.cos(angle), math.sin(angle)
    px, py = pivot[0] * ASPECT, pivot[1]
    out = []
    for x, y in poly:
        dx, dy = x * ASPECT - px, y - py
        out.append(((px + ca * dx - sa * dy) / ASPECT, py + sa * dx + ca * dy))
    return out


def shade(rgb: RGB, f: float) -> RGB:
    return tuple(int(max(0, min(255, round(v * f)))) for v in rgb)  # type: ignore[return-value]


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(a[i] + (b[i] - a[i]) * t)) for i in range(3))  # type: ignore[return-value]


def _inner(o: ObjState, cx: float, cy: float, rx: float, ry: float) -> list[tuple[Poly, RGB]]:
    """Contents of an open container: liquid, or two-colour food that stirring mixes."""
    parts: list[tuple[Poly, RGB]] = []
    if o.fill > 0.5:
        parts.append((ellipse(cx, cy, rx * 0.85, ry * 0.7), LIQUID))
    if o.contents > 0.5:
        if o.mixed > 0.5:
            parts.append((ellipse(cx, cy, rx * 0.8, ry * 0.65), mix(CONTENT_A, CONTENT_B, 0.5)))
        else:
            parts.append((ellipse(cx - rx * 0.35 / ASPECT, cy, rx * 0.4, ry * 0.55), CONTENT_A))
            parts.append((ellipse(cx + rx * 0.35 / ASPECT, cy, rx * 0.4, ry * 0.55), CONTENT_B))
    return parts


def object_parts(o: ObjState) -> list[tuple[Poly, RGB]]:
    """The polygons of one object in its current state."""
    col = COLORS[o.color]
    w, h = ObjectSpec(o.kind, o.color, o.x, o.y).size()
    hn = h  # height in frame units (= height units)
    x, y = o.x, o.y
    k = o.kind
    parts: list[tuple[Poly, RGB]] = []
    if k == "cup":
        parts.append((rect(x - w * 0.08, y, w * 0.8, hn), col))
        parts.append((rect(x + w * 0.4, y, w * 0.22, hn * 0.45), shade(col, 0.7)))
        parts.append((ellipse(x - w * 0.08, y - hn / 2, w * 0.4 * ASPECT, hn * 0.1), LIQUID if o.fill > 0.5 else shade(col, 0.55)))
        if o.stain > 0.5:  # a dirty cup: a dark smear over most of its body
            parts.append((ellipse(x - w * 0.08, y + hn * 0.08, w * 0.32 * ASPECT, hn * 0.3), STAIN))
    elif k in ("bowl", "pan"):
        if k == "pan":
            parts.append((rect(x + w * 0.62, y - hn * 0.05, w * 0.45, hn * 0.16), (30, 30, 30)))
            parts.append((ellipse(x, y, w * 0.5 * ASPECT, hn * 0.5), col))
        else:
            parts.append((ellipse(x, y - hn * 0.15, w * 0.5 * ASPECT, hn * 0.65, a0=0, a1=math.pi), col))
        rim_y = y - hn * (0.05 if k == "pan" else 0.15)
        parts.append((ellipse(x, rim_y, w * 0.44 * ASPECT, hn * 0.3), shade(col, 0.6)))
        parts += _inner(o, x, rim_y, w * 0.42 * ASPECT, hn * 0.28)
        if o.stain > 0.5:  # a dirty bowl or pan: a dark patch inside the rim
            parts.append((ellipse(x + w * 0.04, rim_y, w * 0.3 * ASPECT, hn * 0.22), STAIN))
    elif k == "plate":
        parts.append((ellipse(x, y, w * 0.5 * ASPECT, hn * 0.5), col))
        parts.append((ellipse(x, y, w * 0.33 * ASPECT, hn * 0.33), shade(col, 0.88)))
        if o.stain > 0.5:
            parts.append((ellipse(x + w * 0.05, y, w * 0.2 * ASPECT, hn * 0.22), STAIN))
    elif k == "board":
        parts.append((rect(x, y, w, hn), shade(col, 0.75)))
        parts.append((rect(x, y, w * 0.9, hn * 0.8), mix(col, (230, 190, 130), 0.6)))
        if o.stain > 0.5:
            parts.append((ellipse(x + w * 0.05, y, w * 0.2 * ASPECT, hn * 0.28), STAIN))
    elif k == "knife":
        parts.append((rect(x - w * 0.17, y, w * 0.66, hn * 0.7), (200, 200, 210)))
        parts.append((rect(x + w * 0.33, y, w * 0.34, hn), (25, 25, 25)))
    elif k == "spoon":
        parts.append((rect(x + w * 0.12, y, w * 0.76, hn * 0.5), col))
        parts.append((ellipse(x - w * 0.36, y, w * 0.16 * ASPECT, hn * 0.9), shade(col, 1.15)))
    elif k in ("bottle", "jar"):
        body_h = hn * (0.7 if k == "bottle" else 0.82)
        top = y - hn / 2
        body = rect(x, y + hn / 2 - body_h / 2, w, body_h)
        neck = rect(x, top + hn * 0.15, w * 0.45, hn * 0.2) if k == "bottle" else []
        cap_w = w * (0.55 if k == "bottle" else 1.05)
        cap_y = top + hn * 0.04 - 0.12 * o.open
        cap = rect(x, cap_y, cap_w, hn * 0.1)
        if o.empty > 0.5:  # nothing left inside: a pale body
            col = mix(col, (235, 235, 235), 0.7)
        shapes = [(body, col)] + ([(neck, shade(col, 0.8))] if neck else [])
        if o.open > 0.5:
            mouth = ellipse(x, top + (hn * 0.06 if k == "bottle" else hn * 0.18), w * 0.2 * ASPECT if k == "bottle" else w * 0.45 * ASPECT, hn * 0.04)
            shapes.append((mouth, (20, 20, 20)))
        shapes.append((cap, (240, 240, 240) if o.color != "white" else (30, 30, 30)))
        if abs(o.tilt) > 1e-6:
            ang = -math.copysign(1.8, o.tilt) * min(1.0, abs(o.tilt))
            shapes = [(rotate(p, (x, y), ang), c) for p, c in shapes]
        parts += shapes
    elif k == "sponge":
        parts.append((rect(x, y + hn * 0.12, w, hn * 0.76), col))
        parts.append((rect(x, y - hn * 0.38, w, hn * 0.26), (50, 140, 60)))
    elif k == "box":
        parts.append((rect(x, y + hn * 0.1, w, hn * 0.8), col))
        if o.open > 0.5:
            parts.append((rect(x, y - hn * 0.22, w * 0.9, hn * 0.18), (25, 20, 15)))
            parts.append((rect(x, y - hn * 0.42 - 0.05, w, hn * 0.16), shade(col, 1.2)))
        else:
            parts.append((rect(x, y - hn * 0.3, w, hn * 0.2), shade(col, 0.75)))
    elif k == "drawer":
        dy = 0.07 * o.open
        if o.open > 0.05:
            parts.append((rect(x, y - hn / 2 + dy / 2, w * 0.92, dy), (25, 20, 15)))
        parts.append((rect(x, y + dy, w, hn), col))
        parts.append((rect(x, y + dy + hn * 0.1, w * 0.3, hn * 0.14), (40, 40, 40)))
    elif k == "stove":
        parts.append((rect(x, y, w, hn), (30, 30, 32)))
        ring = GLOW if o.on > 0.5 else BURNER
        for bx in (-0.22, 0.18):
            parts.append((ellipse(x + w * bx, y - hn * 0.08, w * 0.17 * ASPECT, hn * 0.3), ring))
            parts.append((ellipse(x + w * bx, y - hn * 0.08, w * 0.09 * ASPECT, hn * 0.16), (30, 30, 32)))
        kx, ky = x + w * 0.35, y + hn * 0.32
        parts.append((ellipse(kx, ky, hn * 0.16, hn * 0.16), (200, 200, 200)))
        ind = rect(kx, ky, 0.006, hn * 0.26) if o.on <= 0.5 else rect(kx, ky, hn * 0.26 / ASPECT, 0.012)
        parts.append((ind, (200, 30, 30)))
    if k == "tomato":
        parts += _halves(o, w, hn, lambda cx, cy: ellipse(cx, cy, w * 0.5 * ASPECT, hn * 0.5), col, (250, 140, 120))
        if o.cut <= 0.5:
            parts.append((ellipse(x, y - hn * 0.42, w * 0.16 * ASPECT, hn * 0.1), (40, 140, 40)))
    elif k == "carrot":
        body = [(x - w / 2, y), (x + w * 0.3, y - hn / 2), (x + w * 0.3, y + hn / 2)]
        parts += _halves(o, w, hn, lambda cx, cy: [(p[0] + cx - x, p[1] + cy - y) for p in body], col, (250, 180, 90))
        parts.append((rect(x + w * 0.4, y, w * 0.2, hn * 0.7), (50, 150, 50)))
    return parts


def _halves(o: ObjState, w: float, h: float, shape, col: RGB, flesh: RGB) -> list[tuple[Poly, RGB]]:
    """Food drawn whole, or as two halves with a visible gap and a cut face once cut."""
    if o.cut <= 0.05:
        return [(shape(o.x, o.y), col)]
    gap = 0.035 * o.cut
    whole = shape(o.x, o.y)
    left = [(min(px, o.x) - gap, py) for px, py in whole]
    right = [(max(px, o.x) + gap, py) for px, py in whole]
    face_w = 0.01
    return [(left, col), (right, col),
            (rect(o.x - gap + face_w / 2, o.y, face_w, h * 0.8), flesh),
            (rect(o.x + gap - face_w / 2, o.y, face_w, h * 0.8), flesh)]


def arm_parts(side: str, tip: tuple[float, float], grip: bool) -> list[tuple[Poly, RGB]]:
    """A sleeved forearm from the bottom edge and a hand at ``tip``."""
    ox, oy = ARM_ORIGIN[side]
    dx, dy = (tip[0] - ox) * ASPECT, tip[1] - oy
    n = math.hypot(dx, dy) or 1.0
    px, py = -dy / n, dx / n  # unit normal in height units
    half = 0.05

    def quad(a: float, b: float, width: float) -> Poly:
        ax, ay = ox + dx * a / ASPECT, oy + dy * a
        bx, by = ox + dx * b / ASPECT, oy + dy * b
        return [(ax + px * width / ASPECT, ay + py * width), (bx + px * width / ASPECT, by + py * width),
                (bx - px * width / ASPECT, by - py * width), (ax - px * width / ASPECT, ay - py * width)]

    wrist = max(0.0, 1 - 0.09 / n)
    sleeve_end = max(0.0, 1 - 0.13 / n)
    parts = [(quad(0.0, sleeve_end, half), SLEEVE), (quad(sleeve_end, wrist, half * 0.75), SKIN)]
    r = 0.048 if grip else 0.055
    parts.append((ellipse(tip[0], tip[1], r, r * 0.9), SKIN))
    if not grip:  # open hand: the fingers point away from the arm
        fx, fy = tip[0] + dx / n * 0.05 / ASPECT, tip[1] + dy / n * 0.05
        parts.append((ellipse(fx, fy, 0.035, 0.035), SKIN))
    return parts


def entities(scene: Scene, p: Pose) -> list[Entity]:
    """Everything to draw, in draw order."""
    out = [Entity(o.kind, i, object_parts(o), 2 if o.held else 0) for i, o in enumerate(p.objects) if not o.hidden]
    for side in ("left", "right"):
        hs = p.hands[side]
        out.append(Entity(f"{side} hand", -1, arm_parts(side, hs.tip, hs.grip), 1))
    resting = sorted((e for e in out if e.layer == 0), key=lambda e: p.objects[e.index].y)
    return resting + [e for e in out if e.layer == 1] + [e for e in out if e.layer == 2]


def hand_box(e: Entity) -> tuple[float, float, float, float]:
    """The box of the hand itself (hand and wrist, not the sleeve), as annotators draw it."""
    pts = [pt for poly, c in e.parts if c == SKIN for pt in poly]
    xs, ys = [q[0] for q in pts], [q[1] for q in pts]
    return min(xs), min(ys), max(xs), max(ys)
