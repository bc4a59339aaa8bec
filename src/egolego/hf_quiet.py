"""Silence the per-file "Loading weights" / "Loading pipeline components" / "Writing model shards" bars of
transformers and diffusers, and transformers' notice that it falls back to the PIL image processors.

Loading a tiny model many times (the eval's new-actions strip, ``egolego generate``) otherwise prints a
screenful of progress bars that say nothing; our own jobs keep their one progress bar each. egolego runs without
torchvision on purpose (it would pull a CUDA torch), so the PIL backend is the one we mean to use and the notice
("`CLIPImageProcessor` requires torchvision (not installed); falling back to …") only alarms.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

PIL_FALLBACK_NOTICE = "requires torchvision (not installed); falling back to"


def _not_the_pil_fallback_notice(record: logging.LogRecord) -> bool:
    return PIL_FALLBACK_NOTICE not in record.getMessage()


def drop_pil_fallback_notice() -> None:
    """Filter that one notice out of transformers' import logger (idempotent; every other message passes)."""
    log = logging.getLogger("transformers.utils.import_utils")
    if _not_the_pil_fallback_notice not in log.filters:
        log.addFilter(_not_the_pil_fallback_notice)


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
