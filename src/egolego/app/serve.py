"""``egolego serve``: try a LEGO model on a frame (Generate tab) and look through eval runs pair by pair (Compare).

The models are loaded once, before the server starts. A frame comes from an upload (decoded by
``images.decode_upload``: size, pixel and format limits, a message on failure) or from the test pairs the server
lists itself; the browser never names a file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .engine import Engine
from .images import SUFFIXES, BadImage, decode_upload, served
from .launch import blocks, frame, gradio
from .runs import Pairs, Runs

log = logging.getLogger("egolego.app")
MAX_STEPS = 200


def _bounded(value, lo, hi, name):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number") from None
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return v


def _generate_tab(gr, engine: Engine, baseline: Engine | None, pairs: Pairs | None):
    gr.Markdown(f"Model: `{engine.model_dir}` (conditioning `{engine.mode}`"
                + (", with its tuned VLLM" if engine.vllm is not None else "") + ")"
                + (f"; label baseline: `{baseline.model_dir}`" if baseline else ""))
    current = gr.State(None)
    with gr.Row():
        with gr.Column():
            upload = gr.File(label="Upload a frame (PNG, JPEG or WebP, at most 8 MB)", file_types=SUFFIXES,
                             type="filepath", elem_id="upload", height=140)
            pick = gr.Dropdown(choices=pairs.choices() if pairs else [], value=None, label="…or pick a test pair",
                               elem_id="pick", visible=pairs is not None)
            preview = frame(gr, "input frame", elem_id="preview", height=260)
            action = gr.Textbox(label="Action", placeholder="open drawer", elem_id="action")
            describe = gr.Button("Describe (the VLLM writes the description)", visible=engine.vllm is not None)
            desc = gr.Textbox(label="Description (editable; the model is conditioned on it)", lines=3,
                              visible=engine.needs_description, elem_id="description")
            with gr.Row():
                steps = gr.Slider(1, MAX_STEPS, value=engine.sampling.steps, step=1, label="steps", elem_id="steps")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed", minimum=0)
            with gr.Row():
                s_c = gr.Slider(1.0, 15.0, value=engine.sampling.condition_guidance, step=0.5,
                                label="condition guidance s_c", elem_id="s_c")
                s_x = gr.Slider(1.0, 5.0, value=engine.sampling.image_guidance, step=0.1, label="image guidance s_x",
                                elem_id="s_x")
            frames = gr.Slider(1, 8, value=4 if engine.takes_progress else 1, step=1, elem_id="frames",
                               label="frames (1: the action done; K: the action unfolding, input first)",
                               visible=engine.takes_progress)
            go = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column():
            out = frame(gr, f"action frame ({engine.mode})", elem_id="result", height=320)
            out_base = frame(gr, "label baseline (InstructPix2Pix conditioning)", visible=baseline is not None,
                             elem_id="baseline", height=320)
            used = gr.Textbox(label="conditioned on", interactive=False, elem_id="used")

    def on_upload(path):
        if not path:
            return gr.skip(), gr.skip()
        try:
            im = decode_upload(path)
        except BadImage as e:
            gr.Warning(str(e))
            return None, None
        return im, served(im)

    def on_pick(pid):
        if not pid or pairs is None or pid not in pairs.rows:
            return gr.skip(), gr.skip(), gr.skip()
        im = pairs.image(pid)
        return im, served(im), pairs.row(pid)["label"]

    def on_describe(im, act):
        if im is None or not (act or "").strip():
            raise gr.Error("choose a frame and type an action first")
        return engine.describe(im, act.strip())

    def on_generate(im, act, description, n, sd, sc, sx, k, progress=gr.Progress(track_tqdm=True)):
        if im is None:
            raise gr.Error("upload a frame or pick a test pair first")
        try:
            n = int(_bounded(n, 1, MAX_STEPS, "steps"))
            sd = int(_bounded(sd, 0, 2**32 - 1, "seed"))
            sc, sx = _bounded(sc, 0, 50, "s_c"), _bounded(sx, 0, 50, "s_x")
            kw = dict(steps=n, seed=sd, condition_guidance=sc, image_guidance=sx, progress=progress)
            progress(0, desc="sampling")
            k = int(_bounded(k, 1, 8, "frames")) if engine.takes_progress else 1
            img, prompt = engine.generate(im, act or "", description, frames=k, **kw)
            base = baseline.generate(im, act or "", None, **kw)[0] if baseline else None
        except ValueError as e:
            raise gr.Error(str(e)) from None
        except Exception as e:  # logged here; the browser gets one line
            log.exception("generation failed")
            raise gr.Error(f"generation failed ({type(e).__name__}); see the server's log") from None
        return served(img), served(base), prompt, (prompt if engine.needs_description else gr.skip())

    upload.upload(on_upload, upload, [current, preview])
    pick.change(on_pick, pick, [current, preview, action])
    describe.click(on_describe, [current, action], desc)
    go.click(on_generate, [current, action, desc, steps, seed, s_c, s_x, frames], [out, out_base, used, desc])


def _compare_tab(gr, runs: Runs):
    gr.Markdown(f"{len(runs.pairs.ids)} pairs evaluated by every run: " + ", ".join(f"`{n}`" for n in runs.names))
    methods = runs.methods()  # the `input` / `target` references are the first and last columns already
    pick = gr.Dropdown(choices=runs.pairs.choices(), value=None, label="Test pair", elem_id="compare-pick")
    caption = gr.Markdown()
    with gr.Row():
        images = [frame(gr, "input", height=260)] + [frame(gr, n, height=260) for n in methods] \
            + [frame(gr, "ground truth", height=260)]
    metrics = gr.Dataframe(label="per-pair metrics (from each run's per_pair.parquet)", interactive=False,
                           elem_id="compare-metrics")

    def on_pick(pid):
        if not pid or pid not in runs.pairs.rows:
            return [gr.skip()] * (len(images) + 2)
        row = runs.pairs.row(pid)
        head, rows = runs.metric_table(pid)
        text = f"**{row['label']}** — {runs.description(pid)}"
        ims = [runs.pairs.image(pid)] + [runs.output(n, pid) for n in methods] + [runs.pairs.image(pid, "target")]
        return [text, *map(served, ims), gr.Dataframe(value=rows, headers=head)]

    pick.change(on_pick, pick, [caption, *images, metrics])


def build_serve(engine: Engine, baseline: Engine | None = None, pairs: Pairs | None = None, runs: Runs | None = None):
    gr = gradio()
    with blocks("egolego") as app:
        gr.Markdown("# egolego — egocentric action frames (LEGO)")
        with gr.Tab("Generate", elem_id="tab-generate"):
            _generate_tab(gr, engine, baseline, pairs)
        if runs is not None:
            with gr.Tab("Compare", elem_id="tab-compare"):
                _compare_tab(gr, runs)
    return app


def default_pairs(runs: Runs | None, pairs_dir: str | Path | None) -> Pairs | None:
    from .runs import load_pairs

    if pairs_dir:
        return load_pairs(pairs_dir)
    return runs.pairs if runs is not None else None
