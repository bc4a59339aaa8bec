"""The browser tests' Debian helper: found executables, a clear failure, and one install at a time across workers."""

import fcntl
import tempfile
import threading
import time
from pathlib import Path

import pytest

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
