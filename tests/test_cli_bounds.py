"""Values checked where they enter (issue 12): each case ends with one line naming the flag or key, exit 2, fast."""

import time

import pytest

from egolego.cli import main


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("egolego") and "error" in err[0], err
    for n in needles:
        assert n in err[0], err[0]


@pytest.mark.parametrize("args,needle", [
    (["synth", "--seed", "-1"], "--seed"), (["synth", "--size", "100000"], "--size"),
    (["synth", "--actions", "1000000000000"], "--actions"), (["synth", "--seed", str(2**40)], "--seed"),
    (["tokenizer", "--corpus", "c.txt", "--max-length", "0"], "--max-length"),
    (["demo", "--minutes", "nan"], "--minutes"), (["demo", "--minutes", "inf"], "--minutes"),
    (["generate", "--image", "x.png", "--action", "a", "--out", "o.png", "--seed", "-3"], "--seed"),
    (["eval", "--model", "input", "--pairs", "p", "--out", "e", "--new-actions", "-1"], "--new-actions"),
    (["curate", "--pairs", "p", "--out", "t.json", "--concurrency", "100000"], "--concurrency"),
])
def test_numeric_bounds(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.chdir(tmp_path)
    cmd = args[:1] + (["--out", str(tmp_path / "o")] if args[0] in ("synth", "tokenizer") else []) + args[1:]
    t = time.monotonic()
    assert main(cmd) == 2
    assert time.monotonic() - t < 5
    _one_line_error(capsys, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("yaml_text,key", [("ldm:\n  max_steps: -5\n", "ldm.max_steps"),
                                           ("ldm:\n  batch_size: 0\n", "ldm.batch_size"),
                                           ("ldm:\n  lr: .nan\n", "ldm.lr"), ("ldm:\n  max_steps: ten\n", "ldm.max_steps"),
                                           ("ldm: [\n", "--config")])
def test_config_values_are_checked(tmp_path, capsys, yaml_text, key):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    assert main(["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(cfg)]) == 2
    _one_line_error(capsys, key)
    assert not (tmp_path / "run" / "model").exists()


def test_outputs_of_the_wrong_kind(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    cases = [
        (["generate", "--image", "x.png", "--action", "a", "--out", str(tmp_path / "noext")], "--out"),
        (["generate", "--image", "x.png", "--action", "a", "--out", str(tmp_path / "adir.png")], None),
        (["vllm", "data", "--pairs", str(tmp_path), "--out", str(tmp_path / "adir")], "--out"),
        (["data", "export", "--pairs", str(tmp_path), "--format", "lego", "--out", str(tmp_path / "afile")], "--out"),
        (["report", str(tmp_path), "--out", str(tmp_path / "adir")], "--out"),
        (["vllm", "enrich", "--model", str(tmp_path), "--pairs", str(tmp_path), "--out", str(tmp_path / "afile")],
         "--model"),
        (["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "r"), "--vae", str(tmp_path / "nope")], "--vae"),
        (["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "r"), "--tokenizer", str(tmp_path / "no")],
         "--tokenizer"),
    ]
    (tmp_path / "adir.png").mkdir()
    for argv, needle in cases:
        assert main(argv) == 2, argv
        _one_line_error(capsys, *([needle] if needle else []))
