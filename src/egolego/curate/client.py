"""An OpenAI-compatible chat client with bounded retries and an SQLite cache keyed by endpoint, model and prompt.

Retries with exponential backoff (and jitter) on 429, 5xx and timeouts; a server that cannot be reached is
tried only ``connect_retries`` times (it will not come back in a minute); other 4xx fail at once with the
server's message. Every failure ends as one ``ChatError`` line. An answer is cached only once it is valid
(a chat completion with non-empty text), so a rerun — or a restart after a crash — never pays twice for the
same prompt and never reuses a broken answer. Token usage is accumulated for the run's summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InputError

LOOPBACK = ("localhost", "127.0.0.1", "::1")


class ChatError(RuntimeError):
    """The chat API failed or answered something unusable; the message is one line for the user."""


def warn_if_clear_text(base_url: str, api_key: str | None) -> bool:
    """Warn (stderr, one line) when an API key would travel over plain http:// to a host that is not this machine."""
    u = urlsplit(base_url)
    host = (u.hostname or "").lower()
    if api_key and u.scheme == "http" and host not in LOOPBACK and not host.startswith("127."):
        print(f"egolego curate: warning: --base-url {u.scheme}://{u.netloc} is plain http to another host: "
              "the API key travels in clear text (use https://)", file=sys.stderr)
        return True
    return False


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
    def key(base_url: str, model: str, messages: list[dict]) -> str:
        doc = {"base_url": base_url.rstrip("/"), "model": model, "messages": messages}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def get(self, key: str):
        with self.lock:
            return self.db.execute("SELECT text, prompt_tokens, completion_tokens FROM chat WHERE key=?", (key,)).fetchone()

    def put(self, key: str, text: str, pt: int, ct: int) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO chat VALUES (?, ?, ?, ?)", (key, text, pt, ct))


class ChatClient:
    def __init__(self, base_url: str, model: str, cache: str | Path, timeout: float = 60.0, max_retries: int = 4,
                 backoff: float = 1.0, api_key: str | None = None, connect_retries: int = 1):
        import openai
        self.openai = openai
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise InputError("base_url", f"must be an http(s):// URL, got {base_url!r}")
        env_key = api_key or os.environ.get("OPENAI_API_KEY")
        warn_if_clear_text(base_url, env_key)
        self.client = openai.OpenAI(base_url=base_url, api_key=env_key or "EMPTY", timeout=timeout, max_retries=0)
        self.base_url, self.model, self.max_retries, self.backoff = base_url, model, max_retries, backoff
        self.connect_retries = connect_retries
        self.cache = ChatCache(cache)
        self.usage = Usage()
        self._lock = threading.Lock()

    def complete(self, messages: list[dict]) -> str:
        k = ChatCache.key(self.base_url, self.model, messages)
        hit = self.cache.get(k)
        if hit is not None and (hit[0] or "").strip():
            with self._lock:
                self.usage.cached += 1
            return hit[0]
        r = self._request(messages)
        text = _answer_text(r, self.base_url)
        pt = getattr(getattr(r, "usage", None), "prompt_tokens", 0) or 0
        ct = getattr(getattr(r, "usage", None), "completion_tokens", 0) or 0
        self.cache.put(k, text, pt, ct)
        with self._lock:
            self.usage.calls += 1
            self.usage.prompt_tokens += pt
            self.usage.completion_tokens += ct
        return text

    def _request(self, messages: list[dict]):
        o = self.openai
        retryable = (o.RateLimitError, o.InternalServerError, o.APITimeoutError)
        attempt = connects = 0
        while True:
            try:
                return self.client.chat.completions.create(model=self.model, messages=messages, temperature=0)
            except retryable as e:  # APITimeoutError is an APIConnectionError: keep this clause first
                if attempt >= self.max_retries:
                    raise ChatError(f"chat API at {self.base_url} still failing after {attempt + 1} tries "
                                    f"({type(e).__name__})") from None
            except o.APIConnectionError:
                if connects >= self.connect_retries:
                    raise ChatError(f"chat API at {self.base_url} cannot be reached (tried {connects + 1} times); "
                                    "check --base-url") from None
                connects += 1
            except o.APIStatusError as e:
                raise ChatError(f"chat API refused the request ({e.status_code}): {_one_line(e.message)}") from None
            except (o.OpenAIError, ValueError, TypeError, AttributeError) as e:  # a body that is not JSON, etc.
                raise ChatError(f"chat API at {self.base_url} answered something that is not a chat completion "
                                f"({type(e).__name__}: {_one_line(str(e))})") from None
            with self._lock:
                self.usage.retries += 1
            time.sleep(min(30.0, self.backoff * 2**attempt) * (1 + 0.25 * random.random()))
            attempt += 1


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def _answer_text(r, base_url: str) -> str:
    """The answer's text; ChatError for an HTML page, ``choices: []`` or empty content (never cached)."""
    choices = getattr(r, "choices", None)
    if isinstance(r, (str, bytes)) or choices is None:
        raise ChatError(f"chat API at {base_url} answered something that is not a chat completion "
                        f"({_one_line(str(r), 80)!r}); is --base-url the API's /v1 address?")
    if not choices:
        raise ChatError(f"chat API at {base_url} answered with no choices")
    msg = getattr(choices[0], "message", None)
    text = getattr(msg, "content", None)
    if not isinstance(text, str) or not text.strip():
        raise ChatError(f"chat API at {base_url} answered with empty content (finish_reason "
                        f"{getattr(choices[0], 'finish_reason', None)!r}); nothing was cached or written")
    return text.strip()
