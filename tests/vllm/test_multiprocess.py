"""VLLM tuning and enrichment on 2 CPU processes (torchrun + gloo) against the single-process runs.

One launch does three runs in one process group: a straight run, a run "killed" after step 3 (checkpoints every
2 steps: not a boundary), its ``--resume``, then ``vllm enrich`` across both ranks. The single-process references
run here. Proves: the lr of every step equals the single-process schedule; 2 processes x batch 2 = 1 process x
batch 4 = ``grad_accum`` 2 x batch 2 (losses and weights); only rank 0 writes logs, checkpoints, model;
kill + resume replays the straight run; enrichment covers every pair once with ``vllm.max_new_tokens``.
"""

import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file

from egolego import config
from egolego.data.llava_records import records_from_manifest, write_json
from egolego.data.manifest import read_manifest
from egolego.vllm.tune import VllmTuner

from ..multiproc import launch, read_log

STEPS = 4  # 16 records / (2 processes x batch 2)


def _cfg(tok_dir, batch=2, accum=1) -> dict:
    return {"preset": "tiny", "vllm": {"tokenizer": str(tok_dir), "epochs": 1, "batch_size": batch, "grad_accum": accum,
                                       "warmup_ratio": 0.25, "checkpoint_every": 2, "max_new_tokens": 5}}


@pytest.fixture(scope="module")
def setup(pairs16, vtok, tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm_mp")
    vtok[1].save_pretrained(root / "tok")
    write_json(records_from_manifest(read_manifest(pairs16)), root / "tuning.json")
    shutil.copytree(pairs16, root / "pairs")
    job = {"kind": "vllm_tune", "config": _cfg(root / "tok"), "data": str(root / "tuning.json"), "images": str(pairs16),
           "runs": [{"out": "a"}, {"out": "b", "stop_after": 3}, {"out": "b", "resume": True}],
           "after_argv": ["vllm", "enrich", "--model", str(root / "mp" / "a" / "model"), "--pairs", str(root / "pairs"),
                          "--out", str(root / "mp" / "store"), "--batch-size", "4"]}
    reports = launch(job, root / "mp")
    single = {}
    for name, batch, accum in (("batch4", 4, 1), ("accum2", 2, 2)):
        t = VllmTuner(config.from_dict(_cfg(root / "tok", batch, accum)), root / "tuning.json", pairs16, root / name)
        single[name] = t.run(progress=False)
    return root, reports, single


def _weights(folder):
    return load_file(next(folder.glob("model*.safetensors")))


def test_two_ranks_ran_the_straight_kill_and_resume_runs(setup):
    root, reports, _ = setup
    a, b1, b2 = reports[0]["results"][:3]
    assert (a["start"], a["end"], a["total"]) == (0, STEPS, STEPS)
    assert (b1["end"], b2["start"], b2["end"]) == (3, 2, STEPS)  # resumed from the step-2 checkpoint


def test_lr_of_every_step_equals_the_single_process_schedule(setup):
    root, _, _ = setup
    lrs = {n: [x["lr"] for x in read_log(root / d / "tune_log.jsonl")] for n, d in
           (("two", "mp/a"), ("batch4", "batch4"), ("accum2", "accum2"))}
    base, warm = config.preset("tiny").vllm.lr, 1  # warm-up 0.25 x 4 steps, then cosine to 0 at step 4
    expect = [base * (k / warm if k < warm else 0.5 * (1 + math.cos(math.pi * (k - warm) / (STEPS - warm))))
              for k in range(STEPS)]
    for name, got in lrs.items():
        assert got == pytest.approx(expect, abs=1e-12), name


def test_two_processes_equal_one_process_and_accumulation(setup):
    root, reports, single = setup
    two = reports[0]["results"][0]["losses"]
    assert reports[1]["results"][0]["losses"] == two  # every rank reports the loss of the whole step
    for name in ("batch4", "accum2"):
        torch.testing.assert_close(torch.tensor(single[name]["losses"]), torch.tensor(two), rtol=1e-5, atol=1e-6)
        wa, wb = _weights(root / "mp" / "a" / "model"), _weights(root / name / "model")
        assert wa.keys() == wb.keys()
        for k in wa:
            # Adam moves an element with a float-noise gradient by ±lr (2e-3): tolerate lr / 10
            torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=2e-4, msg=f"{name}: {k}")
    logged = [x["loss"] for x in read_log(root / "mp" / "a" / "tune_log.jsonl")]
    assert logged == pytest.approx(two, abs=1e-6)


def test_resume_after_a_kill_replays_the_straight_run(setup):
    root, _, _ = setup
    la, lb = read_log(root / "mp" / "a" / "tune_log.jsonl"), read_log(root / "mp" / "b" / "tune_log.jsonl")
    assert [x["step"] for x in lb] == list(range(1, STEPS + 1))
    assert [(x["loss"], x["lr"]) for x in la] == [(x["loss"], x["lr"]) for x in lb]
    wa, wb = _weights(root / "mp" / "a" / "model"), _weights(root / "mp" / "b" / "model")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_only_rank_zero_writes_logs_checkpoints_and_model(setup):
    root, reports, _ = setup
    rank1 = [w for w in reports[1]["writes"] if w.split(" ", 1)[1].startswith(("a/", "b/"))]
    assert rank1 == []
    assert (root / "mp" / "a" / "model" / "config.json").is_file()
    assert [p.name for p in sorted((root / "mp" / "a" / "checkpoints").glob("step-*"))] == ["step-0000002", "step-0000004"]


def test_enrich_across_ranks_covers_every_pair_once(setup):
    root, reports, _ = setup
    assert [r["results"][-1]["rc"] for r in reports] == [0, 0]
    ids = sorted(r["pair_id"] for r in read_manifest(root / "pairs"))
    per_writer = [set(json.loads(f.read_text())["entries"]) for f in sorted((root / "mp" / "store").glob("index-*.json"))]
    assert len(per_writer) == 2 and all(per_writer)
    assert per_writer[0].isdisjoint(per_writer[1]) and sorted(per_writer[0] | per_writer[1]) == ids
    descs = [r["description"] for r in read_manifest(root / "pairs")]
    # vllm.max_new_tokens = 5: at most 5 words (re-tokenizing decoded text need not give back the same 5 tokens)
    assert all(len(d.split()) <= 5 for d in descs), descs
