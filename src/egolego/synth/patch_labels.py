"""EgoSynth scenes with what lies under every image patch: the labels that pre-train the tiny vision tower.

The paper's LLaVA sees through a CLIP tower pre-trained on 400 M image-text pairs; no such tower exists at 64 px,
and a tower trained from scratch through the LLM's answer tokens never learns where things are (RESULTS.md,
"the tiny VLLM does not look at the image"). These labels give the tower a dense task of its own instead: for
each of the G x G patches, which object kinds and colours cover it, which visible states they are in (stained or
clean, cut or whole, open or closed, empty or full, holding food: what the world's knowledge rules read, as a CLIP
tower knows a dirty plate from a clean one), and on which side of the frame (the words the descriptions use: left / middle / right) the object that covers
most of it stands.

Scenes are drawn from their own random stream (``numpy``'s ``SeedSequence([seed, SALT])``), not from the
dataset's, so pre-training never renders the scenes of a generated dataset's test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .knowledge import sample
from .render import square_frame
from .shapes import entities
from .vocab import COLORS, KINDS
from .world import ObjState, pose, side_word

SALT = 0x5CE7E  # separates this stream from every dataset's default_rng(seed)
MIN_COVER = 0.08  # a patch shows an object when the object's box covers this share of it
SIDES = ("left", "middle", "right")  # the last word of ``world.side_word``
# The visible states of ``object_states``, both sides of each: a rule may pick the object *without* a cue (the clean
# cup among stained ones), and a tower that only knows "stained" leaves the LLM to find the cup where that feature
# is missing, which the tiny one learnt badly (take-clean .38, open-closed .48 of the rule scenes' positions)
STATES = ("stained", "clean", "cut", "whole", "open", "closed", "empty", "full", "food")
_PAIRS = {  # state pair -> the kinds that can be in either state
    ("stained", "clean"): ("cup", "bowl", "plate", "board", "pan"),
    ("cut", "whole"): ("tomato", "carrot"),
    ("open", "closed"): ("drawer", "box", "jar", "bottle"),
    ("empty", "full"): ("bottle", "jar"),
}


def object_states(o: ObjState) -> list[int]:
    """Indices in STATES of the states an object is drawn in."""
    value = {"stained": o.stain, "cut": o.cut, "open": o.open, "empty": o.empty}
    out = [STATES.index(on if value[on] > 0.5 else off) for (on, off), kinds in _PAIRS.items() if o.kind in kinds]
    if o.contents > 0.5:
        out.append(STATES.index("food"))
    return sorted(out)


@dataclass
class PatchLabels:
    images: np.ndarray  # (n, size, size, 3) uint8, squashed to a square like the pairs' input frames
    kinds: np.ndarray  # (n, G*G, len(KINDS)) float32 multi-hot, patches in row-major order
    colors: np.ndarray  # (n, G*G, len(COLORS)) float32 multi-hot
    states: np.ndarray  # (n, G*G, len(STATES)) float32 multi-hot
    side: np.ndarray  # (n, G*G) int64: index in SIDES of the most-covering object, -1 where no object is


def side_index(x: float) -> int:
    """Index in SIDES of the side the descriptions name for a centre at ``x`` (``world.side_word``'s thresholds)."""
    return SIDES.index(side_word(x).rsplit(" ", 1)[-1])


def patch_cover(box: tuple[float, float, float, float], grid: int) -> np.ndarray:
    """(G, G) share of each patch covered by a normalised (x1, y1, x2, y2) box."""
    x1, y1, x2, y2 = box
    edges = np.arange(grid + 1) / grid
    ox = np.clip(np.minimum(x2, edges[1:]) - np.maximum(x1, edges[:-1]), 0, None)  # (G,) per column
    oy = np.clip(np.minimum(y2, edges[1:]) - np.maximum(y1, edges[:-1]), 0, None)  # (G,) per row
    return np.outer(oy, ox) * grid * grid


def scene_patch_labels(n: int, seed: int, size: int, grid: int, knowledge: str = "none") -> PatchLabels:
    """``n`` rendered scenes of the world ``knowledge`` names (2 in 3 before the action, 1 in 3 after it) with their
    per-patch labels."""
    kinds, colors = sorted(KINDS), sorted(COLORS)
    rng = np.random.default_rng(np.random.SeedSequence([seed, SALT]))
    ims = np.zeros((n, size, size, 3), np.uint8)
    k_lab = np.zeros((n, grid * grid, len(kinds)), np.float32)
    c_lab = np.zeros((n, grid * grid, len(colors)), np.float32)
    st_lab = np.zeros((n, grid * grid, len(STATES)), np.float32)
    s_lab = -np.ones((n, grid * grid), np.int64)
    for i in range(n):
        scene, action = sample(rng, knowledge)
        p = pose(scene, action, 1.0 if rng.random() < 1 / 3 else 0.0)
        ims[i] = np.asarray(square_frame(scene, p, size))
        best = np.zeros(grid * grid)
        for e in entities(scene, p):
            if e.index < 0:  # hands: not named in the descriptions' positions
                continue
            o = p.objects[e.index]
            box = e.box()
            cover = patch_cover(box, grid).ravel()  # (G*G,)
            on = cover > MIN_COVER
            k_lab[i, on, kinds.index(o.kind)] = 1
            c_lab[i, on, colors.index(o.color)] = 1
            for k in object_states(o):
                st_lab[i, on, k] = 1
            wins = on & (cover > best)
            s_lab[i, wins] = side_index((box[0] + box[2]) / 2)
            best = np.where(wins, cover, best)
    return PatchLabels(ims, k_lab, c_lab, st_lab, s_lab)
