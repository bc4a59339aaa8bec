"""The suite's own helpers under `make test`'s two workers: the browser tests' Debian packages (found executables, a
clear failure, one install at a time) and the session datasets both workers share (built once)."""

import fcntl
import tempfile
import threading
import time
from pathlib import Path

import pytest

from . import conftest
from .debian import ensure_installed


def test_present_executables_are_returned_without_installing(monkeypatch):
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("apt-get ran for a package already there"))
    found = ensure_installed({"sh": "dash"}, "this test")
    assert Path(found["sh"]).name == "sh"


def test_a_missing_package_without_apt_fails_saying_which(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no chromium
    with pytest.raises(pytest.fail.Exception, match="the report test needs Debian's chromium"):
        ensure_installed({"chromium": "chromium"}, "the report test")


def test_a_second_worker_waits_for_the_first_install():
    lock = Path(tempfile.gettempdir()) / "egolego-tests-apt.lock"
    held = threading.Event()

    def first_worker():
        with open(lock, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            held.set()
            time.sleep(0.5)

    t = threading.Thread(target=first_worker)
    t.start()
    held.wait()
    t0 = time.perf_counter()
    ensure_installed({"sh": "dash"}, "this test")
    waited = time.perf_counter() - t0
    t.join()
    assert waited >= 0.3


def test_a_dataset_both_workers_ask_for_is_built_once(tmp_path, monkeypatch):
    """Two workers' temporary folders (pytest-N/popen-gw0, popen-gw1) share one dataset in pytest-N; a dataset cut
    short (no egosynth.json yet) is built again; without workers it lives in the process's own temporary folder."""
    built = []

    def fake_generate(args, progress):
        built.append(args.out)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "egosynth.json").write_text("{}")

    class Factory:
        def __init__(self, base):
            self.base = base

        def getbasetemp(self):
            return self.base

    monkeypatch.setattr(conftest, "generate", fake_generate)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    args = dict(actions=4, size=32, seed=1, workers=1)
    first = conftest.built_once(Factory(tmp_path / "popen-gw0"), "ds", args)
    second = conftest.built_once(Factory(tmp_path / "popen-gw1"), "ds", args)
    assert first == second == tmp_path / "ds" and built == [tmp_path / "ds"]
    (first / "egosynth.json").unlink()  # a build cut short
    conftest.built_once(Factory(tmp_path / "popen-gw1"), "ds", args)
    assert len(built) == 2
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    (tmp_path / "alone").mkdir()  # a basetemp exists
    assert conftest.built_once(Factory(tmp_path / "alone"), "ds", args) == tmp_path / "alone" / "ds"
