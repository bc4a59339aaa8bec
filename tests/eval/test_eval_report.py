"""`egolego eval` end to end on EgoSynth pairs (the `input` / `target` references), and the HTML report in Chromium."""

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from egolego.cli import main
from egolego.data.manifest import read_manifest
from egolego.eval.run import EvalArgs, evaluate
from egolego.eval.tables import EvalRun, ablation_runs, load_run, markdown, table, transition_bins


@pytest.fixture(scope="module")
def evals(eval_pairs, weights_dir, small_dataset, tmp_path_factory):
    out = {}
    for method in ("input", "target"):
        d = tmp_path_factory.mktemp(f"eval_{method}")
        evaluate(EvalArgs(model=method, pairs=eval_pairs, out=d, weights_dir=weights_dir, egosynth=small_dataset, batch_size=4),
                 progress=False)
        out[method] = d
    return out


def test_per_pair_metrics_and_summary(evals):
    cols = {m: pq.read_table(d / "per_pair.parquet").to_pydict() for m, d in evals.items()}
    for c in ("psnr", "ssim", "lpips", "clip", "egovlp", "egovlp_plus", "blip_b", "blip_b_caption", "action_all", "delta"):
        assert c in cols["input"], c
    t, i = cols["target"], cols["input"]
    n = len(t["pair_id"])
    assert n >= 4 and i["pair_id"] == t["pair_id"]
    assert t["psnr"] == [100.0] * n and all(v == pytest.approx(1, abs=1e-5) for v in t["ssim"] + t["clip"] + t["egovlp"])
    assert all(abs(v) < 1e-6 for v in t["lpips"])
    assert all(v > 0 for v in i["lpips"]) and max(i["psnr"]) < 40
    assert sum(t["action_all"]) / n >= 0.9 and sum(i["action_all"]) / n <= 0.1  # the judge knows a done action
    # outside the action's boxes the input is (nearly) the answer; inside it is not; neither leaves the palette
    assert t["psnr_out"] == [100.0] * n and t["blob"] == [0.0] * n and i["blob"] == [0.0] * n
    assert sum(i["psnr_out"]) / n > sum(i["psnr_in"]) / n + 3 and sum(i["ssim_out"]) > sum(i["ssim_in"])
    info = json.loads((evals["input"] / "eval.json").read_text())
    assert info["n"] == n and info["mode"] == "input"
    m = info["metrics"]["psnr"]
    assert m["lo"] <= m["mean"] <= m["hi"]
    assert {"fid", "kid"} <= set(info["set_metrics"])
    assert "blip_l" in info["skipped"] and "blip-image-captioning-large" in info["skipped"]["blip_l"]
    assert all(-1 <= v <= 1 for v in i["blip_b"]) and all(isinstance(c, str) for c in i["blip_b_caption"])


def test_tables(evals):
    runs = [load_run(d) for d in evals.values()]
    t = table(runs)
    names = [c[0] for c in t["columns"]]
    assert names.index("fid") < names.index("psnr")  # the paper's column order
    assert t["best"] == {}  # references are shown, never ranked
    assert markdown(t).count("\n") == 3 and "**" not in markdown(t)
    bins = transition_bins(runs, "psnr")
    assert len(bins["edges"]) == 5 and sum(bins["counts"]) == len(runs[0].per_pair["pair_id"])
    assert bins["methods"]["target"] == [100.0] * 4


def _run(name, mode, **metrics):
    return EvalRun(Path("."), {"name": name, "mode": mode, "metrics": {k: {"mean": v} for k, v in metrics.items()
                                                                       if k != "fid"},
                               "set_metrics": {"fid": metrics["fid"]}}, {})


def test_best_is_among_trained_methods_with_ties_and_directions():
    runs = [_run("label", "label", psnr=17.2, lpips=0.30, action_all=0.04, fid=3.0),
            _run("lego", "lego", psnr=16.9, lpips=0.25, action_all=0.0401, fid=2.0),
            _run("gt", "target", psnr=100.0, lpips=0.0, action_all=1.0, fid=0.0)]
    t = table(runs)
    assert t["best"]["psnr"] == {0} and t["best"]["lpips"] == {1} and t["best"]["fid"] == {1}
    assert t["best"]["action_all"] == {0, 1}  # equal as displayed (4.0 %): both bold
    assert [r.info["mode"] for r in ablation_runs(runs[::-1])] == ["label", "lego"]
    md = markdown(t)
    assert "**17.20**" in md and "100.00" in md and "**100.00" not in md


def test_resume_regenerates_only_missing(evals, eval_pairs, weights_dir):
    d = evals["input"]
    victim = sorted((d / "images").glob("*.png"))[0]
    victim.unlink()
    r = evaluate(EvalArgs(model="input", pairs=eval_pairs, out=d, metrics=("psnr",), weights_dir=weights_dir), progress=False)
    assert r["generated"]["generated"] == 1 and victim.is_file()


def test_cli_errors(eval_pairs, tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path), "--pairs", str(eval_pairs), "--out", str(tmp_path / "e")]) == 2
    assert "neither a LEGO model folder" in capsys.readouterr().err
    assert main(["eval", "--model", "input", "--pairs", str(eval_pairs), "--out", str(tmp_path / "e"),
                 "--metrics", "psnr,bogus"]) == 2
    assert "unknown ['bogus']" in capsys.readouterr().err
    assert main(["eval", "--model", "input", "--pairs", str(tmp_path / "nope"), "--out", str(tmp_path / "e")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "no eval.json" in capsys.readouterr().err


def test_report_renders_in_chromium(evals, chromium, tmp_path):
    html = tmp_path / "report.html"
    assert main(["report", str(evals["input"]), str(evals["target"]), "--out", str(html)]) == 0
    text = html.read_text()
    assert "<h2>Comparison</h2>" in text and "data:image/png;base64," in text and "src=\"file:" not in text
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
             "--no-first-run", "--virtual-time-budget=5000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-800:]
    assert 'data-rendered="ok"' in dom.stdout  # every embedded image decoded
    assert dom.stdout.count("<tr>") >= 10
    shot = tmp_path / "shot.png"
    r = subprocess.run([chromium, *flags, "--window-size=1200,1600", f"--screenshot={shot}", html.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.is_file()
    from PIL import Image

    px = Image.open(shot).convert("L")
    assert px.getextrema()[0] < 100  # something dark (text, images) was drawn on the page


def test_one_pair_skips_fid_instead_of_failing(eval_pairs, weights_dir, tmp_path):
    r = evaluate(EvalArgs(model="input", pairs=eval_pairs, out=tmp_path, metrics=("psnr", "fid"), weights_dir=weights_dir, limit=1,
                          new_actions=0), progress=False)
    assert r["n"] == 1 and "fid" in r["skipped"] and "psnr" in r["metrics"]


def test_samples_carry_the_action_the_description_and_a_mark(evals, tmp_path):
    """Under each sample row: the action, the description the models were given, and the pair's mark (the demo and
    reproduce mark EgoSynth's rule scenes); a pair without a mark gets none. The transition-time plot leaves the
    ground truth (PSNR 100) off its PSNR axis."""
    from egolego.eval.report import build_report
    from egolego.eval.tables import load_run

    run = load_run(evals["input"])
    pid = run.per_pair["pair_id"][0]
    html = build_report([evals["input"], evals["target"]], tmp_path / "r.html",
                        marks={pid: "rule scene (take-clean): you take the clean dish"}).read_text()
    assert html.count("class='mark'>rule scene (take-clean)") == 1
    assert "VLLM: " in html or not read_manifest(run.info["pairs"])[0]["description"]
    label = next(r["label"] for r in read_manifest(run.info["pairs"]) if r["pair_id"] == pid)
    assert f"<b>{label}</b>" in html


def test_the_psnr_axis_leaves_the_ground_truth_out(evals):
    """The ground truth's PSNR is 100 (identical): drawn, it would squash every other line against the bottom."""
    from egolego.eval.report import plotted
    from egolego.eval.tables import load_run

    runs = [load_run(evals["input"]), load_run(evals["target"])]
    names = {r.info["mode"]: r.name for r in runs}
    bins = transition_bins(runs, "psnr")
    assert set(bins["methods"]) == {names["input"], names["target"]}
    assert set(plotted(runs, "psnr", bins)) == {names["input"]}
    other = dict(bins, methods={k: [v + 1 for v in b] for k, b in bins["methods"].items()})  # any non-PSNR axis
    assert set(plotted(runs, "ssim", other)) == {names["input"], names["target"]}  # other axes keep it


def test_a_finished_run_is_known_by_its_arguments_not_its_count(eval_pairs, tmp_path):
    """The demo and reproduce reuse an eval folder only when it was made with the same deciding arguments: a split
    smaller than the limit is still finished; another seed or sampler is not; batching is not a deciding argument;
    an unreadable eval.json is not finished."""
    import dataclasses

    from egolego.eval.run import finished

    a = EvalArgs(model="input", pairs=eval_pairs, out=tmp_path / "e", metrics=("psnr",), limit=10_000, new_actions=0)
    assert not finished(a)
    r = evaluate(a, progress=False)
    assert r["n"] < 10_000 and finished(a)
    assert finished(dataclasses.replace(a, batch_size=3))
    assert not finished(dataclasses.replace(a, seed=1)) and not finished(dataclasses.replace(a, scheduler="flow_euler_a"))
    (tmp_path / "e" / "eval.json").write_text("{")
    assert not finished(a)


def test_the_report_says_when_compared_models_were_sampled_differently():
    """A reproduce folder resumed across a change of the preset's sampler pairs a model sampled one way with one
    sampled another: the report names each model's sampling; the same sampling, or a baseline / reference that samples
    its own way, gives no note."""
    from egolego.eval.report import sampling_note

    def run(name, mode, scheduler, draws=None):
        r = _run(name, mode, psnr=20.0, fid=1.0)
        r.info["generated"] = {"sampling": {"steps": 4, "scheduler": scheduler}} if scheduler else {"generated": 3}
        if draws:
            r.info["generated"]["draws"] = draws
        return r

    same = [run("label", "label", "flow_euler_a"), run("lego", "lego", "flow_euler_a"), run("SDEdit", "sdedit", "ddim"),
            run("input copy", "input", None)]
    assert sampling_note(same) == ""
    note = sampling_note(same + [run("lego-untuned", "lego", "flow_euler")])
    assert "sampled differently" in note and "lego: noise draws 1, scheduler flow_euler_a, steps 4" in note
    assert "lego-untuned: noise draws 1, scheduler flow_euler, steps 4" in note
    assert "SDEdit" not in note
    assert "lego-untuned: noise draws 2," in sampling_note(same + [run("lego-untuned", "lego", "flow_euler_a", 2)])
