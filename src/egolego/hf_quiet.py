"""Silence the per-file "Loading weights" / "Loading pipeline components" / "Writing model shards" bars of
transformers and diffusers.

Loading a tiny model many times (the eval's new-actions strip, ``egolego generate``) otherwise prints a
screenful of progress bars that say nothing; our own jobs keep their one progress bar each.
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def quiet_loading():
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    d_on, t_on = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if d_on:
            dlog.enable_progress_bar()
        if t_on:
            tlog.enable_progress_bar()
