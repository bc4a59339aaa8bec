"""``egolego study``: the paper's user studies, one vote per click, stored in SQLite (``votes.py``).

``methods`` (Fig. 10): a rater id (typed, no login), then one pair at a time: the input frame, the action
*label* (not the description: the baselines only saw the label) and the outputs of every method in a fresh
random order; the rater clicks the one that best shows the action while keeping the scene.
``descriptions`` (Fig. 6): the input and target frames and the description the runs were evaluated with
(the VLLM's); the rater answers whether it matches the two frames.

Each rater sees every pair once, in an order of their own (seeded by the rater id); a rater who comes back
(or a restarted server) continues with the pairs they have not voted on. The order shown and the choice live
in the server's session state: a click sends only which button was pressed.
"""

from __future__ import annotations

import random
import secrets
from pathlib import Path

from . import votes as V
from .images import served
from .launch import blocks, frame, gradio
from .runs import Runs

LETTERS = "ABCDEFGHIJ"
QUESTION = {"methods": "Which image best shows the action, while keeping the most of the input frame's scene?",
            "descriptions": "Does the description match what happens between the two frames?"}


class Study:
    """The trial logic, without any UI (tested directly and driven by the Gradio app)."""

    def __init__(self, runs: Runs, db: str | Path, mode: str = "methods", seed: int = 0):
        if mode not in V.STUDIES:
            raise ValueError(f"mode must be one of {V.STUDIES}, got {mode!r}")
        if mode == "methods" and not 2 <= len(runs.names) <= len(LETTERS):
            raise ValueError(f"the methods study compares 2 to {len(LETTERS)} eval runs, got {len(runs.names)}")
        self.runs, self.mode, self.seed = runs, mode, seed
        self.db = V.init_db(db)
        self._rng = random.Random(secrets.randbits(64))

    def remaining(self, rater: str) -> list[str]:
        done = V.voted_pairs(self.db, self.mode, rater)
        ids = list(self.runs.pairs.ids)
        random.Random(f"{self.seed}:{rater}").shuffle(ids)
        return [p for p in ids if p not in done]

    def next_trial(self, rater: str) -> dict | None:
        """{"rater", "pair_id", "shown"} for the rater's next pair, or None when they have rated every pair."""
        rater = V.clean_rater(rater)
        left = self.remaining(rater)
        if not left:
            return None
        shown = self._rng.sample(self.runs.names, len(self.runs.names)) if self.mode == "methods" \
            else self.runs.description(left[0])
        return {"rater": rater, "pair_id": left[0], "shown": shown, "left": len(left)}

    def vote(self, trial: dict, answer: int | str) -> int:
        """Record the answer to ``trial``: an option index (methods) or aligned / not aligned (descriptions)."""
        if self.mode == "methods":
            if not isinstance(answer, int) or not 0 <= answer < len(trial["shown"]):
                raise ValueError(f"no option {answer!r}")
            choice = trial["shown"][answer]
        else:
            choice = answer
        return V.record_vote(self.db, self.mode, trial["rater"], trial["pair_id"], trial["shown"], choice)


def build_study(study: Study):
    gr = gradio()
    runs, n_opt = study.runs, len(study.runs.names)
    with blocks(f"egolego study ({study.mode})") as app:
        gr.Markdown(f"# egolego user study — {'generated action frames' if study.mode == 'methods' else 'action descriptions'}"
                    f"\n{QUESTION[study.mode]}")
        trial = gr.State(None)
        with gr.Row():
            rater = gr.Textbox(label="Your rater id (any name; use the same one to continue later)", elem_id="rater",
                               scale=3)
            start = gr.Button("Start / continue", elem_id="start", scale=1)
        status = gr.Markdown(elem_id="status")
        with gr.Column(visible=False) as panel:
            with gr.Row():
                inp = frame(gr, "input frame", buttons=(), elem_id="study-input", height=300)
                tgt = frame(gr, "target frame", buttons=(), visible=study.mode == "descriptions", height=300)
            text = gr.Markdown(elem_id="study-text")
            buttons, options = [], []
            if study.mode == "methods":
                with gr.Row():
                    for i in range(n_opt):
                        with gr.Column(min_width=120):
                            options.append(frame(gr, LETTERS[i], buttons=(), height=260))
                            buttons.append(gr.Button(f"{LETTERS[i]} is best", elem_id=f"vote-{i}"))
                answers = list(range(n_opt))
            else:
                with gr.Row():
                    buttons = [gr.Button("Yes, it matches", elem_id="vote-0"), gr.Button("No", elem_id="vote-1")]
                answers = [V.ALIGNED, V.NOT_ALIGNED]

        def show(t):
            if t is None:
                return [None, "You have rated every pair. Thank you!", gr.Column(visible=False), None, None, ""] \
                    + [None] * len(options)
            pid, row = t["pair_id"], runs.pairs.row(t["pair_id"])
            head = f"**{t['rater']}**: {t['left']} pair(s) left."
            if study.mode == "methods":
                body = f"### Action: {row['label']}"
                ims = [runs.output(m, pid) for m in t["shown"]]
                tgt_im = None
            else:
                body = f"**Action:** {row['label']}\n\n**Description:** {t['shown']}"
                ims, tgt_im = [], runs.pairs.image(pid, "target")
            return [t, head, gr.Column(visible=True), served(runs.pairs.image(pid)), served(tgt_im), body,
                    *map(served, ims)]

        outputs = [trial, status, panel, inp, tgt, text, *options]

        def on_start(r):
            try:
                return show(study.next_trial(r))
            except ValueError as e:
                raise gr.Error(str(e)) from None

        def make_vote(answer):
            def on_vote(t):
                if t is None:
                    raise gr.Error("enter your rater id and press Start")
                try:
                    study.vote(t, answer)
                    return show(study.next_trial(t["rater"]))
                except ValueError as e:
                    raise gr.Error(str(e)) from None
            return on_vote

        start.click(on_start, rater, outputs)
        rater.submit(on_start, rater, outputs)
        for b, a in zip(buttons, answers):
            b.click(make_vote(a), trial, outputs, concurrency_limit=8)
    return app
