"""User-study votes in SQLite: one row per vote, WAL mode, safe with several raters (processes or threads) at once.

Two studies share the table:

- ``methods`` (paper Fig. 10, win rates of Fig. 4): the rater saw the input frame, the action label and the
  outputs of the methods in ``shown`` order (a fresh random order per trial) and picked ``choice``.
- ``descriptions`` (paper Fig. 6): the rater saw the input and target frames and the VLLM's description, and
  answered ``aligned`` or ``not aligned`` (``shown`` holds the description as shown).

A rater votes once per pair and study (a unique index). Every write is one short ``BEGIN IMMEDIATE`` transaction on its own connection, with a busy timeout, so
concurrent raters queue on SQLite's lock instead of failing; a vote is on disk when ``record_vote`` returns.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import Counter
from pathlib import Path

STUDIES = ("methods", "descriptions")
ALIGNED, NOT_ALIGNED = "aligned", "not aligned"
SCHEMA = """CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study TEXT NOT NULL,
    rater TEXT NOT NULL,
    pair_id TEXT NOT NULL,
    shown TEXT NOT NULL,      -- JSON: the methods in the order shown (methods) / the description (descriptions)
    choice TEXT NOT NULL,
    created REAL NOT NULL     -- seconds since the epoch (UTC)
);
CREATE UNIQUE INDEX IF NOT EXISTS votes_once ON votes (study, rater, pair_id);"""
MAX_RATER = 64


def connect(db: str | Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(db), timeout=30, isolation_level=None)  # autocommit; explicit transactions below
    con.execute("PRAGMA busy_timeout = 30000")
    return con


def init_db(db: str | Path) -> Path:
    """Create the database (WAL mode) if needed; returns its path."""
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = connect(db)
        try:
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise ValueError(f"{db}: SQLite refused WAL mode (got {mode!r}); put the database on a local disk")
            con.executescript(SCHEMA)
        finally:
            con.close()
    except sqlite3.Error as e:
        raise ValueError(f"{db} is not a usable votes database ({e})") from None
    return db


def clean_rater(rater: str) -> str:
    """A rater id as typed, trimmed; raises ValueError when empty or too long."""
    r = " ".join(str(rater or "").split())
    if not r:
        raise ValueError("enter a rater id first")
    if len(r) > MAX_RATER:
        raise ValueError(f"a rater id has at most {MAX_RATER} characters")
    return r


def record_vote(db: str | Path, study: str, rater: str, pair_id: str, shown, choice: str) -> int | None:
    """Store one vote; returns its row id, or None when this rater already voted on this pair in this study
    (a double click, or the same rater in two browser tabs: the first vote counts)."""
    if study not in STUDIES:
        raise ValueError(f"study must be one of {STUDIES}, got {study!r}")
    if study == "methods" and choice not in shown:
        raise ValueError(f"choice {choice!r} was not among the shown methods {shown}")
    if study == "descriptions" and choice not in (ALIGNED, NOT_ALIGNED):
        raise ValueError(f"choice must be {ALIGNED!r} or {NOT_ALIGNED!r}, got {choice!r}")
    con = connect(db)
    try:
        con.execute("BEGIN IMMEDIATE")
        cur = con.execute("INSERT OR IGNORE INTO votes (study, rater, pair_id, shown, choice, created) VALUES (?, ?, ?, ?, ?, ?)",
                          (study, clean_rater(rater), pair_id, json.dumps(shown), choice, time.time()))
        con.execute("COMMIT")
        return int(cur.lastrowid) if cur.rowcount == 1 else None
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def read_votes(db: str | Path, study: str | None = None) -> list[dict]:
    db = Path(db)
    if not db.is_file():
        raise FileNotFoundError(f"{db}: no votes database")
    con = connect(db)
    try:
        q = "SELECT id, study, rater, pair_id, shown, choice, created FROM votes"
        rows = con.execute(q + (" WHERE study = ?" if study else "") + " ORDER BY id", (study,) if study else ()).fetchall()
    except sqlite3.DatabaseError as e:
        raise ValueError(f"{db} is not a votes database ({e})") from None
    finally:
        con.close()
    keys = ("id", "study", "rater", "pair_id", "shown", "choice", "created")
    return [dict(zip(keys, r), shown=json.loads(r[4])) for r in rows]


def voted_pairs(db: str | Path, study: str, rater: str) -> set[str]:
    con = connect(db)
    try:
        return {r[0] for r in con.execute("SELECT pair_id FROM votes WHERE study = ? AND rater = ?", (study, rater))}
    finally:
        con.close()


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
