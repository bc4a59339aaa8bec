"""Curation against a broken chat server: nothing cached, nothing half-written, one line each (issue 12)."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from egolego.cli import main
from egolego.curate.client import ChatClient, ChatError, warn_if_clear_text
from egolego.curate.prompt import examples_from_truth, write_examples
from egolego.data.manifest import FILE, read_manifest
from egolego.synth.pairs import pairs_from_egosynth


class Broken(BaseHTTPRequestHandler):
    mode = "ok"
    calls = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        mode = type(self).mode
        if mode == "html":
            data, ctype = b"<html><body>Welcome to nginx</body></html>", "text/html"
        else:
            msg = {"role": "assistant", "content": {"empty": "", "none": None}.get(mode, f"from {body['model']}")}
            choices = [] if mode == "nochoices" else [{"index": 0, "finish_reason": "stop", "message": msg}]
            data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
            ctype = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    Broken.mode, Broken.calls = "ok", 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


MSGS = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize("mode", ["empty", "none", "nochoices", "html"])
def test_bad_answers_are_one_error_and_never_cached(server, tmp_path, mode):
    Broken.mode = mode
    c = ChatClient(server, "m", tmp_path / "c.sqlite", backoff=0.01)
    with pytest.raises(ChatError, match="127.0.0.1"):
        c.complete(MSGS)
    Broken.mode = "ok"
    assert ChatClient(server, "m", tmp_path / "c.sqlite").complete(MSGS) == "from m"  # the cache held nothing


def test_cache_key_has_base_url_and_model(server, tmp_path):
    assert ChatClient(server, "m1", tmp_path / "c.sqlite").complete(MSGS) == "from m1"
    assert ChatClient(server, "m2", tmp_path / "c.sqlite").complete(MSGS) == "from m2"
    other = server.replace("/v1", "/v1/")  # same endpoint: still cached
    c = ChatClient(other, "m1", tmp_path / "c.sqlite")
    assert c.complete(MSGS) == "from m1" and c.usage.cached == 1 and Broken.calls == 2
    second = ThreadingHTTPServer(("127.0.0.1", 0), Broken)  # another endpoint: asked, not answered from the cache
    threading.Thread(target=second.serve_forever, daemon=True).start()
    try:
        c = ChatClient(f"http://127.0.0.1:{second.server_address[1]}/v1", "m1", tmp_path / "c.sqlite")
        assert c.complete(MSGS) == "from m1" and c.usage.cached == 0 and Broken.calls == 3
    finally:
        second.shutdown()


def test_unreachable_server_fails_fast(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = ChatClient(f"http://127.0.0.1:{port}/v1", "m", tmp_path / "c.sqlite", timeout=2, backoff=0.01)
    t = time.monotonic()
    with pytest.raises(ChatError, match="cannot be reached"):
        c.complete(MSGS)
    assert time.monotonic() - t < 10


def test_http_key_warning(capsys):
    assert warn_if_clear_text("http://api.example.com/v1", "sk-secret")
    assert "clear text" in capsys.readouterr().err
    assert not warn_if_clear_text("https://api.example.com/v1", "sk-secret")
    assert not warn_if_clear_text("http://127.0.0.1:8000/v1", "sk-secret")
    assert not warn_if_clear_text("http://localhost:8000/v1", "sk-secret")
    assert not warn_if_clear_text("http://api.example.com/v1", None)


@pytest.fixture
def curated(small_dataset, small_truth, tmp_path):
    pairs = tmp_path / "pairs"
    pairs_from_egosynth(small_dataset, pairs)  # exact descriptions: what must not be lost
    write_examples(examples_from_truth(small_truth), tmp_path / "ex.yaml")
    return pairs, tmp_path / "ex.yaml"


def _curate(pairs, ex, url, out):
    return main(["curate", "--pairs", str(pairs), "--backend", "openai", "--examples", str(ex), "--base-url", url,
                 "--model", "m", "--out", str(out)])


def test_empty_answers_keep_the_manifest(server, curated, tmp_path, capsys):
    pairs, ex = curated
    before = (pairs / FILE).read_bytes()
    Broken.mode = "empty"
    assert _curate(pairs, ex, server, tmp_path / "tune.json") == 2
    assert "empty content" in capsys.readouterr().err
    assert (pairs / FILE).read_bytes() == before and not (tmp_path / "tune.json").exists()
    Broken.mode = "ok"
    assert _curate(pairs, ex, server, tmp_path / "tune.json") == 0
    assert "0 cached" in capsys.readouterr().out
    assert all(r["description"] == "from m" for r in read_manifest(pairs))


def test_bad_out_is_checked_before_the_manifest_changes(server, curated, tmp_path, capsys):
    pairs, ex = curated
    before = (pairs / FILE).read_bytes()
    (tmp_path / "adir").mkdir()
    assert _curate(pairs, ex, server, tmp_path / "adir") == 2
    assert "--out" in capsys.readouterr().err and Broken.calls == 0
    (tmp_path / "afile").write_text("x")
    assert main(["curate", "--pairs", str(pairs), "--out", str(tmp_path / "afile" / "t.json")]) == 2
    assert (pairs / FILE).read_bytes() == before


def test_malformed_examples_and_null_text_are_one_line(server, curated, tmp_path, capsys):
    """A YAML file that does not parse, and a manifest whose text columns hold nulls: one error line, no call, no
    change."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pairs, _ = curated
    before = (pairs / FILE).read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("examples: [ {label: a, boxes: {x: [1, 2}\n")
    assert _curate(pairs, bad, server, tmp_path / "t.json") == 2
    err = capsys.readouterr().err
    assert "--examples:" in err and "not readable YAML (line 1" in err and "Traceback" not in err
    assert Broken.calls == 0 and (pairs / FILE).read_bytes() == before
    for column in ("label", "description"):
        t = pq.read_table(pairs / FILE)
        values = t.column(column).to_pylist()
        values[1] = None
        nulls = tmp_path / f"nulls_{column}"
        nulls.mkdir()
        pq.write_table(t.set_column(t.column_names.index(column), column, pa.array(values, pa.string())), nulls / FILE)
        assert main(["curate", "--pairs", str(nulls), "--out", str(tmp_path / "t.json")]) == 2
        err = capsys.readouterr().err
        assert f"has no {column} (the column holds None" in err and "Traceback" not in err
