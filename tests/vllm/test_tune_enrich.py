"""Tuning learns the descriptions; generation is batch-invariant; H_t = generation's states; enrichment resumes."""

import shutil

import pytest
import torch
from PIL import Image

from egolego import config
from egolego.config import VllmConfig
from egolego.data.llava_text import INFERENCE_TEMPLATE, answer_text, prompt_text, question
from egolego.data.manifest import read_manifest, resolve, write_manifest
from egolego.vllm.embed import teacher_forced_states
from egolego.vllm.enrich import enrich, generate_descriptions
from egolego.vllm.model import load_llava
from egolego.vllm.store import EmbeddingStore


@pytest.fixture(scope="module")
def loaded(tuned):
    model, proc = load_llava(tuned[0])
    rows = read_manifest(tuned[1])
    imgs = [Image.open(resolve(tuned[1], r["input_path"])).convert("RGB") for r in rows]
    return model.eval(), proc, rows, imgs


def test_tuning_reproduces_the_truth_descriptions(loaded):
    model, proc, rows, imgs = loaded
    got = generate_descriptions(model, proc, imgs, [r["label"] for r in rows], max_new_tokens=48)
    wrong = [(g, r["description"]) for g, r in zip(got, rows) if g != r["description"]]
    assert not wrong, wrong[:3]


def test_batched_generation_equals_one_by_one(loaded):
    model, proc, rows, imgs = loaded
    labels = [r["label"] for r in rows[:5]]
    batch = generate_descriptions(model, proc, imgs[:5], labels, max_new_tokens=48)
    single = [generate_descriptions(model, proc, [im], [lab], max_new_tokens=48)[0] for im, lab in zip(imgs[:5], labels)]
    assert batch == single


@torch.no_grad()
def test_teacher_forced_states_equal_generation_states(loaded):
    model, proc, rows, imgs = loaded
    prompt = prompt_text(question(INFERENCE_TEMPLATE, rows[0]["label"]))
    enc = proc(images=[imgs[0]], text=[prompt], return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=48, do_sample=False, output_hidden_states=True,
                         return_dict_in_generate=True, pad_token_id=proc.tokenizer.pad_token_id,
                         eos_token_id=proc.tokenizer.eos_token_id)
    steps = torch.stack([h[-1][0, -1] for h in out.hidden_states])  # (steps, D): last layer, last position
    text = proc.tokenizer.decode(out.sequences[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    _, h_txt, n = teacher_forced_states(model, proc, [imgs[0]], [prompt], [answer_text(text)], VllmConfig().text_rows)
    assert int(n[0]) == len(steps)
    torch.testing.assert_close(h_txt[0, :len(steps)], steps, atol=1e-4, rtol=1e-4)
    assert torch.count_nonzero(h_txt[0, len(steps):]) == 0


def _copy_manifest(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_interrupted_enrichment_resumes_bit_identical(tuned, tmp_path):
    model_dir, pairs, _ = tuned
    full = enrich(model_dir, _copy_manifest(pairs, tmp_path / "p1"), tmp_path / "s1", batch_size=4, shard_size=4,
                  progress=False)
    assert full["stored"] == 16 and full["bytes_per_pair"] > 0
    p2 = _copy_manifest(pairs, tmp_path / "p2")
    part = enrich(model_dir, p2, tmp_path / "s2", batch_size=4, shard_size=4, progress=False, stop_after_batches=2)
    assert part["stored"] == 8
    again = enrich(model_dir, p2, tmp_path / "s2", batch_size=4, shard_size=4, progress=False)
    assert again["done"] == 8 and again["stored"] == 16
    a, b = EmbeddingStore(tmp_path / "s1"), EmbeddingStore(tmp_path / "s2")
    assert sorted(a.entries) == sorted(b.entries) == sorted(r["pair_id"] for r in read_manifest(pairs))
    for pid in a.entries:
        ea, eb = a.get(pid), b.get(pid)
        assert torch.equal(ea.h_img, eb.h_img) and torch.equal(ea.h_txt, eb.h_txt) and ea.length == eb.length
    d1 = {r["pair_id"]: r["description"] for r in read_manifest(tmp_path / "p1")}
    d2 = {r["pair_id"]: r["description"] for r in read_manifest(p2)}
    assert d1 == d2 and all(d1.values())


def test_shards_split_the_work(tuned, tmp_path):
    model_dir, pairs, _ = tuned
    p = _copy_manifest(pairs, tmp_path / "p")
    s0 = enrich(model_dir, p, tmp_path / "s", batch_size=8, num_shards=2, shard_index=0, progress=False)
    s1 = enrich(model_dir, p, tmp_path / "s", batch_size=8, num_shards=2, shard_index=1, progress=False)
    assert s0["done"] + s1["done"] == 16 and s1["stored"] == 16
    assert all(r["description"] for r in read_manifest(p))


def test_corrupt_and_missing_images_are_skipped_and_listed(tuned, tmp_path):
    model_dir, pairs, _ = tuned
    p = _copy_manifest(pairs, tmp_path / "p")
    rows = read_manifest(p)
    (p / rows[0]["input_path"]).write_bytes(b"not a jpeg")
    rows[1]["input_path"] = "images/missing.jpg"
    write_manifest(rows, p)
    s = enrich(model_dir, p, tmp_path / "s", batch_size=8, progress=False)
    assert s["skipped"] == 2 and s["stored"] == 14
    report = open(s["report"]).read()
    assert rows[0]["pair_id"] in report and rows[1]["pair_id"] in report


def test_states_kept_from_generation_equal_the_teacher_forced_pass(loaded):
    """Enrichment keeps H_i / H_t from the generation itself (no second pass): same as ``teacher_forced_states``."""
    from egolego.vllm.enrich import generate_with_states

    model, proc, rows, imgs = loaded
    labels = [r["label"] for r in rows[:5]]
    descs, h_img, h_txt, lens = generate_with_states(model, proc, imgs[:5], labels, max_new_tokens=48)
    assert descs == generate_descriptions(model, proc, imgs[:5], labels, max_new_tokens=48)
    prompts = [prompt_text(question(INFERENCE_TEMPLATE, lab)) for lab in labels]
    ref_img, ref_txt, ref_lens = teacher_forced_states(model, proc, imgs[:5], prompts, [answer_text(d) for d in descs],
                                                   VllmConfig().text_rows)
    assert torch.equal(lens, ref_lens) and int(lens.min()) > 5
    torch.testing.assert_close(h_img, ref_img, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(h_txt, ref_txt, atol=1e-4, rtol=1e-4)


def test_the_tuners_memo_gives_the_batches_the_processor_gives(tuned, tmp_path, monkeypatch):
    """A tuning batch built from memoised prompts and pixels equals ``encode_samples`` on freshly opened images,
    both the first time (a miss) and the second (a hit, no image opened); with no room for pixels it still does."""
    from PIL import Image

    from egolego.data.llava_records import read_json
    from egolego.vllm import tune as tune_mod
    from egolego.vllm.conversation import sample_texts
    from egolego.vllm.embed import encode_samples

    model_dir, pairs, data = tuned
    cfg = config.preset("tiny")
    cfg.vllm.tokenizer, cfg.vllm.epochs, cfg.vllm.batch_size = str(model_dir), 2, 4
    cfg.vllm.resample_templates = False
    tr = tune_mod.VllmTuner(cfg, data, pairs, tmp_path / "t")
    recs = read_json(data)

    def want(micro):
        rs = [recs[tr._record(p)] for p in tr.positions(micro)]
        texts = [sample_texts(r) for r in rs]
        ims = [Image.open(pairs / r["image"]).convert("RGB") for r in rs]
        ids, mask, labels, pix, _ = encode_samples(tr.proc, ims, [t[0] for t in texts], [t[1] for t in texts])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "pixel_values": pix}

    def same(got, ref):
        assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in ref)

    ref = want(0)
    same(tr.batch(0), ref)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(tune_mod.Image, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    same(tr.batch(0), ref)  # the same samples again: from the memo
    assert opened == []
    monkeypatch.undo()
    monkeypatch.setattr(tune_mod, "PIXEL_CACHE_BYTES", 0)
    fresh = tune_mod.VllmTuner(cfg, data, pairs, tmp_path / "u")
    same(fresh.batch(1), want(1))
    assert fresh._pixels == {}


def test_vllm_tune_honours_the_configs_rendered_stills(pairs16, vtok, tmp_path, capsys):
    """`egolego vllm tune --config` with `vllm.synthetic_records` tunes on the curated records *and* that many
    rendered stills for `vllm.synthetic_epochs`, as the demo's and reproduce's stage do (it used to ignore them)."""
    import json

    from egolego.cli import main
    from egolego.data.llava_records import read_json, records_from_manifest, write_json

    tok = tmp_path / "tok"
    vtok[1].save_pretrained(tok)
    data = tmp_path / "tuning.json"
    write_json(records_from_manifest(read_manifest(pairs16)), data)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: tiny\nvllm:\n  synthetic_records: 6\n  synthetic_epochs: 1\n  batch_size: 8\n")
    out = tmp_path / "run"
    assert main(["vllm", "tune", "--data", str(data), "--images", str(pairs16), "--out", str(out), "--config", str(cfg),
                 "--tokenizer", str(tok)]) == 0
    assert "+ 6 rendered EgoSynth stills" in capsys.readouterr().err
    merged = read_json(out / "tuning_with_scenes.json")
    assert len(merged) == 16 + 6 and all((out / r["image"]).is_file() for r in merged)
    steps = [json.loads(line)["step"] for line in (out / "tune_log.jsonl").read_text().splitlines()]
    assert max(steps) == 3 and (out / "model" / "config.json").is_file()  # 1 epoch of 22 records in batches of 8
