"""Every sub-command fed generated bad arguments and malformed files (issue 12): one line and exit 2 (or 0), never
a traceback, never a hang, never a file written outside the sandbox's --out.

Each example changes one argument of a command line that is otherwise unusable on purpose (empty or garbage
inputs), so that a value that happens to be valid still ends quickly. Runs in-process through ``cli.main``;
a call that takes longer than ``LIMIT_S`` counts as a hang.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egolego.cli import main
from egolego.cli.bounds import BOUNDS
from egolego.data.manifest import SCHEMA

LIMIT_S = 60  # generous: a first import of diffusers on a loaded 2-core box takes tens of seconds
EXAMPLES = 12


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


# ----------------------------------------------------------------------------- bad values and files

def bad_int(dest: str):
    """Integers (as text) outside the flag's bounds, or not integers at all."""
    lo, hi = BOUNDS.get(dest, (0, None))
    outs = [st.integers(max_value=(lo or 0) - 1, min_value=-(2**70))]
    if hi is not None:
        outs.append(st.integers(min_value=int(hi) + 1, max_value=2**70))
    text = st.sampled_from(["", "nan", "inf", "-inf", "1e12", "1.5", "0x10", "ten", "--", "3.0", "1e3"])
    return st.one_of(*[o.map(str) for o in outs], text)


bad_float = st.one_of(st.sampled_from(["nan", "inf", "-inf", "", "x", "-1", "0", "1e400"]),
                      st.floats(max_value=0).map(str))
garbage_bytes = st.one_of(st.binary(max_size=64), st.sampled_from([
    b"{", b"[]", b"null", b'{"videos": "abc"}', b"\xef\xbb\xbf{}", b"ldm: [", b"preset: nope\n", b"ldm:\n  max_steps: -5\n",
    b"ldm:\n  batch_size: 0\n", b"- 1\n- 2\n", b"PAR1garbagePAR1", b"\x00" * 20, b"<html>nginx</html>"]))
PATH_KINDS = ["missing", "garbage_file", "empty_dir", "garbage_manifest", "evil_manifest", "traversal", "empty"]


def _evil_manifest(d: Path, kind: int) -> None:
    row = {c: "x" for c in SCHEMA.names}
    row.update(pair_id="a", split="train", boxes="[1, {]", delta=float("nan"), input_frame=None, target_frame=None,
               progress=float("nan") if kind == 1 else None,
               input_path="/etc/hostname", target_path="../../../../etc/passwd", target_full_path="images/x.jpg")
    rows = [row, {**row, "input_path": "images/a.jpg", "target_path": "images/b.jpg"}] if kind else [row]
    if kind == 2:  # duplicate ids, harmless paths
        rows = [{**row, "input_path": "i.jpg", "target_path": "t.jpg"}] * 2
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), d / "pairs.parquet")


def make_path(kind: str, data: bytes, sandbox: Path, n: int, variant: int = 0) -> str:
    p = sandbox / f"in{n}"
    if kind == "missing":
        return str(p / "nope")
    if kind == "garbage_file":
        p.write_bytes(data)
        return str(p)
    if kind == "traversal":
        return "../../../../../../etc/hostname"
    if kind == "empty":
        return ""
    p.mkdir()
    if kind == "garbage_manifest":
        (p / "pairs.parquet").write_bytes(data)
        for name in ("EPIC_100_train.csv", "EPIC_100_video_info.csv", "config.json", "model_index.json",
                     "truth.jsonl", "eval.json"):
            (p / name).write_bytes(data)
        (p / "v2" / "annotations").mkdir(parents=True)
        (p / "v2" / "annotations" / "fho_main.json").write_bytes(data)
    elif kind == "evil_manifest":
        _evil_manifest(p, variant)
    return str(p)


# ----------------------------------------------------------------------------- the commands

# name -> (argv with {IN}/{OUT}/{OUTFILE} slots, {flag: kind}); kind: int dest name, "float", "path", "text", "out"
COMMANDS = {
    "synth": (["synth", "--out", "{OUT}", "--quiet"], {"--actions": "actions", "--size": "size", "--seed": "seed",
                                                       "--workers": "workers", "--format": "format"}),
    "tokenizer": (["tokenizer", "--corpus", "{IN}", "--out", "{OUT}"],
                  {"--max-length": "max_length", "--vocab-size": "vocab_size", "--corpus": "path", "--out": "out"}),
    "tokenizer truth": (["tokenizer", "--truth", "{IN}", "--out", "{OUT}"], {"--truth": "path"}),
    "config": (["config", "--file", "{IN}"], {"--file": "path"}),
    "vae train": (["vae", "train", "--images", "{IN}", "--out", "{OUT}"],
                  {"--steps": "steps", "--config": "path", "--images": "path", "--out": "out"}),
    "train": (["train", "--pairs", "{IN}", "--out", "{OUT}"],
              {"--max-steps": "max_steps", "--batch-size": "batch_size", "--seed": "seed", "--config": "path",
               "--pairs": "path", "--vae": "path", "--tokenizer": "path", "--embeddings": "path", "--out": "out"}),
    "generate": (["generate", "--model", "{IN}", "--image", "{IN}", "--action", "take cup", "--out", "{OUTFILE}.png"],
                 {"--steps": "steps", "--seed": "seed", "--image": "path", "--model": "path", "--out": "out"}),
    "vllm data": (["vllm", "data", "--pairs", "{IN}", "--out", "{OUTFILE}.json"],
                  {"--seed": "seed", "--pairs": "path", "--out": "out"}),
    "vllm pretrain-vision": (["vllm", "pretrain-vision", "--out", "{OUT}", "--preset", "paper"],  # refused: paper
                             {"--scenes": "scenes", "--epochs": "epochs", "--seed": "seed", "--out": "out"}),
    "vllm tune": (["vllm", "tune", "--data", "{IN}", "--images", "{IN}", "--out", "{OUT}"],
                  {"--epochs": "epochs", "--data": "path", "--images": "path", "--tokenizer": "path",
                   "--config": "path", "--out": "out"}),
    "vllm enrich": (["vllm", "enrich", "--model", "{IN}", "--pairs", "{IN}", "--out", "{OUT}"],
                    {"--batch-size": "batch_size", "--num-shards": "num_shards", "--shard-index": "shard_index",
                     "--max-new-tokens": "max_new_tokens", "--model": "path", "--pairs": "path", "--out": "out"}),
    "data build": (["data", "build", "--source", "epic", "--root", "{IN}", "--out", "{OUT}"],
                   {"--size": "size", "--workers": "workers", "--num-shards": "num_shards", "--shard-index": "shard_index",
                    "--sim-range": "range", "--root": "path", "--out": "out"}),
    "data build ego4d": (["data", "build", "--source", "ego4d", "--root", "{IN}", "--out", "{OUT}"],
                         {"--root": "path", "--sim-range": "range"}),
    "data export": (["data", "export", "--pairs", "{IN}", "--format", "ip2p", "--out", "{OUT}"],
                    {"--pairs": "path", "--out": "out"}),
    "data merge": (["data", "merge", "{IN}", "--out", "{OUT}"], {"--out": "out", "shard": "path"}),
    "curate": (["curate", "--pairs", "{IN}", "--out", "{OUTFILE}.json"],
               {"--concurrency": "concurrency", "--pairs": "path", "--out": "out", "--examples": "path"}),
    "pairs from-egosynth": (["pairs", "from-egosynth", "--egosynth", "{IN}", "--out", "{OUT}"],
                            {"--size": "size", "--egosynth": "path", "--out": "out"}),
    "eval": (["eval", "--model", "input", "--pairs", "{IN}", "--out", "{OUT}", "--metrics", "psnr", "--quiet"],
             {"--steps": "steps", "--batch-size": "batch_size", "--limit": "limit", "--seed": "seed",
              "--new-actions": "new_actions", "--pairs": "path", "--model": "path", "--weights-dir": "path",
              "--out": "out"}),
    "report": (["report", "{IN}", "--out", "{OUTFILE}.html"], {"--sample": "sample", "evals": "path", "--out": "out"}),
    # the same with a real pairs manifest, so that the bad value is met late, after reading and working
    "data export (real pairs)": (["data", "export", "--pairs", "{PAIRS}", "--format", "ip2p", "--out", "{OUT}"],
                                 {"--out": "out", "--prompt": "text"}),
    "vllm data (real pairs)": (["vllm", "data", "--pairs", "{PAIRS}", "--out", "{OUTFILE}.json"],
                               {"--seed": "seed", "--out": "out"}),
    "curate (real pairs)": (["curate", "--pairs", "{PAIRS}", "--out", "{OUTFILE}.json"],
                            {"--out": "out", "--concurrency": "concurrency", "--base-url": "text"}),
    "eval (real pairs)": (["eval", "--model", "input", "--pairs", "{PAIRS}", "--out", "{OUT}", "--metrics", "psnr",
                           "--limit", "3", "--new-actions", "0", "--quiet"],
                          {"--out": "out", "--metrics": "text", "--split": "text", "--batch-size": "batch_size"}),
    "vllm enrich (real pairs)": (["vllm", "enrich", "--model", "{IN}", "--pairs", "{PAIRS}", "--out", "{OUT}"],
                                 {"--model": "path", "--out": "out"}),
    "import lego": (["import", "lego", "--ldm", "{IN}", "--out", "{OUT}"],
                    {"--ldm": "path", "--clip-text": "path", "--size": "size", "--out": "out"}),
    "import lego-features": (["import", "lego-features", "--image-features", "{IN}", "--text-features", "{IN}",
                              "--out", "{OUT}"], {"--image-features": "path", "--text-features": "path",
                                                  "--rows": "rows", "--out": "out"}),
    "import lego-dataset": (["import", "lego-dataset", "--json", "{IN}", "--frames", "{IN}", "--out", "{OUT}"],
                            {"--json": "path", "--frames": "path", "--out": "out"}),
    "demo": (["demo", "--out", "{OUT}", "--minutes", "-1"], {"--minutes": "float", "--actions": "actions",
                                                             "--config": "path", "--weights-dir": "path"}),
}


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _run(argv: list[str], capsys) -> tuple[int, str]:
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(LIMIT_S)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code if isinstance(e.code, int) else 2
    except Hang:
        pytest.fail(f"no answer within {LIMIT_S}s: egolego {' '.join(argv)}")
    except BaseException as e:  # noqa: BLE001 - the point of the test
        pytest.fail(f"traceback ({type(e).__name__}: {e}) for: egolego {' '.join(argv)}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return rc, capsys.readouterr().err


@st.composite
def mutation(draw, name):
    argv, flags = COMMANDS[name]
    flag = draw(st.sampled_from(sorted(flags)))
    kind = flags[flag]
    if kind == "path":
        value = (draw(st.sampled_from(PATH_KINDS)), draw(garbage_bytes), draw(st.integers(0, 2)))
    elif kind == "out":
        value = draw(st.sampled_from(["a_file", "file_parent", "dir_for_file", "no_ext"]))
    elif kind == "float":
        value = draw(bad_float)
    elif kind == "range":
        value = draw(st.sampled_from([("0.9", "0.1"), ("nan", "nan"), ("0.5", "inf"), ("-3", "0.5"), ("0.2", "0.2")]))
    elif kind == "text":
        value = draw(st.one_of(st.text(max_size=16), st.sampled_from(["http://", "ftp://x", "psnr,nope", "-", ""])))
    elif kind == "format":
        value = draw(st.text(max_size=12).filter(
            lambda s: not ({x.strip() for x in s.split(",") if x.strip()} <= {"epic", "ego4d"}) or not s.strip(", ")))
    else:
        value = draw(bad_int(kind))
    return flag, kind, value


def _build_argv(name: str, flag: str, kind: str, value, sandbox: Path, pairs: Path | None) -> tuple[list[str], Path]:
    argv, _ = COMMANDS[name]
    base_in = sandbox / "empty_in"
    base_in.mkdir(exist_ok=True)
    if pairs is not None:
        shutil.copytree(pairs, sandbox / "pairs")
        argv = [a.replace("{PAIRS}", str(sandbox / "pairs")) for a in argv]
    out = sandbox / "out"
    outfile = sandbox / "outfile"
    argv = [a.replace("{IN}", str(base_in)).replace("{OUTFILE}", str(outfile)).replace("{OUT}", str(out))
            for a in argv]
    if kind == "path":
        path = make_path(value[0], value[1], sandbox, 0, value[2])
        if flag in ("shard", "evals"):
            argv[argv.index(str(base_in))] = path
        elif flag in argv:
            argv[argv.index(flag) + 1] = path
        else:
            argv += [flag, path]
    elif kind == "out":
        idx = next(i for i, a in enumerate(argv) if a.startswith(str(out)) or a.startswith(str(outfile))) 
        target = argv[idx]
        if value == "a_file":  # a file where a folder (or a new file) is expected
            Path(target).write_text("x")
        elif value == "file_parent":  # the parent is a file
            (sandbox / "blocker").write_text("x")
            target = str(sandbox / "blocker" / Path(target).name)
        elif value == "dir_for_file":
            Path(target).mkdir()
        else:
            target = str(Path(target).with_suffix(""))
        argv[idx] = target
        out = Path(target)
    elif kind == "range":
        argv += [flag, *value]
    elif flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv, out


@pytest.fixture(scope="module")
def real_pairs(small_dataset, tmp_path_factory):
    from egolego.synth.pairs import pairs_from_egosynth

    out = tmp_path_factory.mktemp("fuzz_pairs")
    pairs_from_egosynth(small_dataset, out)
    return out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_never_tracebacks(name, tmp_path_factory, capsys, monkeypatch, request):
    pairs = request.getfixturevalue("real_pairs") if "{PAIRS}" in " ".join(COMMANDS[name][0]) else None

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(mutation(name))
    def check(m):
        flag, kind, value = m
        sandbox = tmp_path_factory.mktemp("fuzz")
        monkeypatch.chdir(sandbox)
        argv, out = _build_argv(name, flag, kind, value, sandbox, pairs)
        before = _files(sandbox)
        rc, err = _run(argv, capsys)
        assert rc in (0, 2), f"exit {rc} for: egolego {' '.join(argv)}\n{err}"
        assert "Traceback" not in err, err
        if rc == 2:
            last = err.strip().splitlines()[-1] if err.strip() else ""
            assert last.startswith("egolego") and "error" in last, f"egolego {' '.join(argv)}: {err!r}"
        outs = {out, sandbox / "out", sandbox / "outfile", sandbox / "pairs"}  # curate writes into its --pairs
        stray = [p for p in _files(sandbox) - before
                 if not any(p == o or o in p.parents or p.name.startswith(o.name) for o in outs)]
        assert not stray, f"files written outside --out by: egolego {' '.join(argv)}: {stray[:3]}"

    check()
