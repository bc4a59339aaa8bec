"""``--preset paper`` end to end through models with the paper's architectures at tiny width (CPU, seconds).

SD-1.5-shaped (4-channel UNet, f8 VAE, CLIP text, PNDM config) and LLaVA-1.5-shaped (CLIP ViT 336/14 tower, GELU
projector, Llama) folders are written here with random weights (``egolego.paper_shapes``), then the CLI runs:
pairs -> vllm data -> vllm tune (2 steps, bf16) -> vllm enrich -> train (2 steps, bf16, conv_in expanded to 8
channels) -> generate -> eval. Sizes come from a config file over the paper preset (batch and step counts only).
"""

import json

import pytest
import yaml
from PIL import Image

from egolego.cli import main
from egolego.data.llava_text import QUESTION_TEMPLATES
from egolego.data.manifest import read_manifest, resolve, write_manifest
from egolego.paper_shapes import write_llava15, write_sd15
from egolego.synth.pairs import pairs_from_egosynth
from egolego.tokenizer import train_tokenizer
from egolego.vllm.store import EmbeddingStore


@pytest.fixture(scope="module")
def paper_run(small_dataset, tmp_path_factory):
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # a module fixture runs before the autouse reset
    root = tmp_path_factory.mktemp("paper")
    pairs = root / "pairs"
    pairs_from_egosynth(small_dataset, pairs, size=256)
    rows = read_manifest(pairs)
    rows = [r for r in rows if r["split"] == "train"][:8] + [r for r in rows if r["split"] == "test"][:2]
    write_manifest(rows, pairs)
    texts = [t for r in rows for t in (r["label"], r["description"])] + QUESTION_TEMPLATES
    clip_tok = train_tokenizer(texts * 3, None, vocab_size=400, model_max_length=77)
    llama_tok = train_tokenizer(texts * 3, None, vocab_size=400, model_max_length=2048)
    sd, llava = write_sd15(root / "sd15", clip_tok, tiny=True), write_llava15(root / "llava15", llama_tok, tiny=True)
    cfg = root / "paper.yaml"
    cfg.write_text(yaml.safe_dump({"preset": "paper",
                                   "vllm": {"batch_size": 2, "grad_accum": 2, "epochs": 1, "max_new_tokens": 6},
                                   "ldm": {"batch_size": 1, "grad_accum": 2, "max_steps": 2}}))
    run = lambda *argv: main([str(a) for a in argv])  # noqa: E731
    assert run("vllm", "data", "--pairs", pairs, "--out", root / "tuning.json") == 0
    assert run("vllm", "tune", "--data", root / "tuning.json", "--images", pairs, "--config", cfg, "--preset", "paper",
               "--model", llava, "--out", root / "vllm") == 0
    assert run("vllm", "enrich", "--model", root / "vllm" / "model", "--pairs", pairs, "--out", root / "store",
               "--batch-size", 5) == 0
    assert run("train", "--pairs", pairs, "--embeddings", root / "store", "--config", cfg, "--preset", "paper",
               "--base", sd, "--out", root / "ldm") == 0
    return root, pairs, rows


def test_vllm_tuned_two_steps_in_bf16(paper_run):
    root, _, _ = paper_run
    log = [json.loads(x) for x in (root / "vllm" / "tune_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2] and all(x["loss"] > 0 for x in log)
    cfg = json.loads((root / "vllm" / "model" / "config.json").read_text())
    assert cfg["vision_config"]["image_size"] == 336 and cfg["vision_feature_layer"] == -2
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"


def test_enrich_stores_576_image_tokens_per_pair(paper_run):
    root, pairs, rows = paper_run
    store = EmbeddingStore(root / "store")
    assert len(store) == len(rows) and store.image_shape == (576, 64) and store.text_shape == (77, 64)
    lengths = [store.get(r["pair_id"]).length for r in rows]
    # rows = the prompt's last position + the description re-tokenized; with the preset's 256 new tokens a random
    # LLM fills all 77 rows, with vllm.max_new_tokens = 6 from the config file it cannot
    assert all(0 < n <= 16 for n in lengths), lengths


def test_ldm_trained_with_an_8_channel_unet(paper_run):
    root, _, _ = paper_run
    unet = json.loads((root / "ldm" / "model" / "unet" / "config.json").read_text())
    assert unet["in_channels"] == 8 and len(unet["block_out_channels"]) == 4
    log = [json.loads(x) for x in (root / "ldm" / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2] and all(x["loss"] == x["loss"] for x in log)


def test_exported_model_generates_at_the_trained_size(paper_run):
    root, _, _ = paper_run
    assert json.loads((root / "ldm" / "model" / "unet" / "config.json").read_text())["sample_size"] == 256 // 8


def test_generate_and_eval(paper_run, tmp_path):
    import shutil

    root, pairs, rows = paper_run
    model = root / "ldm" / "model"
    shutil.copytree(root / "vllm" / "model", model / "vllm", dirs_exist_ok=True)  # as `egolego demo` does
    src = resolve(pairs, rows[-1]["input_path"])
    assert main(["generate", "--model", str(model), "--image", str(src), "--action", rows[-1]["label"],
                 "--out", str(tmp_path / "g.png"), "--steps", "2"]) == 0
    out = Image.open(tmp_path / "g.png")
    assert out.size == Image.open(src).size
    assert main(["eval", "--model", str(model), "--pairs", str(pairs), "--out", str(tmp_path / "ev"), "--store",
                 str(root / "store"), "--steps", "2", "--metrics", "psnr,ssim", "--new-actions", "0", "--quiet"]) == 0
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert res["generated"]["generated"] == 2 and res["metrics"]["psnr"]["n"] == 2 and res["metrics"]["psnr"]["mean"] > 0


def _weights(folder) -> dict:
    from pathlib import Path

    from safetensors.torch import load_file

    return {k: v.float() for f in sorted(Path(folder).glob("*.safetensors")) for k, v in load_file(str(f)).items()}


def test_training_moved_what_it_trains_and_kept_what_is_frozen(paper_run):
    """Two steps each: the LDM's VAE and text encoder are SD-1.5's bit for bit and most UNet tensors moved; the
    VLLM's CLIP tower is the base's and most of its language model moved (the loss reached the weights)."""
    import math

    import torch

    root, _, _ = paper_run
    for part in ("vae", "text_encoder"):
        base, ours = _weights(root / "sd15" / part), _weights(root / "ldm" / "model" / part)
        assert base.keys() == ours.keys() and all(torch.equal(base[k], ours[k]) for k in base), part
    base, ours = _weights(root / "sd15" / "unet"), _weights(root / "ldm" / "model" / "unet")
    moved = [k for k in base if base[k].shape == ours[k].shape and not torch.equal(base[k], ours[k])]
    assert len(moved) > 0.9 * len(base)
    assert ours["conv_in.weight"].shape[1] == 8  # InstructPix2Pix's extra input channels
    log = [json.loads(x) for x in (root / "ldm" / "train_log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(x["loss"]) and x["loss"] > 0 for x in log)
    base, ours = _weights(root / "llava15"), _weights(root / "vllm" / "model")
    tower = [k for k in base if "vision_tower" in k]
    lm = [k for k in base if "language_model" in k and k in ours and base[k].ndim == 2]  # norms (1.0) stay in bf16
    # tuned in bf16 (the config's vllm.bf16): the frozen tower is the base's rounded to bf16, nothing more
    assert tower and all(torch.equal(base[k].bfloat16().float(), ours[k]) for k in tower)
    assert lm and all(not torch.equal(base[k].bfloat16().float(), ours[k]) for k in lm)
