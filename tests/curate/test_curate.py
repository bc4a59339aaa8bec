"""Curation: Fig. 9 prompt, the geometric describer, and the chat client against a local scripted server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from egolego.curate.client import ChatClient
from egolego.curate.geometric import describe
from egolego.curate.prompt import SYSTEM, build_messages, examples_from_truth, load_examples, write_examples
from egolego.curate.run import curate
from egolego.data.llava_records import read_json
from egolego.data.manifest import read_manifest
from egolego.synth.pairs import pairs_from_egosynth


def test_geometric_names_the_right_hand(judge_dataset):
    from egolego.synth.dataset import load_truth
    truth = load_truth(judge_dataset)
    right = sum(f"with the {t['hand']} hand" in describe(t["label"], t["boxes"]["target"]) for t in truth)
    assert right / len(truth) >= 0.95, right / len(truth)


def test_geometric_sentence():
    boxes = {"left hand": [0.2, 0.5, 0.3, 0.7], "right hand": [0.7, 0.9, 0.8, 1.0], "0:cup": [0.18, 0.45, 0.26, 0.6]}
    assert describe("take cup", boxes) == "The person takes the cup on the left with the left hand."
    assert describe("#C C puts the cup on the plate", boxes).startswith("The person puts the cup on the left on the plate")


def test_geometric_picks_the_look_alike_the_hand_is_at():
    """Two cups in the action frame: the description names the side of the one the hand holds, not the first listed."""
    boxes = {"0:cup": [0.10, 0.5, 0.18, 0.62], "2:cup": [0.70, 0.4, 0.78, 0.52], "left hand": [0.2, 0.8, 0.3, 0.95],
             "right hand": [0.71, 0.45, 0.8, 0.56]}
    assert describe("take cup", boxes) == "The person takes the cup on the right with the right hand."
    flipped = {"0:cup": boxes["0:cup"], "2:cup": boxes["2:cup"], "left hand": [0.1, 0.55, 0.2, 0.66],
               "right hand": [0.8, 0.8, 0.9, 0.95]}
    assert describe("take cup", flipped) == "The person takes the cup on the left with the left hand."


def test_geometric_places_the_object_where_it_was_before():
    """A poured bottle is lifted over the pan: the action frame puts it on the right, the input frame (what the VLLM
    sees) on the left, where the look-alike the action leaves alone does not stand. The hand is the one that moved."""
    before = {"bottle": [0.10, 0.3, 0.16, 0.7], "bottle 2": [0.80, 0.3, 0.86, 0.7], "pan": [0.6, 0.45, 0.9, 0.6],
              "left hand": [0.20, 0.82, 0.28, 1.0], "right hand": [0.70, 0.82, 0.78, 1.0]}
    after = {"bottle": [0.81, 0.31, 0.87, 0.71], "bottle 2": [0.55, 0.2, 0.75, 0.38], "pan": [0.61, 0.46, 0.91, 0.61],
             "left hand": [0.62, 0.26, 0.72, 0.42], "right hand": [0.70, 0.83, 0.78, 1.0]}
    assert describe("pour bottle into pan", after).startswith("The person pours the bottle on the right")
    assert describe("pour bottle into pan", after, before) == \
        "The person pours the bottle on the left into the pan with the left hand."
    # resting hands over the drawers: the one that moved acts, not the one nearest a drawer
    before = {"drawer": [0.12, 0.80, 0.38, 1.0], "drawer 2": [0.40, 0.80, 0.66, 0.98],
              "left hand": [0.22, 0.82, 0.31, 1.0], "right hand": [0.70, 0.82, 0.78, 1.0]}
    after = {"drawer": [0.12, 0.80, 0.38, 1.0], "drawer 2": [0.40, 0.80, 0.66, 1.0],
             "left hand": [0.22, 0.82, 0.31, 1.0], "right hand": [0.50, 0.78, 0.58, 0.95]}
    assert describe("open drawer", after, before) == "The person opens the drawer in the middle with the right hand."


def test_geometric_position_from_the_input_frame(judge_dataset):
    """On EgoSynth's truth, the input frame's boxes name the target's side far more often than the action frame's."""
    from egolego.synth.dataset import load_truth
    from egolego.synth.describe import description_accuracy
    truth = [t for t in load_truth(judge_dataset) if t["boxes"].get("input")]

    def right(before: bool) -> float:
        return sum(description_accuracy(describe(t["label"], t["boxes"]["target"],
                                                 t["boxes"]["input"] if before else None), t)["position"]
                   for t in truth) / len(truth)

    assert len(truth) >= 200 and right(True) >= 0.95 and right(True) > right(False) + 0.05, (right(True), right(False))


def test_prompt_structure(small_truth, tmp_path):
    ex = examples_from_truth(small_truth)
    assert len(ex) == 12 and len({e["label"].split()[0] for e in ex}) >= 8  # diverse verbs
    write_examples(ex, tmp_path / "ex.yaml")
    assert load_examples(tmp_path / "ex.yaml") == ex
    msgs = build_messages(ex, "take cup", {"left hand": [0.1, 0.2, 0.3, 0.4]})
    assert msgs[0] == {"role": "system", "content": SYSTEM}
    assert msgs[1]["content"].startswith("Examples for learning: (1) Action Label:") and "(12) Action Label" in msgs[1]["content"]
    assert msgs[2]["content"] == 'Example for inference: Action Label: "take cup"\nBounding Boxes: left hand: [0.10, 0.20, 0.30, 0.40]'
    with pytest.raises(ValueError, match="12"):
        build_messages(ex[:5], "take cup", {})


class Scripted(BaseHTTPRequestHandler):
    """Chat-completions endpoint: 429, 500, a timeout, then answers; counts calls."""

    script: list = []
    calls = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        action = type(self).script.pop(0) if type(self).script else "ok"
        if action == "slow":
            time.sleep(1.5)
        if action in (429, 500):
            self.send_response(action)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"error": {"message": "scripted", "type": "x"}}).encode())
            return
        label = body["messages"][-1]["content"].split('"')[1]
        out = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": f'"The person does {label} carefully."'}}],
               "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}
        data = json.dumps(out).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def server():
    Scripted.script, Scripted.calls = [], 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_retries_and_cache(server, tmp_path):
    Scripted.script = [429, 500, "slow"]
    c = ChatClient(server, "m", tmp_path / "cache.sqlite", timeout=0.5, backoff=0.01)
    msgs = [{"role": "user", "content": 'Example for inference: Action Label: "take cup"'}]
    assert c.complete(msgs) == '"The person does take cup carefully."'
    assert Scripted.calls == 4 and c.usage.retries == 3 and c.usage.prompt_tokens == 100
    again = ChatClient(server, "m", tmp_path / "cache.sqlite")  # a restart: the cache answers
    assert again.complete(msgs) == c.complete(msgs) and Scripted.calls == 4 and again.usage.cached == 1


def test_curate_openai_backend(server, small_dataset, small_truth, tmp_path):
    pairs = tmp_path / "pairs"
    pairs_from_egosynth(small_dataset, pairs, with_description=False)
    write_examples(examples_from_truth(small_truth), tmp_path / "ex.yaml")
    Scripted.script = [429]
    s = curate(pairs, tmp_path / "tune.json", "openai", str(tmp_path / "ex.yaml"), server, "m", concurrency=4,
               backoff=0.01, progress=False)
    assert s["calls"] == 40 and s["retries"] == 1 and s["prompt_tokens"] == 4000 and s["cost_usd"] > 0
    rows = read_manifest(pairs)
    assert all(r["description"] == f"The person does {r['label']} carefully." for r in rows)
    assert len(read_json(tmp_path / "tune.json")) == sum(r["split"] == "train" for r in rows)
    s2 = curate(pairs, tmp_path / "tune.json", "openai", str(tmp_path / "ex.yaml"), server, "m", progress=False)
    assert s2["calls"] == 0 and s2["cached"] == 40  # a rerun never pays twice
