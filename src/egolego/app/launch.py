"""Starting a Gradio app the safe way: offline, no telemetry, loopback by default, bounded uploads."""

from __future__ import annotations

import ipaddress
import os
import sys

from .images import MAX_BYTES

LOOPBACK = "127.0.0.1"
# the frames are small (64 px at the tiny preset): scale them up, without smoothing, inside their boxes
CSS = """.frame img{width:100%;height:100%;object-fit:contain;image-rendering:pixelated}
.frame{min-height:180px}"""


def offline_env() -> None:
    """No telemetry, no version check, nothing fetched: set before gradio is imported (and again at launch)."""
    for k, v in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("HF_HUB_OFFLINE", "1"),
                 ("DO_NOT_TRACK", "1"), ("GRADIO_SSR_MODE", "False")):
        os.environ[k] = v


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gradio():
    offline_env()
    import gradio as gr

    return gr


def blocks(title: str):
    gr = gradio()
    return gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600))  # uploads live at most ~2 h


def frame(gr, label: str, buttons=("download", "fullscreen"), **kw):
    """An output image (never an input: nothing is uploaded through it)."""
    return gr.Image(label=label, type="pil", interactive=False, format="png", elem_classes=["frame"],
                    buttons=list(buttons), **kw)


def launch(app, host: str = LOOPBACK, port: int = 7860, block: bool = True):
    """Serve ``app``; returns it (running in the background) when ``block`` is False."""
    gr = gradio()
    if not is_loopback(host):
        print(f"egolego: serving on {host}:{port}: anyone who can reach this address can use the app (and vote); "
              "use only on a trusted network", file=sys.stderr)
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=MAX_BYTES,
               ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False, show_error=False,
               allowed_paths=[], footer_links=[], theme=gr.themes.Default(), css=CSS, quiet=True,
               prevent_thread_lock=True)
    print(f"egolego: serving on {app.local_url}" + (" (Ctrl-C stops it)" if block else ""), flush=True)
    if block:
        app.block_thread()
    return app
