"""What the app shows from finished ``egolego eval`` folders and from a pairs manifest.

Every image the app serves is found here from a pair id chosen among the ids the server listed itself; nothing
the browser sends is used as a path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..data.manifest import read_manifest, resolve
from ..errors import InputError
from ..eval.tables import METRICS, EvalRun, load_run
from ..methods import REFERENCES
from ..names import safe_name


@dataclass
class Pairs:
    """The pairs of one manifest split, by id."""

    folder: Path
    rows: dict[str, dict]
    ids: list[str] = field(default_factory=list)

    def choices(self) -> list[tuple[str, str]]:
        """(shown text, pair id) for a dropdown."""
        return [(f"{pid} — {self.rows[pid]['label']}", pid) for pid in self.ids]

    def row(self, pid: str) -> dict:
        if pid not in self.rows:
            raise KeyError(f"unknown pair {pid!r}")
        return self.rows[pid]

    def image(self, pid: str, which: str = "input") -> Image.Image:
        return Image.open(resolve(self.folder, self.row(pid)[f"{which}_path"])).convert("RGB")


def load_pairs(folder: str | Path, split: str = "test", limit: int | None = None) -> Pairs:
    rows = [r for r in read_manifest(folder) if r["split"] == split] or read_manifest(folder)
    rows = rows[:limit] if limit else rows
    return Pairs(Path(folder), {r["pair_id"]: r for r in rows}, [r["pair_id"] for r in rows])


@dataclass
class Runs:
    """Several eval runs of one manifest, restricted to the pairs they all evaluated."""

    runs: list[EvalRun]
    pairs: Pairs

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    def methods(self) -> list[str]:
        """The runs that generated frames (not the `input` / `target` references), or all when none did."""
        return [r.name for r in self.runs if r.info["mode"] not in REFERENCES] or self.names

    def run(self, name: str) -> EvalRun:
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"unknown method {name!r}")

    def output(self, name: str, pid: str) -> Image.Image:
        self.pairs.row(pid)  # only listed pairs
        return Image.open(self.run(name).folder / "images" / f"{safe_name(pid)}.png").convert("RGB")

    def metric_table(self, pid: str) -> tuple[list[str], list[list]]:
        """(header, one row per method) of the per-pair metrics the runs hold for ``pid``."""
        cols = [(m, h) for m, h, _ in METRICS if any(m in r.per_pair for r in self.runs)]
        rows = []
        for r in self.runs:
            i = r.per_pair["pair_id"].index(pid)
            cells = []
            for m, _ in cols:
                v = r.per_pair[m][i] if m in r.per_pair else None
                cells.append("–" if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4))
            rows.append([r.name, *cells])
        return ["method", *[h for _, h in cols]], rows

    def description(self, pid: str) -> str:
        """The description the runs were evaluated with (the VLLM's after `vllm enrich`), else the manifest's."""
        for r in self.runs:
            if "description" in r.per_pair:
                d = r.per_pair["description"][r.per_pair["pair_id"].index(pid)]
                if d:
                    return d
        return self.pairs.row(pid).get("description") or ""


def load_runs(folders: list[str | Path]) -> Runs:
    if not folders:
        raise InputError("runs", "give at least one eval folder")
    runs = [load_run(f) for f in folders]
    names = [r.name for r in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError("runs", f"two eval runs are both named {dup}; rerun `egolego eval` with --name or --tag")
    manifests = {str(Path(r.info["pairs"]).resolve()) for r in runs}
    if len(manifests) > 1:
        raise ValueError(f"the eval runs come from different pairs manifests: {sorted(manifests)}")
    common = [p for p in runs[0].per_pair["pair_id"] if all(p in r.per_pair["pair_id"] for r in runs[1:])]
    common = [p for p in common if all((r.folder / "images" / f"{safe_name(p)}.png").is_file() for r in runs)]
    if not common:
        raise ValueError("the eval runs share no pair with a generated image")
    folder = Path(runs[0].info["pairs"])
    rows = {r["pair_id"]: r for r in read_manifest(folder)}
    common = [p for p in common if p in rows]
    return Runs(runs, Pairs(folder, {p: rows[p] for p in common}, common))
