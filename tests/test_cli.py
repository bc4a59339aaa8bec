"""The command line: --help everywhere, one-line errors naming the flag, no tracebacks."""

import subprocess
import sys

import pytest

from egolego.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "egolego.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("cmd", [[], ["synth"], ["tokenizer"], ["config"], ["demo"], ["vae", "train"], ["train"], ["generate"],
                                 ["vllm", "tune"], ["vllm", "pretrain-vision"], ["vllm", "enrich"], ["vllm", "data"], ["data", "build"],
                                 ["data", "export"], ["curate"], ["pairs", "from-egosynth"]])
def test_help(cmd):
    r = run(*cmd, "--help")
    assert r.returncode == 0 and "usage: egolego" in r.stdout


@pytest.mark.parametrize("args,flag", [
    (["--actions", "-3"], "--actions"), (["--actions", "abc"], "--actions"), (["--size", "60"], "--size"),
    (["--size", "-8"], "--size"), (["--format", "epic,youtube"], "--format"), (["--workers", "0"], "--workers"),
])
def test_synth_bad_values(tmp_path, args, flag):
    r = run("synth", "--out", str(tmp_path / "d"), *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in r.stderr


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("synth", "--out", str(blocker / "sub"), "--actions", "2")
    assert r.returncode == 2 and "--out" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_existing_dataset_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["synth", "--out", str(out), "--actions", "3", "--size", "32", "--format", "epic", "--quiet"]) == 0
    first = (out / "truth.jsonl").read_bytes()
    assert main(["synth", "--out", str(out), "--actions", "3", "--size", "32", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and (out / "truth.jsonl").read_bytes() == first  # nothing lost
    assert main(["synth", "--out", str(out), "--actions", "4", "--size", "32", "--format", "epic", "--quiet",
                 "--overwrite"]) == 0
    assert len((out / "truth.jsonl").read_text().splitlines()) == 4


def test_config_command(tmp_path, capsys):
    assert main(["config", "--preset", "paper"]) == 0
    assert "image_size: 256" in capsys.readouterr().out
    bad = tmp_path / "c.yaml"
    bad.write_text("preset: tiny\nsynth:\n  actoins: 3\n")
    assert main(["config", "--file", str(bad)]) == 2
    assert "actoins" in capsys.readouterr().err


def test_pretrain_vision_is_for_the_tiny_preset(tmp_path):
    r = run("vllm", "pretrain-vision", "--out", str(tmp_path / "t"), "--preset", "paper")
    assert r.returncode == 2 and "tiny preset" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()


def test_tune_refuses_a_missing_vision_tower(tmp_path):
    r = run("vllm", "tune", "--data", str(tmp_path), "--images", str(tmp_path), "--out", str(tmp_path / "o"),
            "--vision-tower", str(tmp_path / "nope"))
    assert r.returncode == 2 and "--vision-tower" in r.stderr and "Traceback" not in r.stderr


def test_commands_check_their_paths_before_importing_torch(tmp_path):
    """`vllm tune`, `vllm enrich`, `generate`, `eval` and `eval-timeline` with a wrong path answer before their model code (torch,
    transformers, diffusers: ~10 s on a slow box) is imported."""
    code = f"""import sys
from egolego.cli import main
t = main(["vllm", "tune", "--data", "{tmp_path}", "--images", "{tmp_path}", "--out", "{tmp_path / 'o'}",
          "--vision-tower", "{tmp_path / 'nope'}"])
e = main(["vllm", "enrich", "--model", "{tmp_path / 'nope'}", "--pairs", "{tmp_path}", "--out", "{tmp_path / 'e'}"])
g = main(["generate", "--model", "{tmp_path / 'nope'}", "--image", "x.png", "--action", "a", "--out", "{tmp_path / 'g.png'}"])
i = main(["generate", "--model", "{tmp_path / 'm'}", "--image", "{tmp_path / 'no.png'}", "--action", "a",
          "--out", "{tmp_path / 'g.png'}"])
v = main(["eval", "--model", "input", "--pairs", "{tmp_path / 'nope'}", "--out", "{tmp_path / 'v'}"])
w = main(["eval-timeline", "--model", "{tmp_path / 'm'}", "--pairs", "{tmp_path / 'nope'}", "--out", "{tmp_path / 'w'}"])
print(t, e, g, i, v, w, "torch" in sys.modules)"""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_index.json").write_text("{}")  # a model folder, as far as the first check can tell
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["2"] * 6 + ["False"], (r.stdout, r.stderr[-2000:])
    for said in ("--vision-tower", "not a tuned VLLM folder", "--model: ", "not a LEGO model folder", "--image: ",
                 "--pairs: "):
        assert said in r.stderr, said
