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
import sqlite3
import time
from pathlib import Path

from ..eval.votes_stats import ALIGNED, NOT_ALIGNED, aligned_rate, rater_counts, wilson, win_rates  # noqa: F401

STUDIES = ("methods", "descriptions")
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
