"""`egolego reproduce` end to end at the smallest size: six models + the baselines, references, paired section, resume."""

import json
import re

from egolego import config
from egolego.cli import main
from egolego.eval.paired import paired, paired_table
from egolego.reproduce import CONTROL_RUNS, CURVE_RUNS, JOBS_GAIN, RUNS, named_ids, steps_for, twin_ids


def test_reproduce_tiny_end_to_end_and_resume(tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("preset: tiny\nsynth:\n  actions: 30\n  workers: 1\nvllm:\n  epochs: 2\n  synthetic_records: 24\n  synthetic_epochs: 1\n  vision_pretrain: {scenes: 128, epochs: 2}\n"
                        "ldm:\n  unet_channels: [32, 64, 64]\n  t2i_steps: 4\n")  # the baselines' DDIM steps: 20 in tiny
    out = tmp_path / "rep"
    args = ["reproduce", "--out", str(out), "--config", str(cfg_file), "--ldm-steps", "3", "--test-pairs", "4",
            "--jobs", "2", "--control", "--curve", "6,12", "--clips"]
    assert main(args) == 0
    first = capsys.readouterr().out
    # the 7 models and the curve's 4 were trained by the 2 worker processes, so the loops found each one trained
    assert len(re.findall(r"reused \S*seed0/\S*ldm_\S+model", first)) == len(RUNS) + 1 + 2 * len(CURVE_RUNS)
    assert "[reproduce] LDM: train `lego`" in first and "[demo]" not in first  # its stages speak as reproduce
    seed = out / "seed0"
    for name, _, _ in RUNS:
        info = json.loads((seed / "eval" / name / "eval.json").read_text())
        assert info["n"] == 4 and {"psnr", "ssim", "action_all", "desc_acc_all"} <= set(info["metrics"])
    assert json.loads((seed / "eval" / "lego-untuned" / "eval.json").read_text())["tag"] == "untuned VLLM"
    for baseline, name in (("sdedit", "SDEdit"), ("proxnpi", "ProxNPI")):  # on the text-to-image model
        info = json.loads((seed / "eval" / baseline / "eval.json").read_text())
        assert (info["name"], info["mode"], info["n"]) == (name, baseline, 4)
    assert (seed / "ldm_t2i" / "model" / "model_index.json").exists()
    # the untuned VLLM wrote its own descriptions into its own copy of the manifest, not into the tuned one
    from egolego.data.manifest import read_manifest

    tuned = {r["pair_id"]: r["description"] for r in read_manifest(seed / "pairs")}
    untuned = {r["pair_id"]: r["description"] for r in read_manifest(seed / "pairs_untuned")}
    assert tuned.keys() == untuned.keys() and tuned != untuned
    html = (seed / "report.html").read_text()
    assert "Paired differences" in html and "rule scenes" in html and "Ablation: conditioning" in html
    for comparison in ("lego − label", "lego − desc", "desc − label", "lego − lego-untuned"):
        assert comparison in html
    assert "Data efficiency" in html and "Control world" in html and (seed / "curve.png").is_file()
    assert html.index("ProxNPI") < html.index("SDEdit") < html.index("lego-untuned")  # the paper's column order
    summary = json.loads((out / "summary.json").read_text())
    s0 = summary["seeds"]["0"]
    assert summary["steps_per_model"] == 3 and "action_all/all pairs" in s0["paired"]["lego − label"]
    assert s0["subset"] == "rule scenes" and set(s0["curve"]) == {"6", "12", str(s0["train_pairs"])}
    # the control world: the same seed without knowledge, its own data and models, twin scenes
    control = out / "seed0-control"
    assert json.loads((control / "egosynth" / "egosynth.json").read_text()).get("knowledge") is None
    assert sorted(p.name for p in control.glob("ldm_*")) == sorted(f"ldm_{n}" for n in CONTROL_RUNS)
    assert s0["control"]["subset"] == "twin scenes" and "lego − label" in s0["control"]["paired"]
    # the curve's models trained on that many pairs (ldm.train_pairs, saved with the model)
    from egolego.config import load

    assert load(seed / "curve" / "ldm_lego_6" / "model" / "lego_config.yaml").ldm.train_pairs == 6
    assert summary["jobs"] == 2 and any(k.startswith("LDM: train `lego-untuned`") and k.endswith("[worker]") and v > 0
                                        for k, v in summary["stages_s"].items())  # the workers' training times
    for line in ("lego - label all correct", "lego - desc all correct", "desc - label all correct"):  # summary
        assert re.search(rf"reproduce: seed 0: {line} [+-]\d+\.\d \[[^]]+\] on all pairs; \S+ \[[^]]+\] on rule", first), line
    # --clips: lego extended with the progress input, scored along the action, the clips in the report
    timeline = json.loads((seed / "eval" / "timeline" / "timeline.json").read_text())
    assert timeline["single"] == str(seed / "ldm_lego" / "model") and timeline["actions"] >= 1
    assert (seed / "ldm_lego_clips" / "model" / "model_index.json").exists() and (seed / "eval" / "timeline" / "clips.png").is_file()
    assert "The action as a clip" in html and set(s0["timeline"]) == {"progress", "hold"}
    assert "1.00" in s0["timeline"]["progress"] and "clips, all correct by progress" in first
    main(args)  # a rerun reuses every stage
    assert capsys.readouterr().out.count("reused") >= 7 + 4 + 5 + 4 + 3 + 3
    assert main(["reproduce", "--out", str(tmp_path / "r2"), "--runs", "label,desc", "--clips"]) == 2
    assert "--clips" in capsys.readouterr().err


def test_paired_differences_and_their_table(tmp_path):
    """a − b on hand-made per-pair values: the difference and the subset are what they should be."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [f"p{i}" for i in range(6)]
    for name, acc in (("lego", [1, 1, 1, 0, 1, 1]), ("label", [0, 1, 0, 0, 1, 0])):
        d = tmp_path / name
        d.mkdir()
        (d / "eval.json").write_text(json.dumps({"name": name, "mode": name, "metrics": {}, "n": 6}))
        pq.write_table(pa.table({"pair_id": ids, "action_all": [float(x) for x in acc]}), d / "per_pair.parquet")
    res = paired(tmp_path / "lego", tmp_path / "label", {"p0", "p2"}, "rule scenes")
    assert abs(res["action_all/all pairs"]["mean"] - 0.5) < 1e-9
    assert res["action_all/rule scenes"]["mean"] == 1.0 and res["action_all/rule scenes"]["n"] == 2
    more = paired(tmp_path / "lego", tmp_path / "label", {"p0", "p2"}, "rule scenes", more={"rule, missed": {"p3", "p5"}})
    assert more["action_all/rule, missed"]["mean"] == 0.5 and more["action_all/rule, missed"]["n"] == 2
    body = paired_table({"lego − label": res})
    assert "+50.0" in body and "+100.0" in body and "lego − label" in body


def test_twin_ids(small_dataset):
    from egolego.synth.pairs import truth_by_pair_id

    truth = truth_by_pair_id(small_dataset)
    rows = [{"pair_id": t["action_id"]} for t in {id(v): v for v in truth.values()}.values()]
    twins = twin_ids(rows, small_dataset)
    for r in rows:
        t = truth[r["pair_id"]]
        n_same = sum(o["kind"] == t["target"]["kind"] for o in t["scene"]["objects"])
        assert (r["pair_id"] in twins) == (n_same > 1)
    assert 0 < len(twins) < len(rows)
    # in the knowledge world (the default) the look-alike scenes are exactly the scenes a rule decides
    assert twins == {r["pair_id"] for r in rows if truth[r["pair_id"]].get("rule")}
    config.preset("tiny")  # the module imports cleanly with the preset


def test_named_ids_split_the_look_alikes_by_the_description(small_dataset):
    """A description names the target when it gives the target's kind and its side: the exact one does, the same
    words with the other side do not, and an empty one does not."""
    from egolego.synth.pairs import truth_by_pair_id

    truth = truth_by_pair_id(small_dataset)
    records = list({id(v): v for v in truth.values()}.values())
    flip = {"on the left": "on the right", "on the right": "on the left", "in the middle": "on the left"}
    exact = [{"pair_id": t["action_id"], "description": t["description"]} for t in records]
    moved = [{"pair_id": t["action_id"], "description": t["description"].replace(
        t["target"]["side"], flip[t["target"]["side"]], 1)} for t in records]
    assert named_ids(exact, small_dataset) == {t["action_id"] for t in records}
    assert named_ids(moved, small_dataset) == set()
    assert named_ids([{"pair_id": records[0]["action_id"], "description": ""}], small_dataset) == set()


def test_minutes_sizing_counts_on_parallel_jobs():
    """`--minutes` with `--jobs 2` on a CPU gets the steps that side-by-side training affords in the same budget
    (before, the sizing ignored --jobs and such a run ended early); a GPU's jobs are not assumed to gain."""
    one, two = steps_for(60, 1, "cpu"), steps_for(60, 1, "cpu", jobs=2)
    assert two > one * 1.2
    models = len(RUNS) + 1
    assert two * models / (5.0 * JOBS_GAIN) <= 60 * 60 * 0.8  # training still fits 80 % of the budget
    assert steps_for(60, 1, "cuda", jobs=2) == steps_for(60, 1, "cuda")
    assert steps_for(60, 2, "cpu", jobs=4) == steps_for(60, 2, "cpu", jobs=2)  # more jobs: no gain assumed


def test_runs_select_rows_of_the_table_in_the_papers_order(tmp_path, capsys):
    from egolego.reproduce import select_runs

    assert [r[0] for r in select_runs(["lego", "label", "desc"])] == ["label", "desc", "lego"]
    assert select_runs(None) == RUNS
    assert steps_for(60, 1, "cpu", baselines=False, runs=3) == 2 * steps_for(60, 1, "cpu", baselines=False, runs=6)
    assert main(["reproduce", "--out", str(tmp_path / "r"), "--runs", "label,ip2p"]) == 2
    err = capsys.readouterr().err
    assert "--runs" in err and "ip2p" in err and "lego-untuned" in err
