"""Debian packages the browser tests need (chromium, chromedriver), installed with apt-get when missing.

`make test` runs the suite in two pytest-xdist workers, and the report test and the web app's browser test may both
find chromium missing at once; apt-get and dpkg hold one lock each, so a second install at the same moment would fail.
An exclusive lock on a file beside the suite's temporary folders makes the workers install one after the other; the
second finds the packages installed and installs nothing.
"""

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def ensure_installed(packages: dict[str, str], why: str) -> dict[str, str]:
    """``packages`` maps each executable to the Debian package that has it; returns executable -> path, installing the
    missing packages (root + apt), else fails the test saying what and why."""
    lock = Path(tempfile.gettempdir()) / "egolego-tests-apt.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        missing = sorted({pkg for exe, pkg in packages.items() if shutil.which(exe) is None})
        if missing:
            if not shutil.which("apt-get"):
                pytest.fail(f"{why} needs Debian's {' '.join(missing)} (apt-get install {' '.join(missing)})")
            for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
                r = subprocess.run(cmd, capture_output=True, text=True, env=APT_ENV, timeout=900)
                if r.returncode != 0:
                    pytest.fail(f"could not install {' '.join(missing)} for {why} ({' '.join(cmd)}): {r.stderr[-500:]}")
    found = {exe: shutil.which(exe) for exe in packages}
    if None in found.values():
        pytest.fail(f"{why} needs Debian's {' '.join(sorted(set(packages.values())))} and could not install them")
    return found
