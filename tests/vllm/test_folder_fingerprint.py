"""The VLLM that wrote a model's embeddings is recognised at any load precision (issue 25).

The first check hashed the *loaded* model (its config and weights), so a VLLM loaded in bfloat16 or 4-bit — what
``generate --vllm-precision`` and the automatic tiers do for a 13-B LLaVA — was refused as "not the one that wrote
this model's training embeddings". The record now holds a fingerprint of the folder's files.
"""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from egolego.errors import InputError
from egolego.ldm.vllm_link import record_vllm, refuse_other_vllm
from egolego.vllm.model import build_tiny_llava, fingerprint, folder_fingerprint, load_llava
from egolego.vllm.store import EmbeddingStore, StoreWriter


@pytest.fixture(scope="module")
def saved_llava(vtok, tmp_path_factory):
    d = tmp_path_factory.mktemp("llava_saved")
    model, proc = build_tiny_llava(vtok[1])
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d


def test_the_files_fingerprint_does_not_change_with_the_load_precision(saved_llava):
    fp32, _ = load_llava(saved_llava)
    bf16, _ = load_llava(saved_llava, dtype=torch.bfloat16)
    assert fingerprint(fp32) != fingerprint(bf16)  # the old check: the same folder, two fingerprints
    before = folder_fingerprint(saved_llava)
    assert before is not None and len(before) == 16
    assert folder_fingerprint(saved_llava) == before  # reading the files changes nothing


def test_the_files_fingerprint_sees_other_weights_and_other_configs(saved_llava, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(saved_llava, other)
    assert folder_fingerprint(other) == folder_fingerprint(saved_llava)  # a copy is the same VLLM
    cfg = json.loads((other / "config.json").read_text())
    cfg["torch_dtype"] = "bfloat16"  # what saving after a reduced-precision load writes
    (other / "config.json").write_text(json.dumps(cfg))
    assert folder_fingerprint(other) == folder_fingerprint(saved_llava)

    f = next(other.glob("*.safetensors"))
    weights = load_file(f)
    first = sorted(weights)[0]
    weights[first] = weights[first] + 0.01
    save_file(weights, f, metadata={"format": "pt"})
    assert folder_fingerprint(other) != folder_fingerprint(saved_llava)

    shutil.copytree(saved_llava, tmp_path / "deeper")
    cfg = json.loads((tmp_path / "deeper" / "config.json").read_text())
    cfg["text_config"]["num_hidden_layers"] = cfg["text_config"].get("num_hidden_layers", 2) + 1
    (tmp_path / "deeper" / "config.json").write_text(json.dumps(cfg))
    assert folder_fingerprint(tmp_path / "deeper") != folder_fingerprint(saved_llava)
    assert folder_fingerprint(tmp_path) is None  # no weights: nothing to fingerprint


def test_a_model_refuses_another_vllm_before_loading_it(saved_llava, tmp_path):
    w = StoreWriter(tmp_path / "store", "0", (2, 4), (3, 4), "fp-of-the-loaded-model", vllm=saved_llava)
    w.add("p1", torch.zeros(2, 4), torch.zeros(1, 4), 1)
    w.close()
    model = tmp_path / "ldm"
    model.mkdir()
    record_vllm(EmbeddingStore(tmp_path / "store"), model)
    assert refuse_other_vllm(model, saved_llava) is True

    other = tmp_path / "retuned"
    shutil.copytree(saved_llava, other)
    f = next(other.glob("*.safetensors"))
    weights = {k: v * 1.5 for k, v in load_file(f).items()}
    save_file(weights, f, metadata={"format": "pt"})
    with pytest.raises(InputError, match="not the one that wrote"):
        refuse_other_vllm(model, other)


def test_an_older_record_is_left_to_the_loaded_model_check(tmp_path, saved_llava):
    model = tmp_path / "ldm"
    model.mkdir()
    (model / "vllm.json").write_text(json.dumps({"vllm": str(saved_llava), "fingerprint": "abc"}))
    assert refuse_other_vllm(model, saved_llava) is False

