"""Errors a caller can fix, named by the argument they came through.

Library code raises ``InputError("image", "photo.png does not exist")``: ``arg`` is the name of the function
parameter (or ``Args`` field) that held the bad value, and the message does not know about command lines. The
``egolego`` command turns it into ``egolego generate: error: --image: photo.png does not exist`` (``arg`` with
``_`` -> ``-``); a Python caller reads ``e.arg``. Both are ``ValueError`` (``MissingInput`` also a
``FileNotFoundError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class InputError(ValueError):
    """A bad value of argument ``arg`` (None: no single argument is to blame)."""

    def __init__(self, arg: str | None, message: str):
        super().__init__(message)
        self.arg = arg

    @property
    def flag(self) -> str | None:
        """The command-line flag of ``arg`` (``feature_vae`` -> ``--feature-vae``)."""
        return "--" + self.arg.replace("_", "-") if self.arg else None

    def with_flag(self) -> str:
        return f"{self.flag}: {self}" if self.flag else str(self)


class MissingInput(InputError, FileNotFoundError):
    """A file or folder named by argument ``arg`` does not exist (or is not what it must be)."""
