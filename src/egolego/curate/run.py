"""``egolego curate``: a detailed description for every pair, and the LLaVA tuning JSON of the train split.

Nothing is written until every description is there and valid: ``--out`` is checked first, then all
answers are collected and checked, then the tuning JSON and the manifest are written (each atomically), so
a failing server or a bad ``--out`` never leaves the manifest's descriptions half replaced.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from ..atomic import check_out_file
from ..data.llava_records import records_from_manifest, write_json
from ..data.manifest import action_rows, read_manifest, update_column
from ..errors import InputError
from .geometric import describe
from .prompt import build_messages, load_examples

# USD per 1k tokens (input, output) used for the cost estimate; override with curate(..., price=(in, out)).
DEFAULT_PRICE = (0.0005, 0.0015)


def _boxes(row: dict, frame: str = "target") -> dict:
    """The ``frame``'s boxes of a row ("target": else the input's; "input": the input's only); malformed JSON or
    shapes give no boxes rather than a crash."""
    try:
        both = json.loads(row["boxes"] or "{}")
        both = both if isinstance(both, dict) else {}
        b = both.get(frame) or (both.get("input") if frame == "target" else None) or {}
        return {str(k): [float(x) for x in v] for k, v in b.items() if isinstance(v, list) and len(v) == 4}
    except (ValueError, TypeError, AttributeError, RecursionError):
        return {}


def _clean(text: str) -> str:
    t = text.strip().strip('"').strip()
    for p in ("Action Descriptions:", "Action Description:"):
        if t.startswith(p):
            t = t[len(p):].strip().strip('"')
    return t


def curate(pairs: str | Path, out_json: str | Path, backend: str = "geometric", examples: str | None = None,
           base_url: str | None = None, model: str | None = None, concurrency: int = 4, cache: str | None = None,
           price: tuple[float, float] = DEFAULT_PRICE, timeout: float = 60.0, backoff: float = 1.0,
           progress: bool = True) -> dict:
    rows = action_rows(read_manifest(pairs))  # timeline pairs share their action's description
    check_out_file(out_json, "--out")
    if backend == "geometric":
        descs = {r["pair_id"]: describe(r["label"], _boxes(r), _boxes(r, "input")) for r in rows}
        usage = None
    elif backend == "openai":
        missing = [n for n, v in (("base_url", base_url), ("model", model), ("examples", examples)) if not v]
        if missing:
            also = f" (as are {' and '.join(missing[1:])})" if missing[1:] else ""
            raise InputError(missing[0], f"needed by backend openai{also}")
        from .client import ChatClient
        shots = load_examples(examples)
        client = ChatClient(base_url, model, cache or Path(pairs) / "curation_cache.sqlite", timeout=timeout,
                            backoff=backoff)

        def one(r):
            text = _clean(client.complete(build_messages(shots, r["label"], _boxes(r))))
            if not text:
                raise RuntimeError(f"the chat API's answer for pair {r['pair_id']!r} is empty once cleaned "
                                   "(only quotes or a heading); the manifest is unchanged")
            return r["pair_id"], text

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as ex:
            descs = dict(tqdm(ex.map(one, rows), total=len(rows), desc="curate", disable=not progress))
        usage = client.usage
    else:
        raise InputError("backend", f"must be geometric or openai, got {backend!r}")
    empty = [pid for pid, d in descs.items() if not (d or "").strip()]
    if empty:
        raise RuntimeError(f"{len(empty)} descriptions came back empty (e.g. pair {empty[0]!r}); the manifest is "
                           "unchanged")
    for r in rows:
        r["description"] = descs.get(r["pair_id"], r["description"])
    recs = records_from_manifest(rows)
    write_json(recs, out_json)
    update_column(pairs, "description", descs)
    summary = {"backend": backend, "pairs": len(rows), "tuning_records": len(recs)}
    if usage is not None:
        summary.update(calls=usage.calls, cached=usage.cached, retries=usage.retries,
                       prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                       cost_usd=round(usage.prompt_tokens / 1000 * price[0] + usage.completion_tokens / 1000 * price[1], 4))
    return summary
