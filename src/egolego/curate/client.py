"""An OpenAI-compatible chat client with bounded retries and an SQLite cache keyed by the prompt.

Retries with exponential backoff (and jitter) on 429, 5xx, timeouts and connection errors; other 4xx fail at
once with the server's message. Every answer is cached before it is returned, so a rerun — or a restart after
a crash — never pays twice for the same prompt. Token usage is accumulated for the run's summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Usage:
    calls: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatCache:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS chat (key TEXT PRIMARY KEY, text TEXT, prompt_tokens INT, "
                        "completion_tokens INT)")
        self.lock = threading.Lock()

    @staticmethod
    def key(model: str, messages: list[dict]) -> str:
        return hashlib.sha256(json.dumps({"model": model, "messages": messages}, sort_keys=True).encode()).hexdigest()

    def get(self, key: str):
        with self.lock:
            return self.db.execute("SELECT text, prompt_tokens, completion_tokens FROM chat WHERE key=?", (key,)).fetchone()

    def put(self, key: str, text: str, pt: int, ct: int) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO chat VALUES (?, ?, ?, ?)", (key, text, pt, ct))


class ChatClient:
    def __init__(self, base_url: str, model: str, cache: str | Path, timeout: float = 60.0, max_retries: int = 6,
                 backoff: float = 1.0, api_key: str | None = None):
        import openai
        self.openai = openai
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"  # local servers accept any key
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        self.model, self.max_retries, self.backoff = model, max_retries, backoff
        self.cache = ChatCache(cache)
        self.usage = Usage()
        self._lock = threading.Lock()

    def complete(self, messages: list[dict]) -> str:
        k = ChatCache.key(self.model, messages)
        hit = self.cache.get(k)
        if hit is not None:
            with self._lock:
                self.usage.cached += 1
            return hit[0]
        o = self.openai
        retryable = (o.RateLimitError, o.InternalServerError, o.APITimeoutError, o.APIConnectionError)
        for attempt in range(self.max_retries + 1):
            try:
                r = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0)
                break
            except retryable:
                if attempt == self.max_retries:
                    raise
                with self._lock:
                    self.usage.retries += 1
                time.sleep(self.backoff * 2**attempt * (1 + 0.25 * random.random()))
            except o.APIStatusError as e:
                raise RuntimeError(f"chat API refused the request ({e.status_code}): {e.message}") from None
        text = (r.choices[0].message.content or "").strip()
        pt = getattr(r.usage, "prompt_tokens", 0) or 0
        ct = getattr(r.usage, "completion_tokens", 0) or 0
        self.cache.put(k, text, pt, ct)
        with self._lock:
            self.usage.calls += 1
            self.usage.prompt_tokens += pt
            self.usage.completion_tokens += ct
        return text
