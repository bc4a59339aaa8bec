"""Shared fixtures: small EgoSynth datasets generated once per test session (64 px, CPU)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite in pytest-xdist workers (two by default): each gets its share of the cores, as
    # `reproduce --jobs` does, because our 64-px models use a second thread poorly (benchmarks/RESULTS.md, bench_jobs).
    # Set before torch is imported so that its pools and the processes a test starts inherit it.
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)  # usable ones
    _share = max(1, _cores // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))
    os.environ.setdefault("MKL_NUM_THREADS", str(_share))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from egolego.synth.dataset import SynthArgs, generate, load_truth  # noqa: E402


@pytest.fixture(autouse=True)
def _log_streams_follow_stderr():
    """Library loggers (transformers) keep the stderr of the test that first used them, and transformers binds its
    handler's flush to it; under capsys that stream is closed by the next test, and an in-process CLI run would
    print "--- Logging error ---" with a traceback. A real command line never closes its stderr."""
    import logging
    import sys

    for lg in [logging.getLogger(), *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger))]:
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and getattr(h.stream, "closed", False):
                h.stream = sys.stderr  # setStream would flush the closed one
            h.__dict__.pop("flush", None)
    yield


REAL_EPIC = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / "epic-kitchens-100-annotations"


def built_once(tmp_path_factory, name: str, args: dict) -> Path:
    """An EgoSynth dataset built once per test run, also when `make test` runs pytest-xdist workers: their temporary
    folders share the run's folder, so the first worker to ask builds it there under a lock and the others wait for
    it and reuse it, instead of rendering it again beside it (the judge's 220 actions take a minute on a slow box)."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's folder: pytest-N/popen-gwK
    out = root / name
    with open(root / f"{name}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        if not (out / "egosynth.json").is_file():  # written last: a dataset cut short resumes
            generate(SynthArgs(out=out, **args), progress=False)
    return out


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """40 actions, both formats, seed 3."""
    return built_once(tmp_path_factory, "egosynth_small", dict(actions=40, size=64, seed=3, workers=1))


@pytest.fixture(scope="session")
def small_truth(small_dataset) -> list[dict]:
    return load_truth(small_dataset)


@pytest.fixture(scope="session")
def judge_dataset(tmp_path_factory) -> Path:
    """220 actions in the EPIC format (the judge's sanity figures need >= 200)."""
    return built_once(tmp_path_factory, "egosynth_judge", dict(actions=220, size=64, seed=11, formats=("epic",), workers=2))


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps one AcceleratorState per process and refuses another mixed precision; every test starts
    without one, as every `egolego` command does (the paper preset trains in bf16; the tiny one in bf16 or fp32, see precision.auto)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
