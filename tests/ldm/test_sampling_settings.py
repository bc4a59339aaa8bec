"""A newcomer changes the sampler, the step count or either guidance scale with one YAML key (the model's
``lego_config.yaml``, written from the training config) or one flag, and the change reaches the UNet call."""

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from egolego import config
from egolego.cli import main
from egolego.ldm.generate import FrameGenerator
from egolego.ldm.pipeline import SCHEDULERS, LegoPipeline

from .conftest import make_components


@pytest.fixture
def ddpm_model(tokenizer, tmp_path):
    d = tmp_path / "model"
    LegoPipeline(**make_components(tokenizer, mode="desc")).save_pretrained(str(d))
    return d


@pytest.fixture
def seen(monkeypatch):
    """The timestep of every UNet call, and the guidance scales every step combined its branches with."""
    import egolego.ldm.pipeline as P

    log = {"t": [], "guidance": set(), "guided": []}
    forward, combine = UNet2DConditionModel.forward, P.combine_guidance

    def unet(self, sample, timestep, *args, **kw):
        log["t"].append(float(np.asarray(timestep.cpu() if hasattr(timestep, "cpu") else timestep).ravel()[0]))
        return forward(self, sample, timestep, *args, **kw)

    def guidance(eps, s_c, s_x, rescale=0.0):
        log["guidance"].add((s_c, s_x) if not rescale else (s_c, s_x, rescale))
        log["guided"].append(log["t"][-1])
        return combine(eps, s_c, s_x, rescale)

    monkeypatch.setattr(UNet2DConditionModel, "forward", unet)
    monkeypatch.setattr(P, "combine_guidance", guidance)
    return log


def _timesteps(model, name: str, steps: int) -> list[float]:
    sched = SCHEDULERS[name].from_config(LegoPipeline.from_pretrained(str(model)).scheduler.config)
    sched.set_timesteps(steps)
    return [float(t) for t in sched.timesteps]


def test_one_yaml_key_each_reaches_the_unet(ddpm_model, seen):
    cfg = config.preset("paper")
    cfg.ldm.scheduler, cfg.ldm.steps, cfg.ldm.condition_guidance, cfg.ldm.image_guidance = "dpm++", 2, 4.0, 1.75
    config.save(cfg, ddpm_model / "lego_config.yaml")  # what `egolego train --config` writes with the model
    FrameGenerator(ddpm_model)(Image.new("RGB", (40, 30), "gray"), "take cup", "The person takes the red cup.")
    assert seen["t"] == _timesteps(ddpm_model, "dpm++", 2) != _timesteps(ddpm_model, "euler_a", 2)
    assert seen["guidance"] == {(4.0, 1.75)}


def test_one_flag_each_reaches_the_unet(ddpm_model, seen, tmp_path):
    img = tmp_path / "in.png"
    Image.new("RGB", (40, 30), "gray").save(img)
    rc = main(["generate", "--model", str(ddpm_model), "--image", str(img), "--action", "take cup", "--description",
               "The person takes the red cup.", "--out", str(tmp_path / "o.png"), "--scheduler", "ddim", "--steps", "3",
               "--condition-guidance", "2.5", "--image-guidance", "1.25"])
    assert rc == 0
    assert seen["t"] == _timesteps(ddpm_model, "ddim", 3) != _timesteps(ddpm_model, "euler_a", 3)
    assert seen["guidance"] == {(2.5, 1.25)}


def test_guidance_rescale_and_interval_travel_from_the_yaml_and_the_flags(ddpm_model, seen, tmp_path):
    cfg = config.preset("paper")
    cfg.ldm.scheduler, cfg.ldm.steps, cfg.ldm.guidance_rescale, cfg.ldm.guidance_interval = "ddim", 4, 0.7, [0.0, 0.6]
    config.save(cfg, ddpm_model / "lego_config.yaml")
    FrameGenerator(ddpm_model)(Image.new("RGB", (40, 30), "gray"), "take cup", "The person takes the red cup.")
    ts = _timesteps(ddpm_model, "ddim", 4)
    assert seen["guidance"] == {(7.5, 1.5, 0.7)}
    assert seen["guided"] == [t for t in ts if t / 1000 <= 0.6] and 0 < len(seen["guided"]) < 4  # high noise unguided
    seen["guidance"].clear()
    img = tmp_path / "in.png"
    Image.new("RGB", (40, 30), "gray").save(img)
    args = ["generate", "--model", str(ddpm_model), "--image", str(img), "--action", "take cup", "--description",
            "The person takes the red cup.", "--out", str(tmp_path / "o.png"), "--guidance-rescale", "0.25"]
    assert main(args + ["--guidance-interval", "0,1"]) == 0
    assert seen["guidance"] == {(7.5, 1.5, 0.25)}
    for bad in ("0.5", "0.8,0.2", "a,b", "0,2"):
        assert main(args + ["--guidance-interval", bad]) == 2


def test_guidance_rescale_matches_diffusers():
    """With s_x = 1 LEGO's guidance is classifier-free guidance on (X, C) over (X, ∅): its rescale must be diffusers'."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

    from egolego.ldm.pipeline import combine_guidance

    g = torch.Generator().manual_seed(0)
    e_xc, e_x, e_0 = (torch.randn(2, 4, 8, 8, generator=g) * k for k in (1.0, 0.8, 1.3))
    cfg = e_x + 5.0 * (e_xc - e_x)
    ours = combine_guidance(torch.cat([e_xc, e_x, e_0]), 5.0, 1.0, rescale=0.6)
    torch.testing.assert_close(ours, rescale_noise_cfg(cfg, e_xc, guidance_rescale=0.6), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(combine_guidance(torch.cat([e_xc, e_x, e_0]), 5.0, 1.0), cfg)


@pytest.mark.parametrize("kind", ["paper", "tiny"])
def test_from_pretrained_samples_as_the_model_was_saved_to(tokenizer, tmp_path, kind):
    """`LegoPipeline.from_pretrained(d)(image, prompt)` with no sampling argument draws `egolego generate`'s frame:
    the sampler and every setting travel in the folder (a DDPM model as the paper preset's, a flow one as tiny's)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from egolego.ldm.pipeline import PAPER_SAMPLING, sampling_settings

    ldm = config.preset(kind).ldm
    ldm.steps, ldm.condition_guidance, ldm.image_guidance, ldm.guidance_rescale = 3, 2.5, 1.25, 0.5
    ldm.guidance_interval = [0.0, 0.9]
    parts = make_components(tokenizer, mode="desc")
    extra = {}
    if kind == "tiny":
        parts["scheduler"] = FlowMatchEulerDiscreteScheduler()
        extra = {"prediction": "sample", "residual": True}
        ldm.scheduler = "flow_euler_a"  # the stochastic sampler travels as a name and as its scheduler's config
    else:
        ldm.scheduler = "ddim"
    pipe = LegoPipeline(**parts, **extra, sampling=sampling_settings(ldm))
    pipe.use_scheduler(ldm.scheduler)
    d = tmp_path / "model"
    pipe.save_pretrained(str(d))
    image, text = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)), "take cup"
    loaded = LegoPipeline.from_pretrained(str(d))
    loaded.set_progress_bar_config(disable=True)
    plain = np.asarray(loaded(image, text, generator=torch.Generator().manual_seed(5)).images[0])
    cli, _ = FrameGenerator(d)(image, "take cup", text, seed=5)
    assert np.array_equal(plain, np.asarray(cli))
    assert type(loaded.scheduler).__name__ == ("FlowMatchEulerDiscreteScheduler" if kind == "tiny" else "DDIMScheduler")
    assert loaded.scheduler.config.get("stochastic_sampling", False) == (kind == "tiny")
    assert loaded.sampling["steps"] == 3 and loaded.sampling["guidance_interval"] == [0.0, 0.9]
    other = {"num_inference_steps": PAPER_SAMPLING["steps"] // 25, "condition_guidance_scale": 7.5}
    moved = np.asarray(loaded(image, text, generator=torch.Generator().manual_seed(5), **other).images[0])
    assert not np.array_equal(plain, moved)  # the saved settings, not the paper's, made `plain`


def test_keep_unchanged_returns_the_input_where_the_frame_barely_changed_it():
    from egolego.ldm.pipeline import keep_unchanged

    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1  # (B, 3, H, W) in [-1, 1]
    out = image + (torch.rand(1, 3, 32, 32, generator=g) - 0.5) * 0.04  # smear: at most 1 % of the range
    out[:, :, 10:20, 10:20] = 1.0  # the action: a big change
    kept = keep_unchanged(out, image, 0.06)
    far = torch.ones(32, 32, dtype=torch.bool)
    far[6:24, 6:24] = False  # 4 px from the change, beyond the 5x5 average's reach
    assert torch.equal(kept[..., far], image[..., far])
    assert torch.allclose(kept[:, :, 12:18, 12:18], out[:, :, 12:18, 12:18])  # the change itself is kept


def test_keep_input_travels_from_the_flag_to_the_pipeline(ddpm_model, tmp_path, monkeypatch):
    import egolego.ldm.pipeline as P

    seen = []
    real = P.keep_unchanged
    monkeypatch.setattr(P, "keep_unchanged", lambda out, image, tau: seen.append(tau) or real(out, image, tau))
    img = tmp_path / "in.png"
    Image.new("RGB", (40, 30), "gray").save(img)
    args = ["generate", "--model", str(ddpm_model), "--image", str(img), "--action", "take cup", "--description",
            "The person takes the red cup.", "--out", str(tmp_path / "o.png"), "--steps", "2"]
    assert main(args) == 0 and seen == []  # off by default (the paper's sampling)
    assert main(args + ["--keep-input", "0.06"]) == 0 and seen == [0.06]
    assert main(args + ["--keep-input", "1.5"]) == 2


def test_flow_euler_a_draws_fresh_noise_at_every_step(tokenizer):
    """``flow_euler_a`` re-noises the predicted x_0 with the generator's noise at every step; ``flow_euler`` follows the
    velocity, so from the same start it never reads the generator. One step has nothing to re-noise: both land on the
    same x̂_0."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from egolego.ldm.autoencoder import downscale_factor, latent_channels

    parts = make_components(tokenizer, mode="desc")
    parts["scheduler"] = FlowMatchEulerDiscreteScheduler()
    pipe = LegoPipeline(**parts, prediction="sample", residual=True)
    pipe.set_progress_bar_config(disable=True)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    side = 64 // downscale_factor(pipe.vae)
    start = torch.randn(1, latent_channels(pipe.vae), side, side, generator=torch.Generator().manual_seed(0))

    def frame(name: str, steps: int, seed: int) -> np.ndarray:
        pipe.use_scheduler(name)
        out = pipe(image, "take cup", latents=start.clone(), generator=torch.Generator().manual_seed(seed),
                   num_inference_steps=steps, condition_guidance_scale=2.0, image_guidance_scale=1.0)
        return np.asarray(out.images[0], dtype=np.int16)

    assert pipe.scheduler.config.stochastic_sampling is False
    assert np.array_equal(frame("flow_euler", 3, 1), frame("flow_euler", 3, 2))
    a = frame("flow_euler_a", 3, 1)
    assert pipe.scheduler.config.stochastic_sampling is True
    assert np.array_equal(a, frame("flow_euler_a", 3, 1)) and not np.array_equal(a, frame("flow_euler_a", 3, 2))
    assert np.abs(frame("flow_euler_a", 1, 1) - frame("flow_euler", 1, 2)).max() <= 1  # rounding to 8 bits only
    with pytest.raises(ValueError, match="flow_euler or flow_euler_a"):
        pipe.use_scheduler("ddim")


def test_unguided_steps_run_the_conditioned_branch_alone(tokenizer, monkeypatch):
    """Outside ``guidance_interval`` a step uses (X, C) only, so only (X, C) runs: a UNet batch of B, not 3B (the tiny
    preset guides 2 of its 4 steps). Its frame is the one drawn with every step guided at s_c = s_x = 1, where
    guidance reduces to (X, C): the branch alone must see the frame and the description, not ∅."""
    pipe = LegoPipeline(**make_components(tokenizer, mode="desc"))
    pipe.use_scheduler("ddim")
    batches = []
    forward = UNet2DConditionModel.forward

    def unet(self, sample, *args, **kw):
        batches.append(sample.shape[0])
        return forward(self, sample, *args, **kw)

    monkeypatch.setattr(UNet2DConditionModel, "forward", unet)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]

    def draw(interval, **kw):
        gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
        return pipe(images, ["take cup", "open the drawer"], num_inference_steps=3, guidance_interval=interval,
                     generator=gens, output_type="pt", progress=False, keep_input=0.0, **kw).images  # (2, 3, H, W)

    alone = draw((2.0, 3.0))  # no step's noise level lies in [2, 3]: none guided
    assert batches == [2, 2, 2]
    batches.clear()
    reduced = draw((0.0, 1.0), condition_guidance_scale=1.0, image_guidance_scale=1.0)
    assert batches == [6, 6, 6]
    torch.testing.assert_close(alone, reduced, rtol=0, atol=2e-5)
    batches.clear()
    draw((0.0, 0.5))  # DDIM's 3 steps sit at t/T ≈ 0.67, 0.33, 0.0: the first unguided
    assert batches == [2, 6, 6]
