"""transformers' PIL-fallback notice is dropped (egolego runs without torchvision on purpose); other messages pass."""

import subprocess
import sys

from egolego.hf_quiet import PIL_FALLBACK_NOTICE


def test_loading_a_clip_image_processor_prints_no_torchvision_notice():
    code = ("import egolego, transformers; from transformers import CLIPImageProcessor; "
            "import logging; logging.getLogger('transformers.utils.import_utils').warning('another notice'); "
            "CLIPImageProcessor(size={'shortest_edge': 64})")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert PIL_FALLBACK_NOTICE not in r.stderr
    assert "another notice" in r.stderr  # the filter drops that one message, not the logger
