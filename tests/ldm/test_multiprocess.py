"""LDM training on 2 CPU processes (torchrun + gloo) against single-process runs; tested through ``Trainer``.

One launch does a straight run, a run "killed" after step 3 (checkpoints every 2 steps: not a boundary) and
its resume. Proves: only rank 0 writes logs, checkpoints and the model; kill + resume replays the straight run;
2 processes x batch 2 = 1 process x batch 4 = ``grad_accum`` 2 x batch 2 (losses and weights, same seed).
"""

import pytest
import torch
from safetensors.torch import load_file

from egolego import config
from egolego.ldm.train import Trainer

from ..multiproc import launch, read_log

STEPS = 4


def _cfg(tok_dir, batch=2, accum=1) -> dict:
    # label mode + flips: text, image latents, noise, timesteps and CFG dropout all drawn; π's dropout is not
    # drawn (no VLLM tokens), so per-sample randomness is the whole story
    return {"preset": "tiny", "ldm": {"vae": "random", "tokenizer": str(tok_dir), "conditioning": "label",
                                      "batch_size": batch, "grad_accum": accum, "max_steps": STEPS,
                                      "checkpoint_every": 2, "lr": 1e-3, "seed": 5}}


@pytest.fixture(scope="module")
def setup(pairs8, tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("ldm_mp")
    tokenizer.save_pretrained(root / "tok")
    job = {"kind": "ldm_train", "config": _cfg(root / "tok"), "pairs": str(pairs8),
           "runs": [{"out": "a"}, {"out": "b", "stop_after": 3}, {"out": "b", "resume": True}]}
    reports = launch(job, root / "mp")
    single = {name: Trainer(config.from_dict(_cfg(root / "tok", b, g)), pairs8, None, root / name).run(progress=False)
              for name, b, g in (("batch4", 4, 1), ("accum2", 2, 2))}
    return root, reports, single


def _weights(folder):
    return {part: load_file(next((folder / "model" / part).glob("*.safetensors"))) for part in ("unet", "conditioner")}


def _assert_weights(a, b, exact=False, **tol):
    for part in a:
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            if exact:
                assert torch.equal(a[part][k], b[part][k]), f"{part}.{k}"
            else:
                torch.testing.assert_close(a[part][k], b[part][k], msg=f"{part}.{k}", **tol)


def test_only_rank_zero_writes_logs_checkpoints_and_model(setup):
    root, reports, _ = setup
    assert reports[1]["writes"] == []
    assert len(read_log(root / "mp" / "a" / "train_log.jsonl")) == STEPS
    assert (root / "mp" / "a" / "model" / "model_index.json").is_file()


def test_resume_after_a_kill_replays_the_straight_run(setup):
    root, reports, _ = setup
    a, b1, b2 = reports[0]["results"]
    assert (b1["end"], b2["start"], b2["end"]) == (3, 2, STEPS)
    la, lb = read_log(root / "mp" / "a" / "train_log.jsonl"), read_log(root / "mp" / "b" / "train_log.jsonl")
    assert [x["step"] for x in lb] == list(range(1, STEPS + 1))
    assert [(x["loss"], x["lr"]) for x in la] == [(x["loss"], x["lr"]) for x in lb]
    _assert_weights(_weights(root / "mp" / "a"), _weights(root / "mp" / "b"), exact=True)


def test_lr_of_every_step_equals_the_single_process_schedule(setup):
    root, _, _ = setup
    two = [x["lr"] for x in read_log(root / "mp" / "a" / "train_log.jsonl")]
    one = [x["lr"] for x in read_log(root / "batch4" / "train_log.jsonl")]
    assert two == one and len(two) == STEPS


def test_two_processes_equal_one_process_and_accumulation(setup):
    """2 x batch 2 = 1 x batch 4 = accumulation 2 x batch 2: needs every random draw keyed by the sample."""
    root, reports, single = setup
    ranks = [r["results"][0]["losses"] for r in reports]
    two = [(x + y) / 2 for x, y in zip(*ranks)]  # equal batches: the step's loss is the mean of the ranks' losses
    for name in ("batch4", "accum2"):
        torch.testing.assert_close(torch.tensor(single[name]["losses"]), torch.tensor(two), rtol=1e-5, atol=1e-6)
        # Adam moves an element with a float-noise gradient by ±lr: tolerate lr / 10; a wrong sample or loss
        # normalisation moves most elements by ~lr
        _assert_weights(_weights(root / "mp" / "a"), _weights(root / name), rtol=0, atol=1e-4)
