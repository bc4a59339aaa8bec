"""A model trained on an embedding store knows the VLLM that wrote it (issue 11): the store records the VLLM
folder, the trainer writes it next to the model, and generate / eval / serve find it there."""

import shutil

import torch

from egolego.ldm.vllm_link import missing_vllm_hint, record_vllm, vllm_folder
from egolego.vllm.store import EmbeddingStore, StoreWriter


def _store(root, vllm):
    w = StoreWriter(root, "0", (2, 4), (3, 4), "fp123", vllm=vllm)
    w.add("p1", torch.zeros(2, 4), torch.zeros(1, 4), 1)
    w.close()
    return EmbeddingStore(root)


def test_the_store_names_its_vllm_and_the_model_finds_it(tmp_path):
    run = tmp_path / "run"
    vllm = run / "vllm_tune" / "model"
    vllm.mkdir(parents=True)
    (vllm / "config.json").write_text("{}")
    store = _store(run / "store", vllm)
    assert store.vllm == vllm.resolve()
    model = run / "ldm" / "model"
    model.mkdir(parents=True)
    assert vllm_folder(model) is None  # nothing recorded yet
    record_vllm(store, model)
    assert vllm_folder(model).resolve() == vllm.resolve()

    moved = tmp_path / "elsewhere"
    shutil.move(str(run), str(moved))  # a run folder moved as a whole keeps its links
    assert vllm_folder(moved / "ldm" / "model").resolve() == (moved / "vllm_tune" / "model").resolve()

    shutil.rmtree(moved / "vllm_tune")
    assert vllm_folder(moved / "ldm" / "model") is None
    assert str(vllm.resolve()) in missing_vllm_hint(moved / "ldm" / "model")


def test_a_copy_in_the_model_folder_comes_first_and_old_stores_record_nothing(tmp_path):
    store = _store(tmp_path / "store", None)
    model = tmp_path / "model"
    model.mkdir()
    assert store.vllm is None and record_vllm(store, model) is None
    (model / "vllm").mkdir()
    assert vllm_folder(model) == model / "vllm"
