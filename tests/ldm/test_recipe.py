"""The tiny recipe's parts: lossless autoencoder, residual flow model, recipe checks, and sampling settings that
reach the UNet call (from the model's config, or from one flag)."""

import numpy as np
import pytest
import torch
from PIL import Image

from egolego import config
from egolego.cli import main
from egolego.data.manifest import read_manifest, resolve
from egolego.ldm.autoencoder import PixelUnshuffleAutoencoder
from egolego.ldm.build import check_recipe
from egolego.ldm.generate import FrameGenerator, sampling_for
from egolego.ldm.train import Trainer


def test_unshuffle_autoencoder_is_lossless_and_has_the_vae_interface():
    ae = PixelUnshuffleAutoencoder(downscale_factor=4)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    d = ae.encode(x).latent_dist
    assert d.mode().shape == (2, 48, 16, 16) and torch.equal(d.mean, d.sample())
    assert float(d.std.abs().max()) == 0.0
    assert torch.equal(ae.decode(d.mode()).sample, x)


@pytest.fixture(scope="module")
def flow_model(pairs8, tmp_path_factory):
    """A residual flow model after 2 steps (its zero-initialised head has barely moved)."""
    cfg = config.preset("tiny")
    c = cfg.ldm
    c.conditioning, c.max_steps, c.batch_size, c.checkpoint_every, c.unet_channels = "desc", 2, 4, 100, [32, 64, 64]
    c.lr = 1e-12  # keep the head at zero: the model must then return its input frame
    out = tmp_path_factory.mktemp("flow")
    Trainer(cfg, pairs8, None, out).run(progress=False)
    return out / "model"


def test_residual_flow_model_at_init_returns_the_input(flow_model, pairs8):
    """x_0 = E(X) + 0 at every step, so the flow sampler must land exactly on the input frame."""
    gen = FrameGenerator(flow_model)
    assert gen.sampling.scheduler == "flow_euler_a" and gen.pipe.config.residual
    assert gen.pipe.scheduler.config.stochastic_sampling  # re-noised at every step, still exactly the input
    assert gen.pipe.config.sampling == {"steps": 4, "scheduler": "flow_euler_a", "condition_guidance": 3.0,
                                        "image_guidance": 1.0, "guidance_rescale": 0.0, "guidance_interval": [0.6, 1.0],
                                        "keep_input": 0.06, "clip_start": 1.0, "progress_guidance": 0.0,
                                        "change_mask": False}
    row = read_manifest(pairs8)[0]
    src = Image.open(resolve(pairs8, row["input_path"])).convert("RGB")
    out, _ = gen(src, row["label"], row["description"], seed=3)
    a, b = (np.asarray(im, dtype=np.float32) for im in (out, src))
    assert np.abs(a - b).max() <= 1.0  # rounding to 8 bits only


def test_sampling_settings_come_from_the_model_and_flags_reach_the_unet(flow_model, pairs8, tmp_path, monkeypatch):
    s = sampling_for(flow_model)
    assert (s.steps, s.scheduler, s.condition_guidance, s.image_guidance) == (4, "flow_euler_a", 3.0, 1.0)
    import egolego.ldm.pipeline as P

    seen = {"unet": 0, "guidance": set()}
    real = P.combine_guidance

    def spy(eps, s_c, s_x, rescale=0.0):
        seen["guidance"].add((s_c, s_x))
        return real(eps, s_c, s_x, rescale)

    monkeypatch.setattr(P, "combine_guidance", spy)
    gen = FrameGenerator(flow_model)
    gen.pipe.unet.register_forward_hook(lambda *_: seen.__setitem__("unet", seen["unet"] + 1))
    row = read_manifest(pairs8)[0]
    img = resolve(pairs8, row["input_path"])
    rc = main(["generate", "--model", str(flow_model), "--image", str(img), "--action", row["label"], "--description",
               row["description"], "--out", str(tmp_path / "o.png"), "--steps", "3", "--condition-guidance", "2.5",
               "--image-guidance", "1.25"])
    assert rc == 0 and (tmp_path / "o.png").is_file()
    assert seen["guidance"] == {(2.5, 1.25)}  # the flags reached the guidance of every step
    gen(Image.open(img).convert("RGB"), row["label"], row["description"])
    assert seen["unet"] == 4  # the model's own 4 steps (the hook is on this generator's UNet only)
    assert (3.0, 1.0) in seen["guidance"]


def test_a_ddpm_sampler_cannot_sample_a_flow_model(flow_model):
    with pytest.raises(ValueError, match="flow_euler"):
        FrameGenerator(flow_model, scheduler="euler_a")


@pytest.mark.parametrize("changes, match", [
    ({"objective": "flow", "prediction": "epsilon"}, "does not fit"),
    ({"objective": "ddpm", "prediction": "epsilon", "residual": True, "scheduler": "euler_a"}, "residual"),
    ({"objective": "ddpm", "prediction": "epsilon", "residual": False, "scheduler": "flow_euler"}, "flow_euler"),
    ({"objective": "ddpm", "prediction": "epsilon", "residual": False, "scheduler": "flow_euler_a"}, "flow_euler_a"),
    ({"loss_weighting": "min_snr"}, "min_snr"),
    ({"objective": "diffusion"}, "objective"),
])
def test_impossible_recipes_are_refused(changes, match):
    cfg = config.preset("tiny")
    for k, v in changes.items():
        setattr(cfg.ldm, k, v)
    with pytest.raises(ValueError, match=match):
        check_recipe(cfg)


def test_paper_preset_keeps_the_paper_recipe():
    c = config.preset("paper").ldm
    assert (c.objective, c.prediction, c.residual, c.autoencoder) == ("ddpm", "epsilon", False, "vae")
    assert (c.steps, c.scheduler, c.condition_guidance, c.image_guidance) == (100, "euler_a", 7.5, 1.5)
    check_recipe(config.preset("paper"))
    check_recipe(config.preset("tiny"))
