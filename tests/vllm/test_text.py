"""Templates, exact answer-only masks, LLaVA JSON round trip, Ego4D label normalisation."""

import json

import pytest

from egolego.data.llava_records import read_json, records_from_manifest, write_json
from egolego.data.llava_text import (
    QUESTION_TEMPLATES,
    answer_text,
    lemmatise_verb,
    normalise_label,
    prompt_text,
    question,
)
from egolego.data.manifest import read_manifest
from egolego.vllm.conversation import IGNORE, MaskError, build_ids


def test_at_least_ten_templates_embed_the_action():
    assert len(QUESTION_TEMPLATES) >= 10
    for t in QUESTION_TEMPLATES:
        assert "open the drawer" in question(t, "open the drawer")
    assert QUESTION_TEMPLATES[0] == "How does the person properly {action} that is displayed in the video frame?"


def test_mask_covers_exactly_the_answer(vtok):
    tok = vtok[1]
    answer = answer_text("The person takes the red cup on the left with the left hand.")
    ans_ids = tok(answer, add_special_tokens=False)["input_ids"]
    for t in QUESTION_TEMPLATES:
        p = prompt_text(question(t, "take cup"))
        prompt_ids = tok(p, add_special_tokens=False)["input_ids"]
        ids, labels = build_ids(tok, prompt_ids, p, answer)
        supervised = [i for i, lab in zip(ids, labels) if lab != IGNORE]
        assert supervised == ans_ids + [tok.eos_token_id]
        assert labels[:len(prompt_ids)] == [IGNORE] * len(prompt_ids)
        assert tok.decode(supervised[:-1]) == answer


def test_broken_template_raises(vtok):
    tok = vtok[1]
    broken = prompt_text("How do I take cup?") + " The pers"  # ends mid-word: "person" merges across the boundary
    with pytest.raises(MaskError, match="mismatch"):
        build_ids(tok, tok(broken, add_special_tokens=False)["input_ids"], broken, "on takes the red cup.")
    with pytest.raises(ValueError, match="action"):
        question("How do I do it?", "take cup")
    with pytest.raises(MaskError, match="empty"):
        build_ids(tok, [1, 2], "x", "")


def test_llava_json_round_trip(pairs16, tmp_path):
    recs = records_from_manifest(read_manifest(pairs16), seed=1)
    assert len(recs) == 16 and all(r["conversations"][0]["value"].startswith("<image>\n") for r in recs)
    assert len({r["conversations"][0]["value"].split("\n")[1].split(" ")[0] for r in recs}) > 1  # templates vary
    write_json(recs, tmp_path / "t.json")
    assert read_json(tmp_path / "t.json") == recs
    (tmp_path / "bad.json").write_text(json.dumps([{"image": "x.jpg", "conversations": [{"from": "gpt", "value": "hi"}]}]))
    with pytest.raises(ValueError, match="record 0"):
        read_json(tmp_path / "bad.json")


@pytest.mark.parametrize("raw,norm", [
    ("#C C takes the cup", "take the cup"), ("#C C washes the plate", "wash the plate"),
    ("#C C carries the box", "carry the box"), ("#c c puts the knife on the board", "put the knife on the board"),
    ("#C C turns on the hob", "turn on the hob"), ("#C C opens the drawer.", "open the drawer"),
    ("#C C cuts the carrot with the knife", "cut the carrot with the knife"), ("take plate", "take plate"),
    ("#C C mixes the dough", "mix the dough"), ("#C C presses the button", "press the button"),
])
def test_label_normalisation(raw, norm):
    assert normalise_label(raw) == norm


def test_lemmatiser_leaves_base_forms():
    assert lemmatise_verb("take") == "take" and lemmatise_verb("pass") == "pass"
