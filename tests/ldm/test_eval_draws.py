"""`egolego eval --draws K`: several noise draws per pair under a stochastic sampler, each pair's metrics averaged."""

import dataclasses
import json
import math

import pyarrow.parquet as pq
import pytest

from egolego import config
from egolego.cli import main
from egolego.eval.draws import merge_columns, merge_set_metrics, per_draw_means
from egolego.eval.run import EvalArgs, evaluate, finished
from egolego.ldm.train import Trainer


@pytest.fixture(scope="module")
def label_model(pairs8, tmp_path_factory):
    """Two training steps of the tiny preset: its sampler (`flow_euler_a`) draws fresh noise at every step. Not
    residual: a residual model this young returns its input whatever the noise."""
    cfg = config.preset("tiny")
    c = cfg.ldm
    c.conditioning, c.max_steps, c.batch_size, c.checkpoint_every, c.unet_channels = "label", 2, 4, 100, [32, 64, 64]
    c.residual = False
    assert c.scheduler == "flow_euler_a"
    out = tmp_path_factory.mktemp("label_model")
    Trainer(cfg, pairs8, None, out).run(progress=False)
    return out / "model"


def _cols(folder):
    return pq.read_table(folder / "per_pair.parquet").to_pydict()


def test_two_draws_are_the_mean_of_two_single_draw_runs(label_model, pairs8, tmp_path):
    common = dict(model=str(label_model), pairs=pairs8, split="train", metrics=("psnr", "ssim"), new_actions=0,
                  batch_size=4)
    one = [evaluate(EvalArgs(out=tmp_path / f"seed{s}", seed=s, **common), progress=False) for s in (0, 1)]
    a = EvalArgs(out=tmp_path / "two", draws=2, **common)
    r = evaluate(a, progress=False)
    c0, c1, both = _cols(tmp_path / "seed0"), _cols(tmp_path / "seed1"), _cols(tmp_path / "two")
    assert c0["psnr"] != c1["psnr"]  # the sampler is stochastic: the draws differ
    for m in ("psnr", "ssim"):
        assert both[m] == pytest.approx([(x + y) / 2 for x, y in zip(c0[m], c1[m])], abs=1e-9)
        assert r["generated"]["per_draw"][m] == pytest.approx([o["metrics"][m]["mean"] for o in one], abs=1e-9)
    assert r["generated"]["draws"] == 2 and r["generated"]["generated"] == 2 * r["n"]
    assert (tmp_path / "two" / "images").is_dir() and len(list((tmp_path / "two" / "draws" / "1" / "images").glob("*.png"))) == r["n"]
    # a finished run is known with its draws; a record from before the flag is a one-draw run
    assert finished(a) and not finished(dataclasses.replace(a, draws=3))
    old = tmp_path / "seed0" / "eval.json"
    rec = json.loads(old.read_text())
    del rec["args"]["draws"]
    old.write_text(json.dumps(rec))
    assert finished(EvalArgs(out=tmp_path / "seed0", seed=0, **common))
    # a rerun with a third draw reuses the two drawn
    r3 = evaluate(dataclasses.replace(a, draws=3), progress=False)
    assert r3["generated"]["generated"] == r["n"] and r3["generated"]["reused"] == 2 * r["n"]


def test_a_reference_is_one_draw_and_the_flag_is_checked(pairs8, tmp_path, capsys):
    r = evaluate(EvalArgs(model="input", pairs=pairs8, split="train", out=tmp_path / "in", metrics=("psnr",),
                          draws=3, new_actions=0), progress=False)
    assert "draws" not in r["generated"] and not (tmp_path / "in" / "draws").exists()
    code = main(["eval", "--model", "input", "--pairs", str(pairs8), "--out", str(tmp_path / "x"), "--draws", "0"])
    assert code != 0 and "--draws" in capsys.readouterr().err


def test_merging_draws_averages_numbers_and_keeps_text():
    nan = math.nan
    draws = [{"psnr": [10.0, nan, nan], "cap": ["a", "b", "c"], "action_all": [1.0, 0.0, nan]},
             {"psnr": [20.0, 4.0, nan], "cap": ["x", "y", "z"], "action_all": [0.0, 0.0, nan]}]
    m = merge_columns(draws)
    assert m["psnr"][:2] == [15.0, 4.0] and math.isnan(m["psnr"][2])  # NaN where a draw has none; all-NaN stays NaN
    assert m["action_all"][:2] == [0.5, 0.0] and m["cap"] == ["a", "b", "c"]
    assert per_draw_means(draws)["psnr"] == [10.0, 12.0]
    assert merge_set_metrics([{"fid": 2.0, "kid": 1.0}, {"fid": 4.0}]) == {"fid": 3.0}


def test_frames_drawn_another_way_are_drawn_again(label_model, pairs8, tmp_path):
    """An eval folder evaluated again with another seed (or sampler) scores the new setting's frames, not the old
    ones left in images/; frames with no record of how they were drawn are drawn again too."""
    common = dict(model=str(label_model), pairs=pairs8, split="train", metrics=("psnr",), new_actions=0, batch_size=4)
    evaluate(EvalArgs(out=tmp_path / "s1", seed=1, **common), progress=False)
    evaluate(EvalArgs(out=tmp_path / "x", seed=0, **common), progress=False)
    r = evaluate(EvalArgs(out=tmp_path / "x", seed=1, **common), progress=False)
    assert r["generated"]["generated"] == r["n"] and _cols(tmp_path / "x")["psnr"] == _cols(tmp_path / "s1")["psnr"]
    r = evaluate(EvalArgs(out=tmp_path / "x", seed=1, **common), progress=False)
    assert r["generated"]["reused"] == r["n"]  # same setting: reused
    (tmp_path / "x" / "images" / "drawn_with.json").unlink()
    r = evaluate(EvalArgs(out=tmp_path / "x", seed=1, **common), progress=False)
    assert r["generated"]["generated"] == r["n"]
