"""A tiny LLaVA tuned on 16 EgoSynth pairs, shared by the VLLM tests."""

import pytest

from egolego import config
from egolego.data.llava_records import records_from_manifest, write_json
from egolego.data.llava_text import QUESTION_TEMPLATES
from egolego.data.manifest import read_manifest, write_manifest
from egolego.synth.pairs import pairs_from_egosynth
from egolego.tokenizer import train_tokenizer


@pytest.fixture(scope="session")
def pairs16(small_dataset, tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs16")
    pairs_from_egosynth(small_dataset, d)
    rows = [r for r in read_manifest(d) if r["split"] == "train"][:16]
    write_manifest(rows, d)
    return d


@pytest.fixture(scope="session")
def vtok(pairs16, tmp_path_factory):
    rows = read_manifest(pairs16)
    texts = [t for r in rows for t in (r["label"], r["description"])] + QUESTION_TEMPLATES
    return tmp_path_factory.mktemp("vtok"), train_tokenizer(texts * 5, tmp_path_factory.mktemp("vtok"),
                                                             vocab_size=600, model_max_length=512)


@pytest.fixture(scope="session")
def tuned(pairs16, vtok, tmp_path_factory):
    """(tuned model folder, pairs manifest, tuning json) — trained until it memorises the 16 descriptions (on the
    2026-12-07 box 110 epochs did, 80 did not; 200 leave a margin for other CPUs' arithmetic)."""
    from egolego.vllm.tune import VllmTuner

    tok_dir = tmp_path_factory.mktemp("tok_saved")
    vtok[1].save_pretrained(tok_dir)
    data = tmp_path_factory.mktemp("tunedata") / "tuning.json"
    write_json(records_from_manifest(read_manifest(pairs16)), data)
    cfg = config.preset("tiny")
    cfg.vllm.tokenizer, cfg.vllm.epochs = str(tok_dir), 200
    out = tmp_path_factory.mktemp("vllm_run")
    VllmTuner(cfg, data, pairs16, out).run(progress=False)
    return out / "model", pairs16, data
