"""The action part-way (issue 27): a progress input on the UNet, training on timeline pairs, clips in one batch."""

import json

import av
import numpy as np
import pytest
import torch
from PIL import Image

from egolego import config
from egolego.cli import main
from egolego.data.build import BuildArgs, build
from egolego.data.manifest import action_key, action_rows, read_manifest, resolve, write_manifest
from egolego.eval.timeline import TimelineArgs, along_the_action, evaluate_timeline
from egolego.ldm.data import LegoPairs
from egolego.ldm.generate import FrameGenerator
from egolego.ldm.train import Trainer


@pytest.fixture(scope="module")
def timeline8(small_dataset, tmp_path_factory):
    """The timeline pairs of 8 train and 3 test EgoSynth actions, with their exact descriptions."""
    from egolego.synth.pairs import truth_by_pair_id

    d = tmp_path_factory.mktemp("timeline8")
    build(BuildArgs(source="epic", root=small_dataset / "epic", out=d, frames_from="jpg", size=64, timeline=4),
          progress=False)
    rows = read_manifest(d)
    truth = truth_by_pair_id(small_dataset)
    keep = [r["pair_id"] for r in action_rows(rows) if r["split"] == "train"][:8]
    keep += [r["pair_id"] for r in action_rows(rows) if r["split"] == "test"][:3]
    rows = [{**r, "description": truth[action_key(r["pair_id"])]["description"]} for r in rows
            if action_key(r["pair_id"]) in keep]
    write_manifest(rows, d)
    return d


@pytest.fixture(scope="module")
def progress_model(timeline8, tmp_path_factory):
    cfg = config.preset("tiny")
    c = cfg.ldm
    c.conditioning, c.max_steps, c.batch_size, c.checkpoint_every, c.unet_channels = "desc", 3, 4, 100, [32, 64, 64]
    c.progress = True
    out = tmp_path_factory.mktemp("progress_model")
    Trainer(cfg, timeline8, None, out).run(progress=False)
    return out / "model"


@pytest.fixture(scope="module")
def single_model(timeline8, tmp_path_factory):
    cfg = config.preset("tiny")
    c = cfg.ldm
    c.conditioning, c.max_steps, c.batch_size, c.checkpoint_every, c.unet_channels = "desc", 2, 4, 100, [32, 64, 64]
    out = tmp_path_factory.mktemp("single_model")
    Trainer(cfg, timeline8, None, out).run(progress=False)
    return out / "model"


def test_a_single_frame_model_never_trains_on_half_done_frames(timeline8, tmp_path):
    single, timeline = LegoPairs(timeline8, mode="desc"), LegoPairs(timeline8, mode="desc", timeline=True)
    assert len(single) == 8 and all("@p" not in r["pair_id"] for r in single.rows)
    assert len(timeline) > 8 and bool((timeline.progress < 1).any()) and bool((single.progress == 1).all())
    limited = LegoPairs(timeline8, mode="desc", limit=3, timeline=True)  # the subset is of actions, with their frames
    assert {action_key(r["pair_id"]) for r in limited.rows} == {r["pair_id"] for r in LegoPairs(timeline8, mode="desc",
                                                                                                limit=3).rows}
    write_manifest(action_rows(read_manifest(timeline8)), tmp_path)
    with pytest.raises(ValueError, match="--timeline"):
        LegoPairs(tmp_path, mode="desc", timeline=True)


def test_a_clip_shares_its_noise_so_its_last_frame_is_the_single_frame(progress_model, timeline8):
    gen = FrameGenerator(progress_model)
    assert gen.takes_progress
    row = action_rows(read_manifest(timeline8))[0]
    src = Image.open(resolve(timeline8, row["input_path"])).convert("RGB")
    one, _ = gen(src, row["label"], row["description"], seed=4)
    clip, text = gen.clip(src, row["label"], [0.25, 0.5, 0.75, 1.0], row["description"], seed=4)
    assert len(clip) == 4 and text == row["description"]
    assert clip[-1].tobytes() == one.tobytes()  # batching and shared noise change nothing at p = 1
    seen = {}
    call = gen.pipe.__class__.__call__

    def spy(pipe, *args, **kw):
        seen.update(kw)
        return call(pipe, *args, **kw)

    gen.pipe.__class__.__call__ = spy
    try:
        gen.clip(src, row["label"], [0.5, 1.0], row["description"], seed=5)
    finally:
        gen.pipe.__class__.__call__ = call
    assert seen["action_progress"] == [0.5, 1.0]
    z = seen["latents"]  # (2, c, h, w): one initial noise for the clip, drawn from the seed
    assert torch.equal(z[0], z[1]) and torch.equal(z[0], torch.randn(z[0:1].shape, generator=torch.Generator()
                                                                        .manual_seed(5))[0])


def test_generate_frames_writes_a_clip_and_a_single_frame_model_says_why_not(progress_model, single_model, timeline8,
                                                                             tmp_path, capsys):
    row = action_rows(read_manifest(timeline8))[0]
    src = str(resolve(timeline8, row["input_path"]))
    out = tmp_path / "clip.mp4"
    assert main(["generate", "--model", str(progress_model), "--image", src, "--action", row["label"],
                 "--description", row["description"], "--frames", "4", "--out", str(out)]) == 0
    with av.open(str(out)) as box:
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape[0] % 2 == 0  # the input frame, then 4
    code = main(["generate", "--model", str(single_model), "--image", src, "--action", row["label"],
                 "--description", row["description"], "--frames", "4", "--out", str(tmp_path / "no.gif")])
    assert code != 0 and "single frames" in capsys.readouterr().err
    assert not (tmp_path / "no.gif").exists()
    code = main(["generate", "--model", str(progress_model), "--image", src, "--action", row["label"],
                 "--frames", "4", "--out", str(tmp_path / "clip.avi")])
    assert code != 0 and ".mp4" in capsys.readouterr().err
    started = tmp_path / "started.png"  # a strip whose earlier frames start from its last
    assert main(["generate", "--model", str(progress_model), "--image", src, "--action", row["label"], "--description",
                 row["description"], "--frames", "2", "--clip-start", "0.5", "--out", str(started)]) == 0
    w, h = Image.open(src).size
    assert Image.open(started).size == (3 * w + 2 * 2, h)  # the input frame, then the two frames
    code = main(["generate", "--model", str(progress_model), "--image", src, "--action", row["label"],
                 "--frames", "2", "--clip-start", "0", "--out", str(tmp_path / "zero.png")])
    assert code != 0 and "--clip-start" in capsys.readouterr().err
    guided = tmp_path / "guided.png"  # guided away from the action not begun (the formula: the test below)
    assert main(["generate", "--model", str(progress_model), "--image", src, "--action", row["label"], "--description",
                 row["description"], "--frames", "2", "--progress-guidance", "2", "--out", str(guided)]) == 0
    assert Image.open(guided).size == (3 * w + 2 * 2, h)
    code = main(["generate", "--model", str(progress_model), "--image", src, "--action", row["label"],
                 "--frames", "2", "--progress-guidance", "-1", "--out", str(tmp_path / "neg.png")])
    assert code != 0 and "--progress-guidance" in capsys.readouterr().err


def test_eval_timeline_scores_every_frame_and_resumes(progress_model, single_model, timeline8, tmp_path):
    a = TimelineArgs(model=progress_model, pairs=timeline8, out=tmp_path, single=single_model, actions=2)
    r = evaluate_timeline(a, progress=False)
    assert r["actions"] == 2 and r["judge"] and set(r["by_p"]) == {"progress", "hold", "interpolate", "input",
                                                                     "true frame"}
    bins = r["by_p"]["true frame"]["action_all"]
    assert bins["1.00"]["mean"] == 1.0 and bins["0.50"]["n"] == 2
    assert r["by_p"]["true frame"]["psnr"]["1.00"]["mean"] == 100.0
    assert r["paired"]["psnr"]["1.00"]["n"] == 2 and set(r["consistency"]) == {"progress", "hold", "interpolate"}
    assert (tmp_path / "clips.png").is_file()
    frames = sorted((tmp_path / "progress").glob("*.png"))
    stamp = [f.stat().st_mtime_ns for f in frames]
    evaluate_timeline(a, progress=False)
    assert [f.stat().st_mtime_ns for f in frames] == stamp  # frames reused, not drawn again
    ev = tmp_path / "ev"  # `egolego report --timeline` shows the table and the clips beside an eval's frames
    assert main(["eval", "--model", str(single_model), "--pairs", str(timeline8), "--out", str(ev), "--metrics", "psnr",
                 "--new-actions", "0", "--quiet"]) == 0
    assert main(["report", str(ev), "--timeline", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert f"The action as a clip: {tmp_path.name}" in page and 'alt="clips"' in page and "p = 0.50" in page
    assert main(["report", str(ev), "--timeline", str(ev), "--out", str(tmp_path / "r2.html")]) == 2  # not a timeline
    with pytest.raises(ValueError, match="single frames"):
        evaluate_timeline(TimelineArgs(model=single_model, pairs=timeline8, out=tmp_path / "x"), progress=False)


def test_a_single_frame_model_is_extended_with_progress_by_init_from(single_model, timeline8, tmp_path):
    """``ldm.init_from``: training starts from a trained model's UNet and conditioner; the progress input it lacks
    starts at zero, so the extended model at step 0 draws exactly what the single-frame model draws."""
    from egolego.errors import InputError, MissingInput
    from egolego.ldm.build import build_components
    from egolego.ldm.generate import load_pipeline

    cfg = config.preset("tiny")
    c = cfg.ldm
    c.conditioning, c.unet_channels, c.progress, c.init_from = "desc", [32, 64, 64], True, str(single_model)
    c.tokenizer = str(single_model / "tokenizer")
    parts = build_components(cfg, 1, 1, cfg.vllm.text_rows)
    ref = load_pipeline(single_model)
    mine = parts["unet"].state_dict()
    assert all(torch.equal(mine[k], v) for k, v in ref.unet.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(parts["conditioner"].state_dict().values(),
                                                 ref.conditioner.state_dict().values()))
    c.init_from = str(tmp_path)
    with pytest.raises(MissingInput, match="no safetensors"):
        build_components(cfg, 1, 1, cfg.vllm.text_rows)
    c.init_from, c.unet_channels = str(single_model), [32, 64, 96]
    with pytest.raises(InputError, match="other shapes"):
        build_components(cfg, 1, 1, cfg.vllm.text_rows)


def test_the_web_app_shows_a_progress_model_as_a_strip(progress_model, single_model, timeline8):
    from egolego.app.engine import Engine

    row = action_rows(read_manifest(timeline8))[0]
    src = Image.open(resolve(timeline8, row["input_path"])).convert("RGB")
    eng = Engine(progress_model)
    assert eng.takes_progress and not Engine(single_model).takes_progress
    shown, text = eng.generate(src, row["label"], row["description"], seed=2, frames=4)
    assert text == row["description"] and shown.size == (5 * src.width + 4 * 2, src.height)
    last = shown.crop((4 * (src.width + 2), 0, 5 * src.width + 8, src.height))
    clip, _ = FrameGenerator(progress_model).clip(src, row["label"], [0.25, 0.5, 0.75, 1.0], row["description"], seed=2)
    assert last.tobytes() == clip[-1].tobytes()  # the app's strip is `generate --frames 4`'s clip


def test_eval_timeline_averages_draws_and_compares_each_p_with_the_end(timeline8, tmp_path):
    """--draws 2: every frame's scores are the mean of the runs with seeds 0 and 1 (a non-residual model, so the
    draws differ); per_frame.parquet holds them; vs_done is each bin minus p = 1 paired by action, as computed here
    from the per-frame table."""
    import numpy as np
    import pyarrow.parquet as pq

    cfg = config.preset("tiny")
    c = cfg.ldm
    c.conditioning, c.max_steps, c.batch_size, c.checkpoint_every, c.unet_channels = "desc", 2, 4, 100, [32, 64, 64]
    c.progress, c.residual = True, False
    Trainer(cfg, timeline8, None, tmp_path / "m").run(progress=False)
    model = tmp_path / "m" / "model"

    def run(out, **kw):
        evaluate_timeline(TimelineArgs(model=model, pairs=timeline8, out=tmp_path / out, actions=2, **kw),
                          progress=False)
        t = pq.read_table(tmp_path / out / "per_frame.parquet").to_pandas()
        return t[t.method == "progress"].set_index("pair_id")

    one, other = run("s0"), run("s1", seed=1)
    both = run("two", draws=2)
    assert not np.allclose(one.psnr, other.psnr)  # the draws differ
    assert np.allclose(both.psnr, (one.psnr + other.psnr.loc[one.index]) / 2)
    assert np.allclose(both.action_hand, (one.action_hand + other.action_hand.loc[one.index]) / 2)
    assert len(list((tmp_path / "two" / "draws" / "1" / "progress").glob("*.png"))) == len(both)
    r = json.loads((tmp_path / "two" / "timeline.json").read_text())
    half = both[both.bin == 0.5].groupby("action").action_hand.mean()  # per action: a bin can hold two of its frames
    end = both[both.bin == 1.0].groupby("action").action_hand.mean()
    assert r["draws"] == 2 and r["vs_done"]["progress"]["action_hand"]["0.50"]["mean"] == pytest.approx(
        float((half - end.loc[half.index]).mean()))
    assert "1.00" not in r["vs_done"]["progress"]["action_hand"]
    assert "action_hand at p minus at p = 1" in along_the_action(r)


def test_finished_and_part_way_frames_repeat_as_asked(timeline8):
    """ldm.progress_done_repeat shows each action's finished frame R times, ldm.progress_mid_repeat each frame
    part-way M times; less than once is refused naming the key."""
    def counts(**kw):
        p = LegoPairs(timeline8, "train", None, "desc", 64, timeline=True, **kw).progress
        return int((p == 1).sum()), int((p < 1).sum())

    done, mid = counts()
    assert done == 8 and mid > 0  # the 8 train actions and their frames along the way
    assert counts(done_repeat=3) == (3 * done, mid)
    assert counts(mid_repeat=2) == (done, 2 * mid)
    with pytest.raises(ValueError, match="progress_mid_repeat"):
        counts(mid_repeat=0)


@pytest.fixture(scope="module")
def young_progress_model(timeline8, tmp_path_factory):
    """Three steps, not residual: a residual model this young returns its input whatever it starts from."""
    cfg = config.preset("tiny")
    c = cfg.ldm
    c.conditioning, c.max_steps, c.batch_size, c.checkpoint_every, c.progress, c.residual = "desc", 3, 4, 100, True, False
    out = tmp_path_factory.mktemp("young_progress_model")
    Trainer(cfg, timeline8, None, out).run(progress=False)
    return out / "model"


def test_a_clip_can_start_its_earlier_frames_from_its_last(young_progress_model, timeline8):
    """clip_start < 1: the last frame is the clip's (and the single frame's) own; each earlier frame is the pipeline
    started from that frame noised to the level clip_start, with the clip's seed — and only the steps below it run."""
    from egolego.ldm.generate import sample_clip

    gen = FrameGenerator(young_progress_model, scheduler="flow_euler", steps=4, keep_input=0.0)
    row = action_rows(read_manifest(timeline8))[0]
    src = Image.open(resolve(timeline8, row["input_path"])).convert("RGB").resize((64, 64))
    free = sample_clip(gen.pipe, src, row["description"], [0.5, 1.0], 3, None, gen.sampling.pipe_kwargs(), {})
    calls = []
    unet_forward = gen.pipe.unet.forward
    gen.pipe.unet.forward = lambda *a, **k: calls.append(float(a[1])) or unet_forward(*a, **k)
    try:
        held = sample_clip(gen.pipe, src, row["description"], [0.5, 1.0], 3, None, gen.sampling.pipe_kwargs(), {},
                           clip_start=0.5)
    finally:
        gen.pipe.unet.forward = unet_forward
    # the action done: drawn first, as before (alone, a batch of 1, whose rounding may move a pixel by one level)
    assert np.abs(np.asarray(held[1], np.int16) - np.asarray(free[1], np.int16)).max() <= 1
    assert calls == [1000.0, 750.0, 500.0, 250.0, 500.0, 250.0]  # the part-way frame runs the steps σ <= 0.5 only
    side = 64 // gen.pipe.vae_scale_factor
    noise = torch.randn((1, gen.pipe.unet.config.out_channels, side, side), generator=torch.Generator().manual_seed(3))
    x0 = gen.pipe.vae.encode(gen.pipe.image_processor.preprocess(held[1])).latent_dist.mode()
    x0 = x0 * gen.pipe.vae.config.scaling_factor  # (1, c, h, w): the latent of the clip's finished frame
    seen = []
    step = gen.pipe.scheduler.__class__.step

    def spy(sched, out, t, z, **k):
        seen.append(z)
        return step(sched, out, t, z, **k)

    gen.pipe.scheduler.__class__.step = spy
    try:
        again = sample_clip(gen.pipe, src, row["description"], [0.5, 1.0], 3, None, gen.sampling.pipe_kwargs(), {},
                            clip_start=0.5)
    finally:
        gen.pipe.scheduler.__class__.step = step
    assert again[0].tobytes() == held[0].tobytes()  # deterministic: the same seed, the same clip
    assert held[0].tobytes() != free[0].tobytes()  # and not the frame drawn from pure noise
    torch.testing.assert_close(seen[4], 0.5 * x0 + 0.5 * noise)  # part-way: (1 - σ) x_0 + σ n at σ = 0.5
    from egolego.errors import InputError

    with pytest.raises(InputError, match=r"must lie in \(0, 1\]") as e:
        FrameGenerator(young_progress_model, clip_start=0.0)
    assert e.value.arg == "clip_start"


def test_eval_timeline_draws_each_action_as_its_clip(young_progress_model, timeline8, tmp_path):
    """eval-timeline with clip_start < 1 draws every frame as `generate --frames` draws that action's clip."""
    from egolego.data.manifest import progress_of
    from egolego.ldm.frame_set import frame_file
    from egolego.names import pair_seed

    a = TimelineArgs(model=young_progress_model, pairs=timeline8, out=tmp_path, actions=1, clip_start=0.5)
    evaluate_timeline(a, progress=False)
    rows = sorted([r for r in read_manifest(timeline8) if r["split"] == "test"], key=lambda r: r["pair_id"])
    key = sorted({action_key(r["pair_id"]) for r in rows})[0]
    mine = sorted([r for r in rows if action_key(r["pair_id"]) == key], key=progress_of)
    src = Image.open(resolve(timeline8, mine[0]["input_path"])).convert("RGB")
    clip, _ = FrameGenerator(young_progress_model, clip_start=0.5).clip(
        src, mine[0]["label"], [progress_of(r) for r in mine], mine[0]["description"], pair_seed(0, key))
    drawn = [Image.open(frame_file(tmp_path / "progress", r["pair_id"])).convert("RGB") for r in mine]
    assert [d.tobytes() for d in drawn] == [c.resize(d.size).tobytes() for c, d in zip(clip, drawn)]
    free, _ = FrameGenerator(young_progress_model).clip(
        src, mine[0]["label"], [progress_of(r) for r in mine], mine[0]["description"], pair_seed(0, key))
    assert drawn[0].tobytes() != free[0].resize(drawn[0].size).tobytes()  # not the frames drawn from pure noise
    record = json.loads((tmp_path / "progress" / "drawn_with.json").read_text())
    assert record["sampling"]["clip_start"] == 0.5  # drawn another way next time: drawn again


def test_progress_guidance_pushes_away_from_the_action_not_begun(young_progress_model, single_model, timeline8):
    """s_p > 0 adds a 4th branch, (X, C) at progress 0, and guides by s_p (ε(X, C, p) − ε(X, C, 0)) on top of the
    two guidance scales; s_p = 0 leaves the three branches as they were, and a single-frame model ignores it."""
    from egolego.errors import InputError
    from egolego.ldm.pipeline import combine_guidance

    row = action_rows(read_manifest(timeline8))[0]
    src = Image.open(resolve(timeline8, row["input_path"])).convert("RGB").resize((64, 64))

    def one_step(model, p=0.5, **kw):
        gen = FrameGenerator(model, scheduler="flow_euler", steps=1, keep_input=0.0, guidance_interval=(0, 1),
                             condition_guidance=3.0, image_guidance=1.5, **kw)
        pipe, seen = gen.pipe, {}
        forward, step = pipe.unet.forward, pipe.scheduler.__class__.step

        def unet(*a, **k):
            out = forward(*a, **k)
            seen["unet"] = (k.get("class_labels"), out[0])  # (nB, c, h, w): the branches' predictions
            return out

        pipe.unet.forward = unet

        def spy(sched, out, t, z, **k):
            seen["step"] = (out, z)
            return step(sched, out, t, z, **k)

        pipe.scheduler.__class__.step = spy
        try:
            frame = pipe(src, row["description"], action_progress=p, output_type="np",
                         generator=torch.Generator().manual_seed(1), **gen.sampling.pipe_kwargs()).images[0]
        finally:
            pipe.scheduler.__class__.step = step
        return frame, seen, pipe.scheduler.sigmas[0]

    plain, seen0, _ = one_step(young_progress_model)
    assert seen0["unet"][1].shape[0] == 3  # guidance off: the three branches of before
    pushed, seen, sigma = one_step(young_progress_model, progress_guidance=2.0)
    labels, raw = seen["unet"]
    assert raw.shape[0] == 4 and labels.tolist() == [500.0, 500.0, 500.0, 0.0]  # the 4th branch: progress 0
    x0 = combine_guidance(raw[:3], 3.0, 1.5) + 2.0 * (raw[:1] - raw[3:])  # the guided x_0, by the formula
    out, z = seen["step"]
    torch.testing.assert_close(out, (z - x0) / sigma)  # what the sampler stepped with (x_0 -> velocity)
    assert not (plain == pushed).all()
    with pytest.raises(InputError, match=">= 0"):
        FrameGenerator(young_progress_model, progress_guidance=-1.0)
    frame, seen1, _ = one_step(single_model, p=1.0, progress_guidance=2.0)  # no progress input: nothing to guide by
    assert seen1["unet"][1].shape[0] == 3 and seen1["unet"][0] is None
