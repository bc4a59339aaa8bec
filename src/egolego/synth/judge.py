"""The action-accuracy judge: does a frame show the right hand at the right object in the right state?

EgoSynth knows each scene exactly, so the judge *renders the alternatives* and asks which one the frame
resembles, region by region:

- hand:   the truth vs. the same action done with the other hand, and vs. no reach at all (the before-state);
- object: the truth vs. the same action applied to every other object of the scene;
- state:  the truth vs. the hand in place but the object unchanged.

Each comparison looks only at the pixels where the two renders differ, on a slightly smoothed half-size
grid (so camera jitter and blur of a pixel or two do not matter). The score
``(d(F, alt) - d(F, truth)) / d(truth, alt)`` is 1 for the truth, -1 for the alternative and ~0 for noise
or for a frame that is halfway; a comparison passes above ``MARGIN``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .render import frame_size, render_canvas
from .vocab import VERBS
from .world import Action, Scene, pose

MARGIN = 0.25
WORK_SIZE = 64  # judge at 112 x 64, whatever the frame size
DIFF_THRESHOLD = 24.0  # a pixel belongs to a comparison's region when the renders differ by more (sum of RGB)


@dataclass
class Verdict:
    hand: bool
    object: bool
    state: bool
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def all(self) -> bool:
        return self.hand and self.object and self.state


def _smooth(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H/2, W/2, 3) float, a 2x2 mean followed by a 3x3 box blur."""
    x = img.astype(np.float32)
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(p[i:i + x.shape[0], j:j + x.shape[1]] for i in range(3) for j in range(3)) / 9.0


def _to_work(frame: np.ndarray | Image.Image) -> np.ndarray:
    """Any frame (square generated or original aspect, any size) to the judge's 112 x 64 grid."""
    im = frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame, dtype=np.uint8))
    w, h = frame_size(WORK_SIZE)
    return np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR))


def _render(scene: Scene, action: Action, p) -> np.ndarray:
    w, h = frame_size(WORK_SIZE)
    return render_canvas(scene, pose(scene, action, p), w, h, 0)


def _score(f: np.ndarray, t: np.ndarray, a: np.ndarray, raw_t: np.ndarray, raw_a: np.ndarray) -> float | None:
    """Margin of F towards T against A over the region where T and A differ; None if they do not."""
    region = np.abs(raw_t.astype(np.int32) - raw_a.astype(np.int32)).sum(-1) > DIFF_THRESHOLD
    region = np.asarray(Image.fromarray(region.astype(np.uint8) * 255).resize(
        (t.shape[1], t.shape[0]), Image.BOX)) > 0
    if region.sum() < 2:
        return None
    d_ft = np.abs(f - t)[region].mean()
    d_fa = np.abs(f - a)[region].mean()
    d_ta = np.abs(t - a)[region].mean()
    return float((d_fa - d_ft) / max(d_ta, 1e-6))


def alternatives(scene: Scene, action: Action, at=1.0) -> dict[str, list[tuple[str, Action, object]]]:
    """The renders the truth is compared against, grouped by what they test, at the pose ``at`` (1.0: done)."""
    other = "right" if action.hand == "left" else "left"
    objs = [i for i in range(len(scene.objects)) if i not in (action.target, action.second)]
    reach = at if isinstance(at, (int, float)) else at[0]
    return {
        "hand": [("other_hand", Action(action.verb, action.target, action.second, other), at),
                 ("no_reach", action, 0.0)],
        "object": [(f"object_{i}", Action(action.verb, i, action.second, action.hand), at) for i in objs],
        "state": [("unchanged", action, (reach, 0.0))],
    }


def judge(frame, truth: dict, at: float | tuple[float, float] = 1.0) -> Verdict:
    """Judge one frame against one ground-truth record (a line of ``truth.jsonl``) at the pose ``at`` (a
    (reach, change) pair, ``synth.pairs.frame_pose``; 1.0 = the action done, the single-frame task).

    Part-way, a comparison whose renders barely differ is skipped (at the start of the reach the hand is still
    near its rest; before the change the state test has nothing to look at), so it passes."""
    scene = Scene.from_dict(truth["scene"])
    action = Action(**truth["action"])
    raw_t = _render(scene, action, at)
    f, t = _smooth(_to_work(frame)), _smooth(raw_t)
    ok, scores = {}, {}
    for group, alts in alternatives(scene, action, at).items():
        passed = True
        for name, alt_action, p in alts:
            raw_a = _render(scene, alt_action, p)
            s = _score(f, t, _smooth(raw_a), raw_t, raw_a)
            if s is None:
                continue
            scores[name] = round(s, 3)
            passed &= s > MARGIN
        ok[group] = passed
    return Verdict(ok["hand"], ok["object"], ok["state"], scores)


def accuracy(verdicts: list[Verdict]) -> dict[str, float]:
    """Hand-, object-, state- and all-correct rates."""
    n = max(1, len(verdicts))
    return {"hand": sum(v.hand for v in verdicts) / n, "object": sum(v.object for v in verdicts) / n,
            "state": sum(v.state for v in verdicts) / n, "all": sum(v.all for v in verdicts) / n}


def other_action(scene: Scene, action: Action, rng: np.random.Generator) -> Action | None:
    """A different plausible action in the same scene (another object; a verb it affords)."""
    choices = []
    for i, o in enumerate(scene.objects):
        if i == action.target:
            continue
        for v in VERBS.values():
            if o.kind not in v.targets:
                continue
            seconds = [j for j, q in enumerate(scene.objects) if j != i and q.kind in v.second]
            if v.second and not seconds:
                continue
            for hand in ("left", "right"):
                choices.append(Action(v.name, i, seconds[0] if seconds else None, hand))
    if not choices:
        return None
    return choices[int(rng.integers(len(choices)))]



