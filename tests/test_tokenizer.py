"""The project's tokenizer: specials, max length, save/load round trip."""

from transformers import AutoTokenizer

from egolego.tokenizer import IMAGE_TOKEN, corpus_from_truth, train_tokenizer


def test_train_save_load(tmp_path, small_truth):
    corpus = corpus_from_truth(small_truth)
    tok = train_tokenizer(corpus, tmp_path / "tok", vocab_size=400, model_max_length=77)
    assert tok.model_max_length == 77 and tok.pad_token == "<pad>" and len(tok) <= 400
    text = f"{IMAGE_TOKEN}\nHow do I take the red cup?"
    ids = tok(text)["input_ids"]
    assert ids.count(tok.convert_tokens_to_ids(IMAGE_TOKEN)) == 1  # <image> is one token
    assert tok.decode(ids) == text
    again = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert again(text)["input_ids"] == ids and again.model_max_length == 77
    # the corpus' words are learnt: a description is far shorter than its bytes
    assert len(tok(small_truth[0]["description"])["input_ids"]) < len(small_truth[0]["description"]) / 2


def test_empty_corpus_raises():
    import pytest
    with pytest.raises(ValueError):
        train_tokenizer(["", "  "])
