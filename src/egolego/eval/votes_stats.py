"""The user study's statistics (paper Fig. 4, 6): win rates and the aligned share with 95 % Wilson intervals, votes
per rater. They read vote dicts (``app.votes.read_votes``'s rows), so the report can show them without reaching up
into the web app that records the votes."""

from __future__ import annotations

import math
from collections import Counter

ALIGNED, NOT_ALIGNED = "aligned", "not aligned"  # the description study's two answers


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n (well-behaved at 0, 1 and small n)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rates(votes: list[dict]) -> dict[str, dict]:
    """Per method: wins, trials it was shown in, win rate (the paper's: picked / all trials) and its interval."""
    votes = [v for v in votes if v["study"] == "methods"]
    shown = Counter(m for v in votes for m in v["shown"])
    wins = Counter(v["choice"] for v in votes)
    out = {}
    for m in sorted(shown, key=lambda m: (-wins[m], m)):
        lo, hi = wilson(wins[m], shown[m])
        out[m] = {"wins": wins[m], "n": shown[m], "rate": wins[m] / shown[m], "lo": lo, "hi": hi}
    return out


def aligned_rate(votes: list[dict]) -> dict | None:
    """Description study: the share of votes saying the description matches the two frames, with its interval."""
    votes = [v for v in votes if v["study"] == "descriptions"]
    if not votes:
        return None
    k = sum(v["choice"] == ALIGNED for v in votes)
    lo, hi = wilson(k, len(votes))
    return {"aligned": k, "n": len(votes), "rate": k / len(votes), "lo": lo, "hi": hi}


def rater_counts(votes: list[dict]) -> dict[str, dict[str, int]]:
    """rater -> {study: votes}."""
    out: dict[str, dict[str, int]] = {}
    for v in votes:
        out.setdefault(v["rater"], Counter())[v["study"]] += 1
    return {r: dict(c) for r, c in sorted(out.items())}
